package fidelity

import (
	"strings"
	"testing"
)

// TestSummary pins down the table make fidelity prints: agreement over the
// services the model made a claim about, unknowns and missing answers
// apart, every disagreement with its seed.
func TestSummary(t *testing.T) {
	results := []*ServiceResult{
		{Seed: 3, Kind: "Deployment", Name: "svc-a", Displaced: 2, Placed: 2, Predicted: &PlacementAnswer{State: StateFit, Displaced: 2, Placed: 2}},
		{Seed: 3, Kind: "StatefulSet", Name: "svc-b", Constraints: "cpu=1 mem=1Gi anti-affinity=hostname", Displaced: 3, Placed: 1, Unschedulable: 2,
			Predicted: &PlacementAnswer{State: StateNoRoom, Displaced: 3, Placed: 2, Unplaced: 1, Reasons: map[string]int{"anti_affinity": 1}}},
		{Seed: 4, Kind: "Deployment", Name: "svc-a", Displaced: 1, Placed: 0, Unschedulable: 1, Predicted: &PlacementAnswer{State: StateUnknown, Displaced: 1, UnknownReason: "volume topology"}},
		{Seed: 4, Kind: "Deployment", Name: "svc-c", Displaced: 1, Placed: 1},
	}
	want := `fidelity against kube-scheduler, seeds 3 to 5
cases                                        3
cases with displaced replicas                2
services with displaced replicas             4
  the scheduler could not place them all     2
  predicted fit or no_room                   2
  predicted unknown                          1
  no placement in the answer                 1
agreement on placed replicas                 50.0% (1 of 2)
disagreements (replay one with -fidelity.seed=SEED -fidelity.cases=1):
seed   service                  displaced predicted scheduler constraints
3      StatefulSet/svc-b        3         2         1         cpu=1 mem=1Gi anti-affinity=hostname
` + ErrNoPlacement + `
predicted reasons for unplaced replicas: anti_affinity=1
`
	if got := Summary(3, 3, results); got != want {
		t.Errorf("Summary:\n%s\nwant:\n%s", got, want)
		gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range min(len(gotLines), len(wantLines)) {
			if gotLines[i] != wantLines[i] {
				t.Errorf("first difference, line %d:\n%q\n%q", i+1, gotLines[i], wantLines[i])
				break
			}
		}
	}
}
