package whatif

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// ErrBusy is returned by AskNodes when no analysis slot freed up before
// the context ended.
var ErrBusy = errors.New("too many what-if questions at once")

// MaxStaleness bounds how old the snapshot AskNodes judges on may be once
// the caches moved past it. A cordon must not wait for a snapshot of the
// whole cluster (some 160 ms at 150,000 pods, more on a loaded exporter)
// because a pod somewhere flipped its readiness, which on a busy cluster
// happens between any two cordons; pods two seconds behind change no
// verdict an operator could act on, and alerts take minutes. The nodes
// are not behind: AskNodes takes their state from the caches as they are
// now (see AskNodes).
//
// It is well below the admission webhook's memory of the changes it
// admitted (admission.pendingFor, 10 s), so that a source without node
// states too counts a node cordoned through this exporter as gone until a
// snapshot holds it, as long as the watch delivers the cordon within the
// 8 s left. Two seconds also keep a burst of cordons (kubectl cordon A B
// C, a drain loop's next node) on one snapshot while the next is taken.
const MaxStaleness = 2 * time.Second

// SpreadSource is a Source that can leave out the placement model's input
// (cluster.Watcher): AskNodes judges spread verdicts only.
type SpreadSource interface {
	SnapshotWithoutPlacement() (*spread.Cluster, error)
}

// NodeStates is a Source that can say which nodes are in and out of
// service now without a snapshot (cluster.Watcher): AskNodes brings the
// nodes of an older snapshot up to date with it.
type NodeStates interface {
	// UnschedulableNodes returns the nodes out of service now.
	UnschedulableNodes() []string
	// NodesInService returns, of the named nodes, those known and in
	// service now.
	NodesInService(names []string) []string
}

// AskNodes answers what GET /api/v1/whatif?node=... answers about the
// services with a replica on the asked nodes, for callers inside the
// exporter (the admission webhook), within the same bound on concurrent
// analyses: it waits for a slot until ctx ends (ErrBusy). Only those
// services can be blocking, so the verdict is the API's; the answer lists
// no other service, and verdict_now and verdict_elsewhere are over the
// services it lists (see touchedBy). It judges spread verdicts only: the
// snapshot has no placement input, so no service is no_room, and
// Placement, WarmNodes and PDB say nothing (the what-if API has them).
//
// It judges on a snapshot of its own, refreshed in the background once
// the caches moved past it, and used meanwhile for at most MaxStaleness
// after it was taken; only a question that finds no snapshot, or one
// older than that, waits for a new one (one at a time, shared by every
// waiting question).
//
// gone names nodes to count as unschedulable although the caches still
// show them schedulable: changes admitted a moment ago that the watch has
// not delivered yet. Names the snapshot does not know, or shows
// unschedulable already, are left out; the asked nodes are judged as
// asked. With gone empty and the snapshot current, the answer is the
// API's on a cluster without placement input, for the services above.
//
// With a NodeStates source the nodes are as the caches show them now
// whatever the snapshot's age: out of service since count as gone, back in
// service since as in service; only the pods can be up to MaxStaleness
// behind.
//
// Errors: spread.ErrNoNodes, *spread.UnknownNodesError, the source's error
// while its caches sync, ErrBusy.
func (h *Handler) AskNodes(ctx context.Context, nodes, gone []string) (*Answer, error) {
	timer := time.NewTimer(slotWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return nil, ErrBusy
	case <-timer.C:
		return nil, ErrBusy
	}
	base, err := h.judging.get(ctx, h)
	if err != nil {
		return nil, err
	}
	c, now := base.cluster, base.now
	var back []string
	if states, ok := h.source.(NodeStates); ok {
		// The snapshot may be older than the caches: its nodes take the
		// state the caches show now. Out of service since (through the
		// other exporter replica, say): gone, like the pending ones.
		// Back in service since, and not pending again: in service. On a
		// current snapshot this changes nothing.
		gone = append(slices.Clone(gone), states.UnschedulableNodes()...)
		back = backInService(c, nodes, gone, states)
	}
	pending := pendingGone(c, nodes, gone)
	c, now = touchedBy(c, now, nodes, slices.Concat(back, pending), h.options)
	if changed := append(slices.Clip(back), pending...); len(changed) > 0 {
		if len(back) > 0 {
			if c, err = c.WithNodesInService(back); err != nil {
				return nil, err
			}
		}
		if len(pending) > 0 {
			if c, err = c.WithNodesGone(pending); err != nil {
				return nil, err
			}
		}
		// Only the services on the changed nodes change.
		now = spread.Reanalyze(c, now, changed, h.options)
	}
	return ask(c, now, nodes, h.options)
}

// touchedBy returns the part of c, and of its analysis now, that a
// question about nodes can change: the services with a replica on one of
// them, the nodes their replicas run on, the nodes out of service (the
// answer lists them) and the nodes in extra (whose state the question
// changes), where c knows them. A service's figures depend on its
// replicas and their nodes only, so they are the same in the part as in
// the whole; a service with no replica on the asked nodes is judged the
// same with them gone as in service, so it cannot be blocking. Judging on
// the part costs what the asked nodes hold, not the cluster: at 150,000
// pods the whole question cloned 30,000 figures and 5,000 nodes.
func touchedBy(c *spread.Cluster, now *spread.Report, nodes, extra []string, opts spread.Options) (*spread.Cluster, *spread.Report) {
	part := &spread.Cluster{TopologyKeys: c.TopologyKeys, Nodes: make(map[string]*spread.Node)}
	keep := func(name string) {
		if node := c.Nodes[name]; node != nil {
			part.Nodes[name] = node
		}
	}
	for _, name := range slices.Concat(nodes, extra) {
		keep(name)
	}
	for _, n := range now.Nodes {
		if !n.Node.Schedulable() {
			keep(n.Node.Name)
		}
	}
	for _, i := range now.ServicesOn(nodes) {
		svc := now.Services[i].Service
		part.Services = append(part.Services, svc)
		for _, r := range svc.Replicas {
			keep(r.Node)
		}
	}
	return part, spread.Analyze(part, opts)
}

