package whatif

import (
	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// noPlacementInput is the unknown reason when the source gives the
// cluster without the placement model's input.
const noPlacementInput = "no placement input"

// placementSummary is the placement of a service's displaced pods; unknown without
// placement input (p nil), its reasons left to withReasons: a question
// looks at every service, and lists few.
func placementSummary(p *spread.Displacement, svc *spread.Service) placement.Summary {
	if p == nil {
		return placement.Summary{State: placement.StateUnknown, UnknownReason: noPlacementInput}
	}
	return p.Summary(svc)
}

// placementVerdict is the verdict the placement adds to a service's
// spread verdict: no_room when some displaced replica fits nowhere. A
// service with no ready replica is down for other reasons and stays ok,
// as the spread judges it: the batch cannot take from it what it does not
// have, and must not be blocked by a crash-looping workload.
func placementVerdict(s placement.Summary, f *spread.Figures) spread.Verdict {
	if s.State == placement.StateNoRoom && f.ReplicasReady > 0 {
		return spread.VerdictNoRoom
	}
	return spread.VerdictOK
}

// addPlacement fills in the warm nodes and budgets of the answer's
// services, whose spread services are given in the same order.
func addPlacement(p *spread.Displacement, answer *Answer, services []*spread.Service) {
	if p == nil {
		for i := range answer.Services {
			answer.Services[i].PDB = []placement.PDBExceeded{}
		}
		return
	}
	for i, svc := range services {
		answer.Services[i].PDB = p.PDBs(svc)
	}
	for i, warm := range p.WarmNodes(services) {
		answer.Services[i].WarmNodes = warm
	}
}
