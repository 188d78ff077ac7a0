package spread

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// nodes builds schedulable nodes in zone "a" unless reasons are given.
func nodes(names ...string) map[string]*Node {
	m := make(map[string]*Node, len(names))
	for _, name := range names {
		m[name] = &Node{Name: name, Domains: []string{"zone-" + name}}
	}
	return m
}

func ready(nodeNames ...string) []Replica {
	replicas := make([]Replica, 0, len(nodeNames))
	for _, name := range nodeNames {
		replicas = append(replicas, Replica{Node: name, Ready: true})
	}
	return replicas
}

func TestAnalyzeService(t *testing.T) {
	mathoid := func(replicas []Replica) *Service {
		return &Service{Namespace: "default", Kind: KindDeployment, Name: "mathoid", DesiredReplicas: 4, Replicas: replicas}
	}
	cordon := func(ns map[string]*Node, reason Reason, names ...string) map[string]*Node {
		for _, name := range names {
			ns[name].Unschedulable = append(ns[name].Unschedulable, reason)
		}
		return ns
	}
	tests := []struct {
		name    string
		nodes   map[string]*Node
		service *Service
		want    Figures
		verdict Verdict
	}{
		{
			name:    "mathoid day one: all replicas on 2001 and 2002, nothing cordoned",
			nodes:   nodes("kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"),
			service: mathoid(ready("kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")),
			want: Figures{
				ReplicasReady: 4, ReplicasSchedulable: 4, Nodes: 2, SchedulableNodes: 2,
				ConcentrationRatio: 0.5, Domains: []Domains{{Key: "zone", All: 2, Schedulable: 2}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"kubernetes2001", 2}, {"kubernetes2002", 2}},
			},
			verdict: VerdictOK,
		},
		{
			name:    "mathoid day two: 2001 and 2002 cordoned together leave no replica",
			nodes:   cordon(nodes("kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"), ReasonCordoned, "kubernetes2001", "kubernetes2002"),
			service: mathoid(ready("kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")),
			want: Figures{
				ReplicasReady: 4, ReplicasSchedulable: 0, Nodes: 2, SchedulableNodes: 0,
				ConcentrationRatio: 0.5, Domains: []Domains{{Key: "zone", All: 2, Schedulable: 0}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"kubernetes2001", 2}, {"kubernetes2002", 2}},
			},
			verdict: VerdictNoReplicasLeft,
		},
		{
			name:    "NotReady node loses its replicas",
			nodes:   cordon(nodes("a", "b", "c"), ReasonNotReady, "a"),
			service: mathoid(ready("a", "b", "c", "c")),
			want: Figures{
				ReplicasReady: 4, ReplicasSchedulable: 3, Nodes: 3, SchedulableNodes: 2,
				ConcentrationRatio: 0.5, Domains: []Domains{{Key: "zone", All: 3, Schedulable: 2}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"a", 1}, {"b", 1}, {"c", 2}},
			},
			verdict: VerdictOK,
		},
		{
			name:    "maintenance taint leaves the service single-homed",
			nodes:   cordon(nodes("a", "b"), ReasonMaintenanceTaint, "a"),
			service: mathoid(ready("a", "b", "b", "b")),
			want: Figures{
				ReplicasReady: 4, ReplicasSchedulable: 3, Nodes: 2, SchedulableNodes: 1,
				ConcentrationRatio: 0.75, Domains: []Domains{{Key: "zone", All: 2, Schedulable: 1}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"a", 1}, {"b", 3}},
			},
			verdict: VerdictSingleHomed,
		},
		{
			name:    "maintenance label selector marks a planned batch",
			nodes:   cordon(nodes("a", "b", "c"), ReasonMaintenanceLabel, "a", "b"),
			service: &Service{Namespace: "ns", Kind: KindStatefulSet, Name: "db", DesiredReplicas: 3, MinNodes: 2, Replicas: ready("a", "b", "c")},
			want: Figures{
				ReplicasReady: 3, ReplicasSchedulable: 1, Nodes: 3, SchedulableNodes: 1,
				ConcentrationRatio: 1.0 / 3, Domains: []Domains{{Key: "zone", All: 3, Schedulable: 1}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"a", 1}, {"b", 1}, {"c", 1}},
			},
			verdict: VerdictBelowMinNodes,
		},
		{
			name:  "terminating and unready replicas do not count",
			nodes: nodes("a", "b"),
			service: mathoid([]Replica{
				{Node: "a", Ready: true}, {Node: "a", Ready: true}, {Node: "b", Ready: false}, {Node: "", Ready: false},
			}),
			want: Figures{
				ReplicasReady: 2, ReplicasSchedulable: 2, Nodes: 1, SchedulableNodes: 1,
				ConcentrationRatio: 1, Domains: []Domains{{Key: "zone", All: 1, Schedulable: 1}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"a", 2}},
			},
			verdict: VerdictSingleHomed,
		},
		{
			// "gone" is a deleted node whose pods the garbage collector has
			// not removed yet: they are on no node, not on a node that
			// does not exist.
			name:    "ready replicas on an unknown or deleted node count as ready, on no node",
			nodes:   nodes("a"),
			service: &Service{Namespace: "ns", Kind: KindService, Name: "web", DesiredReplicas: -1, Replicas: ready("a", "", "gone", "gone")},
			want: Figures{
				ReplicasReady: 4, ReplicasSchedulable: 1, Nodes: 1, SchedulableNodes: 1,
				ConcentrationRatio: 1.0 / 4, Domains: []Domains{{Key: "zone", All: 1, Schedulable: 1}}, MinNodes: 2,
				NodeReplicas: []NodeCount{{"a", 1}},
			},
			verdict: VerdictBelowMinNodes,
		},
		{
			name:    "one-replica Deployment needs one node and never pages",
			nodes:   cordon(nodes("a"), ReasonCordoned, "a"),
			service: &Service{Namespace: "ns", Kind: KindDeployment, Name: "solo", DesiredReplicas: 1, Replicas: ready("a")},
			want: Figures{
				ReplicasReady: 1, Nodes: 1, ConcentrationRatio: 1,
				Domains: []Domains{{Key: "zone", All: 1}}, MinNodes: 1, NodeReplicas: []NodeCount{{"a", 1}},
			},
			verdict: VerdictOK,
		},
		{
			name:    "annotation min-nodes 1 declares a service non-redundant",
			nodes:   cordon(nodes("a"), ReasonCordoned, "a"),
			service: &Service{Namespace: "ns", Kind: KindDeployment, Name: "batch", DesiredReplicas: 3, MinNodes: 1, Replicas: ready("a", "a", "a")},
			want: Figures{
				ReplicasReady: 3, Nodes: 1, ConcentrationRatio: 1,
				Domains: []Domains{{Key: "zone", All: 1}}, MinNodes: 1, NodeReplicas: []NodeCount{{"a", 3}},
			},
			verdict: VerdictOK,
		},
		{
			name:    "min-nodes is capped at the endpoints a Service has, ready or not",
			nodes:   nodes("a", "b", "c"),
			service: &Service{Namespace: "ns", Kind: KindService, Name: "web", DesiredReplicas: -1, MinNodes: 5, Replicas: append(ready("a", "b"), Replica{Node: "c"})},
			want: Figures{
				ReplicasReady: 2, ReplicasSchedulable: 2, Nodes: 2, SchedulableNodes: 2,
				ConcentrationRatio: 0.5, Domains: []Domains{{Key: "zone", All: 2, Schedulable: 2}}, MinNodes: 3,
				NodeReplicas: []NodeCount{{"a", 1}, {"b", 1}},
			},
			verdict: VerdictBelowMinNodes,
		},
		{
			name:    "a service with nothing ready has no concentration and is ok",
			nodes:   nodes("a"),
			service: mathoid([]Replica{{Node: "a"}}),
			want:    Figures{Domains: []Domains{{Key: "zone"}}, MinNodes: 2, NodeReplicas: []NodeCount{}},
			verdict: VerdictOK,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cluster := &Cluster{TopologyKeys: []string{"zone"}, Nodes: tc.nodes, Services: []*Service{tc.service}}
			report := Analyze(cluster, Options{DefaultMinNodes: 2})
			got := report.Services[0]
			tc.want.Service = tc.service
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("figures:\n got %+v\nwant %+v", got, tc.want)
			}
			if v := got.Verdict(); v != tc.verdict {
				t.Errorf("verdict = %s, want %s", v, tc.verdict)
			}
		})
	}
}

