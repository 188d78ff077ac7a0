package whatif

import (
	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// noPlacementInput is the unknown reason when the source gives the
// cluster without the placement model's input.
const noPlacementInput = "no placement input"

// placed is the placement model's answer for one cluster: the nodes that
// are unschedulable in it are gone, and their displaced pods placed on
// the others.
type placed struct {
	cluster *placement.Cluster
	result  *placement.Result
}

// simulate places the pods displaced from the unschedulable nodes of c,
// on the placement input of base (c shares it); nil without input.
func simulate(base, c *spread.Cluster) *placed {
	if base.Placement == nil {
		return nil
	}
	gone := make([]bool, len(base.Placement.Nodes))
	for i := range base.Placement.Nodes {
		node := c.Nodes[base.Placement.Nodes[i].Name]
		gone[i] = node != nil && !node.Schedulable()
	}
	return &placed{cluster: base.Placement, result: placement.Simulate(base.Placement, gone)}
}

// pods returns the indexes of a service's pods in the placement input.
func pods(svc *spread.Service) []int32 {
	out := make([]int32, 0, len(svc.Replicas))
	for _, r := range svc.Replicas {
		if i, ok := r.PlacementPod(); ok {
			out = append(out, i)
		}
	}
	return out
}

// summary is the placement of a service's displaced pods.
func (p *placed) summary(svc *spread.Service) placement.Summary {
	if p == nil {
		return placement.Summary{State: placement.StateUnknown, Reasons: map[placement.Reason]int{}, UnknownReason: noPlacementInput}
	}
	return p.result.Summarize(pods(svc))
}

// verdict is the verdict the placement adds to a service's spread
// verdict: no_room when some displaced replica fits nowhere.
func placementVerdict(s placement.Summary) spread.Verdict {
	if s.State == placement.StateNoRoom {
		return spread.VerdictNoRoom
	}
	return spread.VerdictOK
}

// hasDisplaced reports whether some pod of the service is displaced.
func (p *placed) hasDisplaced(svc *spread.Service) bool {
	if p == nil {
		return false
	}
	for _, r := range svc.Replicas {
		if i, ok := r.PlacementPod(); ok {
			if _, displaced := p.result.Outcome(i); displaced {
				return true
			}
		}
	}
	return false
}

// templates returns the distinct templates of a service's pods: the
// images a replacement needs, and where it may go.
func (p *placed) templates(svc *spread.Service) []*placement.Template {
	var out []*placement.Template
	for _, i := range pods(svc) {
		t := p.cluster.Pods[i].Template
		if t != nil && (len(out) == 0 || out[len(out)-1] != t) && !containsTemplate(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func containsTemplate(list []*placement.Template, t *placement.Template) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// addPlacement fills in the placement, warm nodes and budgets of the
// answer's services, whose spread services are given in the same order.
func (p *placed) addPlacement(answer *Answer, services []*spread.Service) {
	if p == nil {
		for i := range answer.Services {
			answer.Services[i].PDB = []placement.PDBExceeded{}
		}
		return
	}
	templates := make([][]*placement.Template, len(services))
	for i, svc := range services {
		templates[i] = p.templates(svc)
		answer.Services[i].PDB = p.result.PDBs(pods(svc))
	}
	for i, warm := range p.result.WarmNodes(templates) {
		answer.Services[i].WarmNodes = warm
	}
}
