package placement

import (
	"testing"
)

func labels(kv ...string) Labels {
	l := make(Labels, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		l = append(l, Label{kv[i], kv[i+1]})
	}
	sortLabels(l)
	return l
}

func sortLabels(l Labels) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].Key < l[j-1].Key; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func TestFilterTaints(t *testing.T) {
	for _, tc := range []struct {
		name        string
		taints      []Taint
		tolerations []Toleration
		want        reasonID
	}{
		{"no taints", nil, nil, fits},
		{"NoSchedule untolerated", []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}}, nil, idTaint},
		{"NoExecute untolerated", []Taint{{Key: "k", Effect: EffectNoExecute}}, nil, idTaint},
		{"PreferNoSchedule only scores", []Taint{{Key: "k", Effect: EffectPreferNoSchedule}}, nil, fits},
		{"Equal with the value", []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "dedicated", Operator: "Equal", Value: "db", Effect: EffectNoSchedule}}, fits},
		{"empty operator is Equal", []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "dedicated", Value: "db"}}, fits},
		{"Equal with another value", []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "dedicated", Operator: "Equal", Value: "web"}}, idTaint},
		{"Exists ignores the value", []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "dedicated", Operator: "Exists"}}, fits},
		{"empty key with Exists tolerates all", []Taint{{Key: "a", Effect: EffectNoSchedule}, {Key: "b", Effect: EffectNoExecute}},
			[]Toleration{{Operator: "Exists"}}, fits},
		{"other effect", []Taint{{Key: "k", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "k", Operator: "Exists", Effect: EffectNoExecute}}, idTaint},
		{"one of two tolerated", []Taint{{Key: "a", Effect: EffectNoSchedule}, {Key: "b", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "a", Operator: "Exists"}}, idTaint},
		{"unknown operator tolerates nothing", []Taint{{Key: "k", Effect: EffectNoSchedule}},
			[]Toleration{{Key: "k", Operator: "Lt", Value: "5"}}, idTaint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := filterTaints(&Template{Tolerations: tc.tolerations}, &Node{Taints: tc.taints})
			if got != tc.want {
				t.Errorf("filterTaints = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFilterNodeSelector(t *testing.T) {
	node := &Node{Name: "n1", Labels: labels("disk", "ssd", "zone", "a")}
	for _, tc := range []struct {
		name     string
		selector Labels
		want     reasonID
	}{
		{"none", nil, fits},
		{"equal", labels("disk", "ssd"), fits},
		{"all must equal", labels("disk", "ssd", "zone", "b"), idNodeSelector},
		{"missing label", labels("gpu", "true"), idNodeSelector},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := filterNodeSelector(&Template{NodeSelector: tc.selector}, node); got != tc.want {
				t.Errorf("filterNodeSelector = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFilterNodeAffinity(t *testing.T) {
	node := &Node{Name: "n1", Labels: labels("disk", "ssd", "cores", "16", "zone", "a")}
	expr := func(key string, op Operator, values ...string) Requirement {
		return Requirement{Key: key, Operator: op, Values: values}
	}
	term := func(r ...Requirement) NodeSelectorTerm { return NodeSelectorTerm{Expressions: r} }
	for _, tc := range []struct {
		name  string
		terms []NodeSelectorTerm
		want  reasonID
	}{
		{"none", nil, fits},
		{"In", []NodeSelectorTerm{term(expr("zone", OpIn, "a", "b"))}, fits},
		{"In misses", []NodeSelectorTerm{term(expr("zone", OpIn, "b"))}, idNodeAffinity},
		{"NotIn", []NodeSelectorTerm{term(expr("zone", OpNotIn, "b"))}, fits},
		{"NotIn holds without the label", []NodeSelectorTerm{term(expr("gpu", OpNotIn, "x"))}, fits},
		{"NotIn misses", []NodeSelectorTerm{term(expr("zone", OpNotIn, "a"))}, idNodeAffinity},
		{"Exists", []NodeSelectorTerm{term(expr("disk", OpExists))}, fits},
		{"DoesNotExist", []NodeSelectorTerm{term(expr("gpu", OpDoesNotExist))}, fits},
		{"DoesNotExist misses", []NodeSelectorTerm{term(expr("disk", OpDoesNotExist))}, idNodeAffinity},
		{"Gt", []NodeSelectorTerm{term(expr("cores", OpGt, "8"))}, fits},
		{"Gt equal misses", []NodeSelectorTerm{term(expr("cores", OpGt, "16"))}, idNodeAffinity},
		{"Lt", []NodeSelectorTerm{term(expr("cores", OpLt, "32"))}, fits},
		{"Gt on a non-number misses", []NodeSelectorTerm{term(expr("zone", OpGt, "1"))}, idNodeAffinity},
		{"Gt without the label misses", []NodeSelectorTerm{term(expr("gpus", OpGt, "0"))}, idNodeAffinity},
		{"expressions are ANDed", []NodeSelectorTerm{term(expr("zone", OpIn, "a"), expr("disk", OpIn, "hdd"))}, idNodeAffinity},
		{"terms are ORed", []NodeSelectorTerm{term(expr("zone", OpIn, "b")), term(expr("disk", OpIn, "ssd"))}, fits},
		{"an empty term matches nothing", []NodeSelectorTerm{{}}, idNodeAffinity},
		{"field metadata.name", []NodeSelectorTerm{{Fields: []Requirement{expr("metadata.name", OpIn, "n1")}}}, fits},
		{"field metadata.name misses", []NodeSelectorTerm{{Fields: []Requirement{expr("metadata.name", OpNotIn, "n1")}}}, idNodeAffinity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := filterNodeAffinity(&Template{NodeAffinity: tc.terms}, node); got != tc.want {
				t.Errorf("filterNodeAffinity = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFilterResources(t *testing.T) {
	// Slots: cpu, memory, ephemeral storage, pods, one extended.
	allocatable := []int64{4000, 8 << 30, 100 << 30, 110, 2}
	for _, tc := range []struct {
		name    string
		request []int64
		used    []int64
		want    reasonID
	}{
		{"fits", []int64{1000, 1 << 30, 0, 1, 0}, []int64{2000, 4 << 30, 0, 10, 0}, fits},
		{"exactly full fits", []int64{2000, 4 << 30, 0, 1, 0}, []int64{2000, 4 << 30, 0, 10, 0}, fits},
		{"cpu", []int64{2001, 0, 0, 1, 0}, []int64{2000, 0, 0, 10, 0}, reasonResources + slotCPU},
		{"memory", []int64{0, 5 << 30, 0, 1, 0}, []int64{0, 4 << 30, 0, 10, 0}, reasonResources + slotMemory},
		{"ephemeral storage", []int64{0, 0, 1 << 30, 1, 0}, []int64{0, 0, 100 << 30, 10, 0}, reasonResources + slotEphemeralStorage},
		{"extended", []int64{0, 0, 0, 1, 1}, []int64{0, 0, 0, 10, 2}, reasonResources + fixedSlots},
		{"pods first", []int64{9000, 0, 0, 1, 0}, []int64{0, 0, 0, 110, 0}, idInsufficientPods},
		{"cpu before memory", []int64{9000, 9 << 30, 0, 1, 0}, []int64{0, 0, 0, 0, 0}, reasonResources + slotCPU},
		{"an over-committed resource not requested is not checked", []int64{0, 1 << 30, 0, 1, 0}, []int64{5000, 0, 0, 10, 0}, fits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := filterResources(tc.request, tc.used, allocatable); got != tc.want {
				t.Errorf("filterResources = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	pod := labels("app", "web", "tier", "front")
	for _, tc := range []struct {
		name     string
		selector Selector
		want     bool
	}{
		{"empty matches all", Selector{}, true},
		{"nothing matches none", Selector{Nothing: true}, false},
		{"In", Selector{Requirements: []Requirement{{Key: "app", Operator: OpIn, Values: []string{"web"}}}}, true},
		{"In and NotIn", Selector{Requirements: []Requirement{
			{Key: "app", Operator: OpIn, Values: []string{"web"}},
			{Key: "tier", Operator: OpNotIn, Values: []string{"front"}},
		}}, false},
		{"DoesNotExist", Selector{Requirements: []Requirement{{Key: "canary", Operator: OpDoesNotExist}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.selector.Matches(pod); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLabelsLookupLong(t *testing.T) {
	var kv []string
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"} {
		kv = append(kv, k, "v"+k)
	}
	l := labels(kv...)
	for _, k := range []string{"a", "f", "k"} {
		if v, ok := l.Lookup(k); !ok || v != "v"+k {
			t.Errorf("Lookup(%q) = %q, %v", k, v, ok)
		}
	}
	if _, ok := l.Lookup("zz"); ok {
		t.Error("Lookup(zz) found a label")
	}
}

func TestNormalizeImage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nginx", "nginx:latest"},
		{"nginx:1.25", "nginx:1.25"},
		{"library/nginx:1.25", "nginx:1.25"},
		{"registry.example/library/nginx:1.25", "nginx:1.25"},
		{"registry.example/team/mathoid:2018", "team/mathoid:2018"},
		{"localhost:5000/mathoid", "mathoid:latest"},
		{"team/mathoid@sha256:abc", "team/mathoid@sha256:abc"},
		{"", ""},
	} {
		if got := NormalizeImage(tc.in); got != tc.want {
			t.Errorf("NormalizeImage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScores(t *testing.T) {
	// LeastAllocated: half the CPU and a quarter of the memory free.
	if got := leastAllocated([2]int64{2000, 6 << 30}, [2]int64{4000, 8 << 30}); got != (50+25)/2 {
		t.Errorf("leastAllocated = %d, want 37", got)
	}
	if got := leastAllocated([2]int64{5000, 0}, [2]int64{4000, 0}); got != 0 {
		t.Errorf("leastAllocated over capacity = %d, want 0", got)
	}
	// A pod that changes nothing in the balance scores 75.
	alloc := [2]int64{4000, 8 << 30}
	if got := balancedAllocation(balance([2]int64{2000, 4 << 30}, alloc), balance([2]int64{1000, 2 << 30}, alloc)); got != 75 {
		t.Errorf("balancedAllocation, same shares = %d, want 75", got)
	}
	// From CPU 50% / memory 0% (std 0.25, 75) to 50% / 50% (100): 87.
	if got := balancedAllocation(balance([2]int64{2000, 4 << 30}, alloc), balance([2]int64{2000, 0}, alloc)); got != 87 {
		t.Errorf("balancedAllocation, better balance = %d, want 87", got)
	}
}

func TestFeasibleNodesToFind(t *testing.T) {
	for _, tc := range []struct{ nodes, want int }{
		{0, 0}, {99, 99}, {100, 100}, {200, 100}, {1000, 420}, {5000, 500}, {15000, 750},
	} {
		if got := feasibleNodesToFind(tc.nodes); got != tc.want {
			t.Errorf("feasibleNodesToFind(%d) = %d, want %d", tc.nodes, got, tc.want)
		}
	}
}