func TestTopologyDomainsPerKey(t *testing.T) {
	cluster := &Cluster{
		TopologyKeys: []string{"topology.kubernetes.io/zone", "rack"},
		Nodes: map[string]*Node{
			"a": {Name: "a", Domains: []string{"eqiad-a", "r1"}},
			"b": {Name: "b", Domains: []string{"eqiad-a", "r2"}, Unschedulable: []Reason{ReasonCordoned}},
			"c": {Name: "c", Domains: []string{"eqiad-b", ""}},
		},
		Services: []*Service{{Namespace: "ns", Kind: KindDeployment, Name: "x", DesiredReplicas: 3, Replicas: ready("a", "b", "c")}},
	}
	got := Analyze(cluster, Options{DefaultMinNodes: 2}).Services[0].Domains
	want := []Domains{
		{Key: "topology.kubernetes.io/zone", All: 2, Schedulable: 2},
		// c has no rack label: it belongs to no rack domain.
		{Key: "rack", All: 2, Schedulable: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("domains = %+v, want %+v", got, want)
	}
}

func TestAnalyzeCountsSingleHomedServicesPerNode(t *testing.T) {
	cluster := &Cluster{
		Nodes: nodes("a", "b"),
		Services: []*Service{
			{Namespace: "ns", Kind: KindDeployment, Name: "web", DesiredReplicas: 2, Replicas: ready("a", "a")},
			{Namespace: "ns", Kind: KindService, Name: "web", DesiredReplicas: -1, Replicas: ready("a", "a")},
			// One ready replica is not "single-homed": it has no second to lose.
			{Namespace: "ns", Kind: KindDeployment, Name: "solo", DesiredReplicas: 1, Replicas: ready("b")},
			{Namespace: "ns", Kind: KindDeployment, Name: "spread", DesiredReplicas: 2, Replicas: ready("a", "b")},
		},
	}
	report := Analyze(cluster, Options{DefaultMinNodes: 2})
	if len(report.Nodes) != 2 || report.Nodes[0].Node.Name != "a" || report.Nodes[1].Node.Name != "b" {
		t.Fatalf("nodes not sorted by name: %+v", report.Nodes)
	}
	if got, want := report.Nodes[0].SingleHomedServices, map[Kind]int{KindDeployment: 1, KindService: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("node a single-homed = %v, want %v", got, want)
	}
	if got := report.Nodes[1].SingleHomedServices; len(got) != 0 {
		t.Errorf("node b single-homed = %v, want none", got)
	}
	var order []string
	for _, f := range report.Services {
		order = append(order, string(f.Service.Kind)+"/"+f.Service.Name)
	}
	if want := []string{"Deployment/solo", "Deployment/spread", "Deployment/web", "Service/web"}; !reflect.DeepEqual(order, want) {
		t.Errorf("services order = %v, want %v", order, want)
	}
}

func TestParseMinNodes(t *testing.T) {
	tests := []struct {
		value   string
		want    int
		wantErr string
	}{
		{value: "3", want: 3},
		{value: "1", want: 1},
		{value: "007", want: 7},
		{value: "100000", want: 100000},
		{value: "0", wantErr: `annotation kube-spread.io/min-nodes="0": must be from 1 to 100000`},
		{value: "-2", wantErr: `annotation kube-spread.io/min-nodes="-2": must be from 1 to 100000`},
		{value: "100001", wantErr: `annotation kube-spread.io/min-nodes="100001": must be from 1 to 100000`},
		{value: "three", wantErr: `annotation kube-spread.io/min-nodes="three": not a whole number`},
		{value: "", wantErr: `annotation kube-spread.io/min-nodes="": not a whole number`},
		{value: "2.5", wantErr: `annotation kube-spread.io/min-nodes="2.5": not a whole number`},
		{value: "99999999999999999999", wantErr: `annotation kube-spread.io/min-nodes="99999999999999999999": must be from 1 to 100000`},
		// The docs say a whole number: nothing else is taken for one.
		{value: " 3", wantErr: `annotation kube-spread.io/min-nodes=" 3": not a whole number`},
		{value: "3 ", wantErr: `annotation kube-spread.io/min-nodes="3 ": not a whole number`},
		{value: "+3", wantErr: `annotation kube-spread.io/min-nodes="+3": not a whole number`},
		{value: "３", wantErr: `annotation kube-spread.io/min-nodes="３": not a whole number`},
		{value: strings.Repeat("x", 10000), wantErr: `annotation kube-spread.io/min-nodes="` + strings.Repeat("x", 64) + `"... (10000 bytes): not a whole number`},
	}
	for _, tc := range tests {
		got, err := ParseMinNodes(tc.value)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseMinNodes(%q) error = %v, want %q", tc.value, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMinNodes(%q) = %d, %v; want %d", tc.value, got, err, tc.want)
		}
	}
}

