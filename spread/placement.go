package spread

import (
	"slices"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// Displacement is the placement model's answer for a cluster: the pods on
// its unschedulable nodes are displaced, and placed on the others. The
// what-if API asks it of a cluster with the asked nodes gone, the
// collector of the cluster as it is.
type Displacement struct {
	input  *placement.Cluster
	result *placement.Result
}

// PlaceDisplaced places the pods displaced from the unschedulable nodes of
// c on its other nodes. input is the placement input of the snapshot c
// derives from (WithNodesGone and WithNodesInService share it, only the
// nodes' state differs). It returns nil without input.
func PlaceDisplaced(input *placement.Cluster, c *Cluster) *Displacement {
	if input == nil {
		return nil
	}
	gone := make([]bool, len(input.Nodes))
	for i := range input.Nodes {
		node := c.Nodes[input.Nodes[i].Name]
		gone[i] = node != nil && !node.Schedulable()
	}
	return &Displacement{input: input, result: placement.Simulate(input, gone)}
}

// pods returns the indexes of a service's pods in the placement input.
func pods(svc *Service) []int32 {
	out := make([]int32, 0, len(svc.Replicas))
	for _, r := range svc.Replicas {
		if i, ok := r.PlacementPod(); ok {
			out = append(out, i)
		}
	}
	return out
}

// Summary is the placement of a service's displaced pods.
func (d *Displacement) Summary(svc *Service) placement.Summary {
	return d.result.Summarize(pods(svc))
}

// HasDisplaced reports whether some pod of the service is displaced; false
// on a nil Displacement.
func (d *Displacement) HasDisplaced(svc *Service) bool {
	if d == nil {
		return false
	}
	for _, r := range svc.Replicas {
		if i, ok := r.PlacementPod(); ok {
			if _, displaced := d.result.Outcome(i); displaced {
				return true
			}
		}
	}
	return false
}

// PDBs returns the budgets the evictions of the service's pods on
// unschedulable nodes would exceed (placement.Result.PDBs).
func (d *Displacement) PDBs(svc *Service) []placement.PDBExceeded {
	return d.result.PDBs(pods(svc))
}

// WarmNodes counts, for each service, the schedulable nodes that pass its
// pods' static filters and already hold every image they name
// (placement.Result.WarmNodes), all services asked at once.
func (d *Displacement) WarmNodes(services []*Service) []int {
	templates := make([][]*placement.Template, len(services))
	for i, svc := range services {
		templates[i] = d.templates(svc)
	}
	return d.result.WarmNodes(templates)
}

// templates returns the distinct templates of a service's pods: the
// images a replacement needs, and where it may go.
func (d *Displacement) templates(svc *Service) []*placement.Template {
	var out []*placement.Template
	for _, i := range pods(svc) {
		// Pods of one template mostly come in a row: compare with the
		// last first.
		t := d.input.Pods[i].Template
		if t != nil && (len(out) == 0 || out[len(out)-1] != t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