// backInService returns the nodes c shows out of service that the caches
// show in service now, but for the asked and the gone ones.
func backInService(c *spread.Cluster, asked, gone []string, states NodeStates) []string {
	// A set: during a maintenance hundreds of nodes may be out of service
	// in both the snapshot and the caches.
	excluded := make(map[string]bool, len(asked)+len(gone))
	for _, name := range slices.Concat(asked, gone) {
		excluded[name] = true
	}
	var out []string
	for name, node := range c.Nodes {
		if !node.Schedulable() && !excluded[name] {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return states.NodesInService(out)
}

// pendingGone returns the names of gone that c knows and shows schedulable,
// and that are not asked about.
func pendingGone(c *spread.Cluster, asked, gone []string) []string {
	var out []string
	for _, name := range gone {
		node := c.Nodes[name]
		if node == nil || !node.Schedulable() || slices.Contains(asked, name) || slices.Contains(out, name) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// judgingBaseline is AskNodes' snapshot and analysis, apart from the API's
// (baseline): without placement input, and kept across cache changes for
// up to MaxStaleness.
type judgingBaseline struct {
	mu   sync.Mutex
	base *baseline
	// generation is the source's when base was taken (read before the
	// snapshot); taken is when.
	generation uint64
	taken      time.Time
	// used is when a question last took base (see expire).
	used   time.Time
	expiry *time.Timer
	// refresh is the snapshot being taken, nil when none is.
	refresh *refresh
}

// refresh is one snapshot and analysis under way; done is closed when base
// or err is set.
type refresh struct {
	done chan struct{}
	base *baseline
	err  error
}

// get returns the snapshot to judge on. It starts a refresh when the
// caches moved past the kept one, and waits for one only when there is no
// snapshot or it is older than the handler's maxStaleness.
func (j *judgingBaseline) get(ctx context.Context, h *Handler) (*baseline, error) {
	gen, generational := h.source.(Generational)
	if !generational {
		// Nothing says when a snapshot is stale: take one per question.
		cluster, err := h.snapshotWithoutPlacement()
		if err != nil {
			return nil, fmt.Errorf("cannot answer yet: %w", err)
		}
		return &baseline{cluster: cluster, now: spread.Analyze(cluster, h.options)}, nil
	}
	j.mu.Lock()
	generation, now := gen.Generation(), h.now()
	if j.base != nil && generation == j.generation {
		j.used = now
		base := j.base
		j.mu.Unlock()
		return base, nil
	}
	flight := j.startRefresh(h)
	if j.base != nil && now.Sub(j.taken) <= h.maxStaleness {
		j.used = now
		base := j.base
		j.mu.Unlock()
		return base, nil
	}
	j.mu.Unlock()
	select {
	case <-flight.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return flight.base, flight.err
}

// startRefresh starts a snapshot and analysis unless one is under way, and
// returns the one under way. j.mu is held.
func (j *judgingBaseline) startRefresh(h *Handler) *refresh {
	if j.refresh != nil {
		return j.refresh
	}
	flight := &refresh{done: make(chan struct{})}
	j.refresh = flight
	go func() {
		// Read before the snapshot, as baseline does: a change after it
		// moves the generation again.
		generation, taken := h.source.(Generational).Generation(), h.now()
		cluster, err := h.snapshotWithoutPlacement()
		if err != nil {
			flight.err = fmt.Errorf("cannot answer yet: %w", err)
		} else {
			flight.base = &baseline{cluster: cluster, now: spread.Analyze(cluster, h.options)}
			// Every question asks which services are on its node: index
			// them here, not on the first question's clock.
			flight.base.now.ServicesOn(nil)
		}
		j.mu.Lock()
		if flight.base != nil {
			j.base, j.generation, j.taken, j.used = flight.base, generation, taken, h.now()
			if j.expiry == nil {
				j.expiry = time.AfterFunc(baselineCheck, func() { j.expire(h) })
			}
		}
		j.refresh = nil
		j.mu.Unlock()
		close(flight.done)
	}()
	return flight
}

// expire drops the kept snapshot after baselineIdle without a question,
// else checks again later. Unlike the API's, it is kept across cache
// changes: a stale snapshot still answers within MaxStaleness, and a
// question that finds it older waits for a new one anyway.
func (j *judgingBaseline) expire(h *Handler) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.base == nil || h.now().Sub(j.used) >= baselineIdle {
		j.base, j.expiry = nil, nil
		return
	}
	j.expiry.Reset(baselineCheck)
}

// snapshotWithoutPlacement is the source's snapshot without the placement
// model's input, which AskNodes does not use.
func (h *Handler) snapshotWithoutPlacement() (*spread.Cluster, error) {
	if s, ok := h.source.(SpreadSource); ok {
		return s.SnapshotWithoutPlacement()
	}
	cluster, err := h.source.Snapshot()
	if err != nil {
		return nil, err
	}
	// A shallow copy: the source may keep and share its cluster.
	out := *cluster
	out.Placement = nil
	return &out, nil
}