func FuzzParseMinNodes(f *testing.F) {
	for _, seed := range []string{"2", " 3 ", "007", "+3", "0", "-1", "abc", "1e3", "100001", "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		n, err := ParseMinNodes(value)
		if err == nil && (n < 1 || n > maxMinNodes || strconv.Itoa(n) != strings.TrimLeft(value, "0")) {
			t.Errorf("ParseMinNodes(%q) = %d without error: not the whole number it spells", value, n)
		}
		// 64 bytes of value, each quoted in at most 4, and the message.
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("ParseMinNodes(%q): error of %d bytes", value, len(err.Error()))
		}
	})
}

func TestClusterDomains(t *testing.T) {
	cluster := &Cluster{
		TopologyKeys: []string{"zone"},
		Nodes: map[string]*Node{
			"a": {Name: "a", Domains: []string{"z1"}},
			"b": {Name: "b", Domains: []string{"z2"}, Unschedulable: []Reason{ReasonCordoned}},
			"c": {Name: "c", Domains: []string{""}},
		},
	}
	got := Analyze(cluster, Options{DefaultMinNodes: 2}).Domains
	if want := []Domains{{Key: "zone", All: 2, Schedulable: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("cluster domains = %+v, want %+v", got, want)
	}
}

// TestReplicaSize pins a replica at 24 bytes: the incremental analysis
// keeps one per pod and endpoint (docs/operations.md), and Finished was
// added in the padding after Ready.
func TestReplicaSize(t *testing.T) {
	if size := unsafe.Sizeof(Replica{}); size != 24 {
		t.Errorf("a Replica is %d bytes, want 24", size)
	}
}
