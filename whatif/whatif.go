// Package whatif answers the preflight question of maintenance tooling:
// "what happens to every service if these nodes go down now?", and, for a
// rolling reimage, "which batch first breaks which service?".
//
// It runs the same analysis as the metrics (spread.Analyze) on the same
// cached cluster, with the asked nodes marked unschedulable. Nodes that are
// already unschedulable (cordoned, NotReady, tainted, labelled for
// maintenance, being deleted) count as gone too, and the answer says so.
package whatif

import (
	"fmt"
	"slices"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Answer is the what-if answer for one set of nodes.
type Answer struct {
	// Nodes are the nodes asked about, sorted.
	Nodes []string `json:"nodes"`
	// AlreadyUnschedulable lists nodes that are going away anyway and are
	// treated as gone in the answer.
	AlreadyUnschedulable []NodeState `json:"already_unschedulable"`
	// Verdict is the worst verdict of the services that the asked nodes
	// make worse: what taking them down would do. A guard script gates on
	// it.
	Verdict spread.Verdict `json:"verdict"`
	// VerdictNow is the worst verdict of any service before the asked
	// nodes go (already unschedulable nodes gone): trouble that exists
	// whatever the answer.
	VerdictNow spread.Verdict `json:"verdict_now"`
	// Services lists the services with ready replicas on a node that is
	// gone (asked or already unschedulable), and any service whose verdict
	// is not ok, sorted by namespace, kind, name.
	Services []Service `json:"services"`
}

// NodeState is a node and why it is unschedulable.
type NodeState struct {
	Name    string          `json:"name"`
	Reasons []spread.Reason `json:"reasons"`
}

// Service is one service's figures now and after the nodes are gone.
type Service struct {
	Namespace string      `json:"namespace"`
	Kind      spread.Kind `json:"kind"`
	Name      string      `json:"name"`
	MinNodes  int         `json:"min_nodes"`
	Now       Figures     `json:"now"`
	After     Figures     `json:"after"`
	// VerdictNow judges the spread with only the already unschedulable
	// nodes gone; Verdict with the asked nodes gone too.
	VerdictNow spread.Verdict `json:"verdict_now"`
	Verdict    spread.Verdict `json:"verdict"`
}

// Figures are the replicas that survive, and how they are spread.
type Figures struct {
	// Replicas counts ready replicas on nodes that stay.
	Replicas int `json:"replicas"`
	// Nodes counts the nodes that stay and hold ready replicas.
	Nodes int `json:"nodes"`
	// TopologyDomains counts, per topology key, the domains of those nodes.
	TopologyDomains map[string]int `json:"topology_domains"`
	// ConcentrationRatio is the largest share of those replicas on one
	// node; 0 when none is left.
	ConcentrationRatio float64 `json:"concentration_ratio"`
}

// Ask answers for the named nodes. It returns spread.ErrNoNodes or a
// *spread.UnknownNodesError when the names are empty or unknown.
func Ask(c *spread.Cluster, nodes []string, opts spread.Options) (*Answer, error) {
	gone, err := c.WithNodesGone(nodes)
	if err != nil {
		return nil, err
	}
	now := spread.Analyze(c, opts)
	after := spread.Analyze(gone, opts)

	asked := slices.Clone(nodes)
	slices.Sort(asked)
	answer := &Answer{Nodes: slices.Compact(asked), Verdict: spread.VerdictOK, VerdictNow: spread.VerdictOK, Services: []Service{}, AlreadyUnschedulable: []NodeState{}}
	for _, n := range now.Nodes {
		if !n.Node.Schedulable() {
			answer.AlreadyUnschedulable = append(answer.AlreadyUnschedulable, NodeState{Name: n.Node.Name, Reasons: n.Node.Unschedulable})
		}
	}
	// Analyze sorts services the same way for both clusters, which share
	// their services, so index i is the same service in both reports.
	for i := range after.Services {
		before, f := &now.Services[i], &after.Services[i]
		verdictNow, verdict := before.Verdict(), f.Verdict()
		if verdictNow.Worse(answer.VerdictNow) {
			answer.VerdictNow = verdictNow
		}
		if verdict.Worse(verdictNow) && verdict.Worse(answer.Verdict) {
			answer.Verdict = verdict
		}
		// Replicas on gone nodes are the ones no longer schedulable.
		if verdict == spread.VerdictOK && f.ReplicasSchedulable == f.ReplicasReady {
			continue
		}
		answer.Services = append(answer.Services, Service{
			Namespace: f.Service.Namespace, Kind: f.Service.Kind, Name: f.Service.Name, MinNodes: f.MinNodes,
			Now: surviving(c, before), After: surviving(gone, f),
			VerdictNow: verdictNow, Verdict: verdict,
		})
	}
	return answer, nil
}

// surviving sums up the ready replicas of f on the schedulable nodes of c.
func surviving(c *spread.Cluster, f *spread.Figures) Figures {
	out := Figures{Replicas: f.ReplicasSchedulable, Nodes: f.SchedulableNodes, TopologyDomains: make(map[string]int, len(f.Domains))}
	for _, d := range f.Domains {
		out.TopologyDomains[d.Key] = d.Schedulable
	}
	largest := 0
	for _, n := range f.NodeReplicas {
		if node := c.Nodes[n.Node]; node != nil && node.Schedulable() {
			largest = max(largest, n.Count)
		}
	}
	if f.ReplicasSchedulable > 0 {
		out.ConcentrationRatio = float64(largest) / float64(f.ReplicasSchedulable)
	}
	return out
}

// Plan is the answer for a rolling maintenance in ordered batches.
type Plan struct {
	// Verdict is the worst verdict of any batch.
	Verdict spread.Verdict `json:"verdict"`
	Batches []Batch        `json:"batches"`
	// Unsafe lists, for each service that some batch breaks, the first
	// batch that does: the one to reorder or split.
	Unsafe []UnsafeService `json:"unsafe"`
}

// Batch is one batch of a plan and the services it breaks.
type Batch struct {
	// Index counts batches from 1, in the order asked.
	Index   int            `json:"index"`
	Nodes   []string       `json:"nodes"`
	Verdict spread.Verdict `json:"verdict"`
	// Services lists the services this batch makes worse.
	Services []Service `json:"services"`
}

// UnsafeService names the first batch that breaks a service.
type UnsafeService struct {
	Namespace  string         `json:"namespace"`
	Kind       spread.Kind    `json:"kind"`
	Name       string         `json:"name"`
	FirstBatch int            `json:"first_batch"`
	Verdict    spread.Verdict `json:"verdict"`
}

// AskPlan judges each batch on its own against the placement of now: the
// nodes of a batch come back before the next batch goes. Pods evicted by
// one batch are rescheduled where the scheduler likes, which nobody can
// predict, so a reimage script should ask again before each batch; the plan
// is for spotting a bad batch before starting.
func AskPlan(c *spread.Cluster, batches [][]string, opts spread.Options) (*Plan, error) {
	if len(batches) == 0 {
		return nil, spread.ErrNoNodes
	}
	plan := &Plan{Verdict: spread.VerdictOK, Batches: []Batch{}, Unsafe: []UnsafeService{}}
	seen := make(map[[3]string]bool)
	for i, nodes := range batches {
		answer, err := Ask(c, nodes, opts)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", i+1, err)
		}
		batch := Batch{Index: i + 1, Nodes: answer.Nodes, Verdict: answer.Verdict, Services: []Service{}}
		for _, s := range answer.Services {
			if !s.Verdict.Worse(s.VerdictNow) {
				continue
			}
			batch.Services = append(batch.Services, s)
			id := [3]string{s.Namespace, string(s.Kind), s.Name}
			if !seen[id] {
				seen[id] = true
				plan.Unsafe = append(plan.Unsafe, UnsafeService{Namespace: s.Namespace, Kind: s.Kind, Name: s.Name, FirstBatch: i + 1, Verdict: s.Verdict})
			}
		}
		if batch.Verdict.Worse(plan.Verdict) {
			plan.Verdict = batch.Verdict
		}
		plan.Batches = append(plan.Batches, batch)
	}
	return plan, nil
}
