package spread

import (
	"fmt"
	"reflect"
	"testing"
)

// FindingsCases are the cluster states every consumer of the alert logic
// is checked against: Findings here, and the alert rules through promtool.
func TestFindings(t *testing.T) {
	// Four nodes in two zones, like codfw's kubernetes200x.
	cluster := func(cordoned ...string) map[string]*Node {
		ns := map[string]*Node{
			"n1": {Name: "n1", Domains: []string{"a"}}, "n2": {Name: "n2", Domains: []string{"b"}},
			"n3": {Name: "n3", Domains: []string{"a"}}, "n4": {Name: "n4", Domains: []string{"b"}},
		}
		for _, name := range cordoned {
			ns[name].Unschedulable = []Reason{ReasonCordoned}
		}
		return ns
	}
	deployment := func(desired, minNodes int, on ...string) *Service {
		return &Service{Namespace: "ns", Kind: KindDeployment, Name: "svc", DesiredReplicas: desired, MinNodes: minNodes, Replicas: ready(on...)}
	}
	tests := []struct {
		name    string
		nodes   map[string]*Node
		service *Service
		want    []string
	}{
		{"spread over four nodes", cluster(), deployment(4, 0, "n1", "n2", "n3", "n4"), nil},
		{"mathoid day one, min_nodes 2: two nodes are enough", cluster(), deployment(4, 0, "n1", "n1", "n2", "n2"), nil},
		{"mathoid day one, min_nodes 3", cluster(), deployment(4, 3, "n1", "n1", "n2", "n2"), []string{"KubeSpreadBelowMinNodes/warning"}},
		{"mathoid day one, min_nodes 3, cluster too small to do better", cluster("n3", "n4"), deployment(4, 3, "n1", "n1", "n2", "n2"), nil},
		{"mathoid day two: no replica survives", cluster("n1", "n2"), deployment(4, 0, "n1", "n1", "n2", "n2"), []string{"KubeSpreadNoReplicaSurvivesMaintenance/critical"}},
		{"sequential reimage cordons one of two nodes", cluster("n1"), deployment(4, 0, "n1", "n1", "n2", "n2"), []string{"KubeSpreadMaintenanceBelowMinNodes/critical"}},
		{"single-homed now", cluster(), deployment(3, 0, "n1", "n1", "n1"), []string{"KubeSpreadSingleHomed/warning", "KubeSpreadSingleTopologyDomain/warning/zone"}},
		{"single-homed on a cordoned node", cluster("n1"), deployment(3, 0, "n1", "n1", "n1"), []string{"KubeSpreadNoReplicaSurvivesMaintenance/critical", "KubeSpreadSingleHomed/warning", "KubeSpreadSingleTopologyDomain/warning/zone"}},
		{"single-homed was the steady state: not caused by maintenance", cluster("n2"), deployment(3, 0, "n1", "n1", "n1"), []string{"KubeSpreadSingleHomed/warning", "KubeSpreadSingleTopologyDomain/warning/zone"}},
		{"two nodes, one zone", cluster(), deployment(2, 0, "n1", "n3"), []string{"KubeSpreadSingleTopologyDomain/warning/zone"}},
		{"one zone while the other zone is cordoned", cluster("n2", "n4"), deployment(2, 0, "n1", "n3"), nil},
		{"not enough ready replicas to spread is an availability problem, not spread", cluster(), deployment(3, 3, "n1", "n2"), nil},
		{"one desired replica never pages", cluster("n1"), deployment(1, 0, "n1"), nil},
		{"min-nodes 1 never pages", cluster("n1"), deployment(3, 1, "n1", "n1", "n1"), nil},
		{"nothing ready: other monitoring pages", cluster("n1"), deployment(3, 0), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{TopologyKeys: []string{"zone"}, Nodes: tc.nodes, Services: []*Service{tc.service}}
			var got []string
			for _, f := range Analyze(c, Options{DefaultMinNodes: 2}).Findings() {
				s := fmt.Sprintf("%s/%s", f.Alert, f.Severity)
				if f.TopologyKey != "" {
					s += "/" + f.TopologyKey
				}
				got = append(got, s)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings = %v, want %v", got, tc.want)
			}
		})
	}
}
