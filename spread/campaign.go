package spread

import (
	"errors"
	"slices"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// This file moves pods the way a maintenance campaign will: it turns the
// placement model's answer into the next state of the cluster, so that
// the next batch is judged on where the pods will be then, not where they
// are now.

// AfterBatch returns the cluster as the placement model predicts it once
// the named nodes are taken down and the pods displaced from them (and
// from every other unschedulable node) are recreated: each on the node the
// model chose, or pending when it found none. Pods left pending by an
// earlier batch are placed again with them, as the scheduler retries
// them. The batch's nodes lose
// their images (a reimage wipes them) and their terminating pods; pods
// that no controller recreates (DaemonSet pods, bare pods) stay where
// they were, as a DaemonSet recreates its pod on the node when it
// returns. When back is true the batch's nodes come back schedulable,
// empty of recreated pods and cold; else they stay unschedulable
// (ReasonWhatIf) for the rest of the campaign.
//
// It needs the placement input; c is not modified.
func (c *Cluster) AfterBatch(batch []string, back bool) (*Cluster, error) {
	if c.Placement == nil {
		return nil, ErrNoPlacement
	}
	gone, err := c.WithNodesGone(batch)
	if err != nil {
		return nil, err
	}
	return c.AfterDisplacement(PlaceDisplaced(c.Placement, gone), batch, back), nil
}

// AfterDisplacement is AfterBatch with the placement of the displaced
// pods given: d is PlaceDisplaced of c's placement input with the batch
// gone, which the what-if of the batch computes anyway. The batch's names
// are known nodes.
func (c *Cluster) AfterDisplacement(d *Displacement, batch []string, back bool) *Cluster {
	next := c.settle(d.result, batch)
	for _, name := range batch {
		node := *next.Nodes[name]
		if back {
			node.Unschedulable = nil
		} else if !slices.Contains(node.Unschedulable, ReasonWhatIf) {
			node.Unschedulable = append(slices.Clip(node.Unschedulable), ReasonWhatIf)
		}
		next.Nodes[name] = &node
	}
	if back && next.hasPending() {
		// The scheduler retries pending pods when a node comes back:
		// place them now, before the next batch is judged.
		next = next.settle(placement.Simulate(next.Placement, next.goneNodes(next)), nil)
	}
	return next
}

// hasPending reports whether some replacement waits for room.
func (c *Cluster) hasPending() bool {
	for i := range c.Placement.Pods {
		if c.Placement.Pods[i].Pending {
			return true
		}
	}
	return false
}

// AfterRestart returns the cluster as the placement model predicts it
// after a rollout restart of the given services' workloads: all their
// pods are recreated, placed anew on the schedulable nodes, which lets
// the scheduler spread them again. It needs the placement input; c is
// not modified.
func (c *Cluster) AfterRestart(services []*Service) (*Cluster, error) {
	if c.Placement == nil {
		return nil, ErrNoPlacement
	}
	restarted := make([]bool, len(c.Placement.Pods))
	for _, svc := range services {
		for _, i := range pods(svc) {
			restarted[i] = true
		}
	}
	result := placement.SimulateRestart(c.Placement, c.goneNodes(c), restarted)
	return c.settle(result, nil), nil
}

// ErrNoPlacement: a campaign needs the placement input, which the source
// did not give.
var ErrNoPlacement = errors.New("no placement input: the source gives the cluster without it")

// goneNodes marks the placement input's nodes that are unschedulable in
// state.
func (c *Cluster) goneNodes(state *Cluster) []bool {
	gone := make([]bool, len(c.Placement.Nodes))
	for i := range c.Placement.Nodes {
		node := state.Nodes[c.Placement.Nodes[i].Name]
		gone[i] = node != nil && !node.Schedulable()
	}
	return gone
}

// settle applies a placement result: the displaced pods move to their
// nodes (or become pending), nodes that receive a pod pull its images, and
// the batch's nodes lose their images and terminating pods. Pod indexes
// stay the same, so the services' replicas keep pointing at their pods.
func (c *Cluster) settle(result *placement.Result, batch []string) *Cluster {
	wiped := make([]bool, len(c.Placement.Nodes))
	for i := range c.Placement.Nodes {
		wiped[i] = slices.Contains(batch, c.Placement.Nodes[i].Name)
	}
	out, moved := result.Settle(wiped)
	next := *c
	next.Placement = out
	next.Nodes = make(map[string]*Node, len(c.Nodes))
	for name, node := range c.Nodes {
		next.Nodes[name] = node
	}
	next.Services = make([]*Service, len(c.Services))
	for i, svc := range c.Services {
		next.Services[i] = svc.moved(moved, out)
	}
	return &next
}

// moved returns the service with its replicas on their pods' new nodes
// (pending replicas on none, not ready), or the service itself when none
// of its pods moved.
func (s *Service) moved(moved map[int32]int32, c *placement.Cluster) *Service {
	var copied *Service
	for i, r := range s.Replicas {
		p, ok := r.PlacementPod()
		if !ok {
			continue
		}
		node, ok := moved[p]
		if !ok {
			continue
		}
		if copied == nil {
			clone := *s
			clone.Replicas = slices.Clone(s.Replicas)
			copied = &clone
		}
		if node >= 0 {
			// The model places; it does not start containers: a
			// replacement counts as ready, as it will be once pulled.
			copied.Replicas[i].Node, copied.Replicas[i].Ready = c.Nodes[node].Name, true
		} else {
			copied.Replicas[i].Node, copied.Replicas[i].Ready = "", false
		}
	}
	if copied == nil {
		return s
	}
	return copied
}
