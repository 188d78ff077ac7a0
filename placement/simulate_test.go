package placement

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// scenario builds a small cluster: nodes by name, pods by template.
type scenario struct {
	c    Cluster
	gone []string
}

func (s *scenario) node(name string, cpu, memoryGiB int64, kv ...string) *Node {
	s.c.Nodes = append(s.c.Nodes, Node{
		Name:        name,
		Labels:      labels(append([]string{"kubernetes.io/hostname", name}, kv...)...),
		Allocatable: Resources{MilliCPU: cpu, Memory: memoryGiB << 30, Pods: 110},
	})
	return &s.c.Nodes[len(s.c.Nodes)-1]
}

func (s *scenario) nodeIndex(name string) int32 {
	for i := range s.c.Nodes {
		if s.c.Nodes[i].Name == name {
			return int32(i)
		}
	}
	panic("no node " + name)
}

// pods adds one pod of t on each named node, and returns their indexes.
func (s *scenario) pods(t *Template, nodes ...string) []int32 {
	var indexes []int32
	for i, node := range nodes {
		s.c.Pods = append(s.c.Pods, Pod{Template: t, Name: fmt.Sprintf("%s-%d", t.Owner, i), Node: s.nodeIndex(node), Ready: true})
		indexes = append(indexes, int32(len(s.c.Pods)-1))
	}
	return indexes
}

func (s *scenario) simulate() *Result {
	gone := make([]bool, len(s.c.Nodes))
	for _, name := range s.gone {
		gone[s.nodeIndex(name)] = true
	}
	return Simulate(&s.c, gone)
}

// workload returns the template of a Deployment's pods asking for cpu
// millicores and memory MiB.
func workload(name string, cpu, memoryMiB int64) *Template {
	return &Template{
		Namespace: "default", Owner: "ReplicaSet/" + name, Labels: labels("app", name),
		Requests:      Resources{MilliCPU: cpu, Memory: memoryMiB << 20, Pods: 1},
		ScoreMilliCPU: max(cpu, 100), ScoreMemory: max(memoryMiB<<20, 200<<20),
		Recreated: true,
	}
}

func selectApp(app string) Selector {
	return Selector{Requirements: []Requirement{{Key: "app", Operator: OpIn, Values: []string{app}}}}
}

func summary(state State, displaced, placed int, reasons map[Reason]int) Summary {
	if reasons == nil {
		reasons = map[Reason]int{}
	}
	return Summary{State: state, Displaced: displaced, Placed: placed, Unplaced: displaced - placed, Reasons: reasons}
}

func TestSimulate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(s *scenario) map[string][]int32
		want  map[string]Summary
	}{
		{
			name: "resources: two of three fit, cpu is short",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 4000, 16)
				s.node("b", 4000, 16)
				s.node("c", 2500, 16)
				s.gone = []string{"a", "b"}
				return map[string][]int32{"web": s.pods(workload("web", 1000, 100), "a", "a", "b")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 3, 2, map[Reason]int{ReasonInsufficientCPU: 1})},
		},
		{
			name: "nothing displaced fits",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 4000, 16)
				s.node("b", 4000, 16)
				s.gone = []string{"a"}
				return map[string][]int32{"web": s.pods(workload("web", 1000, 100), "b", "b")}
			},
			want: map[string]Summary{"web": summary(StateFit, 0, 0, nil)},
		},
		{
			name: "memory, and the pods that stay occupy room",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 4)
				s.node("b", 8000, 4)
				s.gone = []string{"a"}
				s.pods(workload("db", 100, 3<<10), "b")
				return map[string][]int32{"web": s.pods(workload("web", 100, 512), "a", "a", "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 3, 2, map[Reason]int{ReasonInsufficientMemory: 1})},
		},
		{
			name: "the pod count of a node",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16).Allocatable.Pods = 2
				s.gone = []string{"a"}
				return map[string][]int32{"web": s.pods(workload("web", 100, 100), "a", "a", "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 3, 2, map[Reason]int{ReasonInsufficientPods: 1})},
		},
		{
			name: "extended resources",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16).Allocatable.Extended = []Quantity{{"example.com/gpu", 2}}
				s.node("b", 8000, 16).Allocatable.Extended = []Quantity{{"example.com/gpu", 1}}
				s.gone = []string{"a"}
				gpu := workload("train", 100, 100)
				gpu.Requests.Extended = []Quantity{{"example.com/gpu", 1}}
				return map[string][]int32{"train": s.pods(gpu, "a", "a")}
			},
			want: map[string]Summary{"train": summary(StateNoRoom, 2, 1, map[Reason]int{"insufficient_example.com/gpu": 1})},
		},
		{
			name: "higher priority first: it takes the room",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 2000, 16)
				s.gone = []string{"a"}
				low, high := workload("aaa-low", 1000, 100), workload("zzz-high", 1000, 100)
				high.Priority = 1000
				high.PreemptNever = true
				return map[string][]int32{"low": s.pods(low, "a", "a"), "high": s.pods(high, "a", "a")}
			},
			want: map[string]Summary{
				"high": summary(StateFit, 2, 2, nil),
				"low":  summary(StateNoRoom, 2, 0, map[Reason]int{ReasonInsufficientCPU: 2}),
			},
		},
		{
			name: "a pod that could preempt lower-priority pods is unknown",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 2000, 16)
				s.gone = []string{"a"}
				s.pods(workload("batch", 1500, 100), "b")
				high := workload("web", 1000, 100)
				high.Priority = 1000
				return map[string][]int32{"web": s.pods(high, "a")}
			},
			want: map[string]Summary{"web": {State: StateUnknown, Displaced: 1, Unplaced: 1, Reasons: map[Reason]int{}, UnknownReason: "preemption of lower-priority pods"}},
		},
		{
			// A Service in front of two workloads, one of which the model
			// cannot judge (a volume): the other's replica certainly has
			// no room, and the service is no_room, its unknown pod named
			// but not counted among those without room.
			name: "a certain shortage is not hidden by an unknown pod",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 2000, 16)
				s.gone = []string{"a"}
				withVolume := workload("db", 500, 100)
				withVolume.Unknown = "persistent volume claim"
				return map[string][]int32{"svc": append(s.pods(withVolume, "a"), s.pods(workload("web", 3000, 100), "a")...)}
			},
			want: map[string]Summary{"svc": {State: StateNoRoom, Displaced: 2, Unplaced: 2,
				Reasons: map[Reason]int{ReasonInsufficientCPU: 1}, UnknownReason: "persistent volume claim"}},
		},
		{
			// kube-scheduler never preempts on a node whose refusal
			// evicting pods cannot clear (UnschedulableAndUnresolvable):
			// the pod stays Pending, whatever runs there.
			name: "preemption cannot clear a taint",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16).Taints = []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}}
				s.gone = []string{"a"}
				s.pods(workload("batch", 500, 100), "b")
				high := workload("web", 1000, 100)
				high.Priority = 1000
				return map[string][]int32{"web": s.pods(high, "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonTaint: 1})},
		},
		{
			name: "preemption cannot clear a request above the node's allocatable",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 2000, 16)
				s.gone = []string{"a"}
				s.pods(workload("batch", 500, 100), "b")
				high := workload("web", 3000, 100)
				high.Priority = 1000
				return map[string][]int32{"web": s.pods(high, "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonInsufficientCPU: 1})},
		},
		{
			// b's room is taken by a pod of higher priority than web's,
			// and c, where a lower-priority pod runs, is tainted.
			name: "preemption helps only where a lower-priority pod runs",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 2000, 16)
				s.node("c", 8000, 16).Taints = []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}}
				s.gone = []string{"a"}
				critical := workload("critical", 1500, 100)
				critical.Priority = 2000
				s.pods(critical, "b")
				s.pods(workload("batch", 500, 100), "c")
				high := workload("web", 1000, 100)
				high.Priority = 1000
				return map[string][]int32{"web": s.pods(high, "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonTaint: 1})},
		},
		{
			name: "DaemonSet, Job and bare pods are not displaced but occupy room",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 4000, 16)
				s.node("b", 4000, 16)
				s.gone = []string{"a"}
				ds := &Template{Namespace: "kube-system", Owner: "DaemonSet/agent", Requests: Resources{MilliCPU: 2500, Pods: 1}}
				s.pods(ds, "a", "b")
				bare := &Template{Namespace: "default", Requests: Resources{MilliCPU: 500, Pods: 1}}
				return map[string][]int32{
					"web":  s.pods(workload("web", 1000, 100), "a", "a"),
					"bare": s.pods(bare, "a"),
				}
			},
			want: map[string]Summary{
				"web":  summary(StateNoRoom, 2, 1, map[Reason]int{ReasonInsufficientCPU: 1}),
				"bare": summary(StateFit, 0, 0, nil),
			},
		},
		{
			name: "taints: tolerated or not",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16).Taints = []Taint{{Key: "dedicated", Value: "db", Effect: EffectNoSchedule}}
				s.gone = []string{"a"}
				db := workload("db", 100, 100)
				db.Tolerations = []Toleration{{Key: "dedicated", Operator: "Equal", Value: "db", Effect: EffectNoSchedule}}
				return map[string][]int32{"db": s.pods(db, "a"), "web": s.pods(workload("web", 100, 100), "a")}
			},
			want: map[string]Summary{
				"db":  summary(StateFit, 1, 1, nil),
				"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonTaint: 1}),
			},
		},
		{
			name: "node selector and node affinity",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16, "disk", "ssd")
				s.node("b", 8000, 16, "disk", "hdd")
				s.node("c", 8000, 16, "disk", "hdd")
				s.gone = []string{"a"}
				selected := workload("selected", 100, 100)
				selected.NodeSelector = labels("disk", "ssd")
				affine := workload("affine", 100, 100)
				affine.NodeAffinity = []NodeSelectorTerm{{Expressions: []Requirement{{Key: "disk", Operator: OpIn, Values: []string{"ssd", "nvme"}}}}}
				return map[string][]int32{"selected": s.pods(selected, "a"), "affine": s.pods(affine, "a")}
			},
			want: map[string]Summary{
				"selected": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonNodeSelector: 1}),
				"affine":   summary(StateNoRoom, 1, 0, map[Reason]int{ReasonNodeAffinity: 1}),
			},
		},
		{
			name: "the most common reason among nodes, the earlier filter on a tie",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 500, 16)
				s.node("c", 8000, 16).Taints = []Taint{{Key: "k", Effect: EffectNoSchedule}}
				s.node("d", 500, 16)
				s.gone = []string{"a"}
				return map[string][]int32{"web": s.pods(workload("web", 1000, 100), "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonInsufficientCPU: 1})},
		},
		{
			name: "no node left at all",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.gone = []string{"a"}
				return map[string][]int32{"web": s.pods(workload("web", 100, 100), "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonNoSchedulableNode: 1})},
		},
		{
			name: "hostname spread: gone nodes stay domains, so the minimum is 0",
			build: func(s *scenario) map[string][]int32 {
				for _, n := range []string{"a", "b", "c", "d"} {
					s.node(n, 8000, 16)
				}
				s.gone = []string{"a", "b"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a", "b", "c", "d")}
			},
			// c and d hold one each, a and b none: one more on c or d is
			// a skew of 2. The scheduler leaves both pending too.
			want: map[string]Summary{"web": summary(StateNoRoom, 2, 0, map[Reason]int{ReasonTopologySpread: 2})},
		},
		{
			name: "zone spread with maxSkew 1: the gone zone holds the minimum at 0",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("b2", 8000, 16, "zone", "b")
				s.node("c1", 8000, 16, "zone", "c")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "b1", "c1")}
			},
			// Zone a, gone with none left, is the minimum: b and c hold
			// one each already, and one more is a skew of 2.
			want: map[string]Summary{"web": summary(StateNoRoom, 2, 0, map[Reason]int{ReasonTopologySpread: 2})},
		},
		{
			name: "zone spread with maxSkew 2",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("c1", 8000, 16, "zone", "c")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 2, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "a1", "b1", "c1")}
			},
			// b and c may reach 2 each while a holds 0: two of three fit.
			want: map[string]Summary{"web": summary(StateNoRoom, 3, 2, map[Reason]int{ReasonTopologySpread: 1})},
		},
		{
			name: "spread: a node without the topology key is refused",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("nozone", 8000, 16)
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 5, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a1")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonTopologySpread: 1})},
		},
		{
			name: "spread: a node the pod's selector excludes is no domain (nodeAffinityPolicy Honor)",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a", "pool", "web")
				s.node("b1", 8000, 16, "zone", "b", "pool", "web")
				s.node("b2", 8000, 16, "zone", "b", "pool", "web")
				s.node("c1", 8000, 16, "zone", "c", "pool", "batch")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.NodeSelector = labels("pool", "web")
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a1", "b1")}
			},
			// Zones a (0 now) and b (1) are the domains, c is not: one
			// more in b is a skew of 2 (two nodes say so, c1 says
			// node_selector).
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonTopologySpread: 1})},
		},
		{
			name: "spread: a gone node is a domain with nodeTaintsPolicy Ignore",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("c1", 8000, 16, "zone", "c")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "b1", "c1")}
			},
			// Zone a holds 0 once a1 is gone: b or c at 2 is a skew of 2.
			want: map[string]Summary{"web": summary(StateNoRoom, 2, 0, map[Reason]int{ReasonTopologySpread: 2})},
		},
		{
			name: "spread: a gone node is no domain with nodeTaintsPolicy Honor (it is tainted unschedulable)",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("c1", 8000, 16, "zone", "c")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1, HonorNodeTaints: true}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "b1", "c1")}
			},
			// The cordoned a1 gets node.kubernetes.io/unschedulable: only
			// b and c are domains, and they take one pod each.
			want: map[string]Summary{"web": summary(StateFit, 2, 2, nil)},
		},
		{
			name: "spread: nodeTaintsPolicy Honor counts a gone node for a pod tolerating unschedulable",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("c1", 8000, 16, "zone", "c")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Tolerations = []Toleration{{Key: "node.kubernetes.io/unschedulable", Operator: "Exists", Effect: EffectNoSchedule}}
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1, HonorNodeTaints: true}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "b1", "c1")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 2, 0, map[Reason]int{ReasonTopologySpread: 2})},
		},
		{
			name: "spread: nodeTaintsPolicy Honor keeps a gone node's zone while another node of it stays",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("a2", 8000, 16, "zone", "a").Taints = []Taint{{Key: "dedicated", Value: "batch", Effect: EffectNoSchedule}}
				s.node("a3", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1, HonorNodeTaints: true}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "b1")}
			},
			// a2 is tainted and a1 gone, but a3 keeps zone a a domain: a
			// takes one pod, then b and a are even and a takes the next.
			want: map[string]Summary{"web": summary(StateFit, 2, 2, nil)},
		},
		{
			name: "spread: nodeTaintsPolicy Honor leaves out a gone node's zone when its other nodes are tainted",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("a2", 8000, 16, "zone", "a").Taints = []Taint{{Key: "dedicated", Value: "batch", Effect: EffectNoSchedule}}
				s.node("b1", 8000, 16, "zone", "b")
				s.node("c1", 8000, 16, "zone", "c")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1, HonorNodeTaints: true}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1", "b1", "c1")}
			},
			want: map[string]Summary{"web": summary(StateFit, 2, 2, nil)},
		},
		{
			name: "spread: minDomains above the eligible domains makes the minimum 0",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("b2", 8000, 16, "zone", "b")
				s.gone = []string{"a1"}
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 3}}
				return map[string][]int32{"web": s.pods(web, "a1", "a1")}
			},
			// Zone b may hold one pod at most.
			want: map[string]Summary{"web": summary(StateNoRoom, 2, 1, map[Reason]int{ReasonTopologySpread: 1})},
		},
		{
			name: "spread: pods of another namespace or label do not count",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.gone = []string{"a1"}
				other := workload("web", 100, 100)
				other.Namespace = "other"
				s.pods(other, "b1", "b1")
				s.pods(workload("api", 100, 100), "b1")
				web := workload("web", 100, 100)
				web.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", Selector: selectApp("web"), MinDomains: 1}}
				return map[string][]int32{"web": s.pods(web, "a1")}
			},
			want: map[string]Summary{"web": summary(StateFit, 1, 1, nil)},
		},
		{
			name: "anti-affinity on hostname: one per node",
			build: func(s *scenario) map[string][]int32 {
				for _, n := range []string{"a", "b", "c", "d"} {
					s.node(n, 8000, 16)
				}
				s.gone = []string{"a", "b"}
				web := workload("web", 100, 100)
				web.AntiAffinity = []AffinityTerm{{Selector: selectApp("web"), TopologyKey: "kubernetes.io/hostname"}}
				return map[string][]int32{"web": s.pods(web, "a", "b", "c")}
			},
			// d takes one; c and then d hold one each.
			want: map[string]Summary{"web": summary(StateNoRoom, 2, 1, map[Reason]int{ReasonPodAntiAffinity: 1})},
		},
		{
			name: "anti-affinity on zone, against another namespace listed",
			build: func(s *scenario) map[string][]int32 {
				s.node("a1", 8000, 16, "zone", "a")
				s.node("b1", 8000, 16, "zone", "b")
				s.node("b2", 8000, 16, "zone", "b")
				s.gone = []string{"a1"}
				noisy := workload("noisy", 100, 100)
				noisy.Namespace = "batch"
				s.pods(noisy, "b2")
				web := workload("web", 100, 100)
				web.AntiAffinity = []AffinityTerm{{Namespaces: []string{"batch"}, Selector: selectApp("noisy"), TopologyKey: "zone"}}
				return map[string][]int32{"web": s.pods(web, "a1")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonPodAntiAffinity: 1})},
		},
		{
			name: "anti-affinity is symmetric: a pod that stays keeps matching pods away",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16)
				s.node("c", 8000, 16)
				s.gone = []string{"a"}
				loner := workload("loner", 100, 100)
				loner.AntiAffinity = []AffinityTerm{{Selector: selectApp("web"), TopologyKey: "kubernetes.io/hostname"}}
				s.pods(loner, "b", "c")
				return map[string][]int32{"web": s.pods(workload("web", 100, 100), "a")}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonPodAntiAffinity: 1})},
		},
		{
			// The guard's term selects namespaces by labels, which the
			// model does not know: whether web's namespace is one, and b
			// refused, it cannot tell. A pod its selector does not match
			// is placed as usual, and a guard's own pod is unknown.
			name: "another pod's anti-affinity namespace selector makes matching pods unknown",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16)
				s.gone = []string{"a"}
				guard := workload("guard", 100, 100)
				guard.Namespace = "ops"
				guard.AntiAffinity = []AffinityTerm{{NamespaceSelector: true, Selector: selectApp("web"), TopologyKey: "kubernetes.io/hostname"}}
				guard.Unknown = "anti-affinity namespace selector"
				s.pods(guard, "b")
				return map[string][]int32{
					"web":   s.pods(workload("web", 100, 100), "a"),
					"other": s.pods(workload("other", 100, 100), "a"),
				}
			},
			want: map[string]Summary{
				"web":   {State: StateUnknown, Displaced: 1, Unplaced: 1, Reasons: map[Reason]int{}, UnknownReason: "anti-affinity namespace selector"},
				"other": summary(StateFit, 1, 1, nil),
			},
		},
		{
			name: "anti-affinity is symmetric among displaced pods too",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16)
				s.gone = []string{"a"}
				// aaa-loner is placed first, on b; web then may not join it.
				loner := workload("aaa-loner", 100, 100)
				loner.AntiAffinity = []AffinityTerm{{Selector: selectApp("web"), TopologyKey: "kubernetes.io/hostname"}}
				return map[string][]int32{"loner": s.pods(loner, "a"), "web": s.pods(workload("web", 100, 100), "a")}
			},
			want: map[string]Summary{
				"loner": summary(StateFit, 1, 1, nil),
				"web":   summary(StateNoRoom, 1, 0, map[Reason]int{ReasonPodAntiAffinity: 1}),
			},
		},
		{
			name: "unknown constraints are never fit",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 8000, 16)
				s.gone = []string{"a"}
				db := workload("db", 100, 100)
				db.Unknown = "persistent volume claim"
				return map[string][]int32{"db": s.pods(db, "a", "b")}
			},
			want: map[string]Summary{"db": {State: StateUnknown, Displaced: 1, Unplaced: 1, Reasons: map[Reason]int{}, UnknownReason: "persistent volume claim"}},
		},
		{
			name: "two services compete: the first by name places first",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 4000, 16)
				s.node("c", 4000, 16)
				s.gone = []string{"a"}
				// The small pod goes to b, the first of two equal nodes;
				// the big one still finds c whole.
				return map[string][]int32{
					"aaa-small": s.pods(workload("aaa-small", 1000, 100), "a"),
					"big":       s.pods(workload("big", 3500, 100), "a"),
				}
			},
			want: map[string]Summary{
				"aaa-small": summary(StateFit, 1, 1, nil),
				"big":       summary(StateFit, 1, 1, nil),
			},
		},
		{
			name: "order: by owner name whatever the kind, a StatefulSet before a later-named ReplicaSet",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 1000, 16)
				s.gone = []string{"a"}
				// Owner "ReplicaSet/web" sorts before "StatefulSet/db",
				// but the scheduler takes pod db-0 before web-x7k2q.
				db := workload("db", 1000, 100)
				db.Owner = "StatefulSet/db"
				return map[string][]int32{
					"web": s.pods(workload("web", 1000, 100), "a"),
					"db":  s.pods(db, "a"),
				}
			},
			want: map[string]Summary{
				"db":  summary(StateFit, 1, 1, nil),
				"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonInsufficientCPU: 1}),
			},
		},
		{
			name: "terminating pods are not displaced but hold their room",
			build: func(s *scenario) map[string][]int32 {
				s.node("a", 8000, 16)
				s.node("b", 1000, 16)
				s.gone = []string{"a"}
				web := workload("web", 1000, 100)
				pods := s.pods(web, "a", "b")
				s.c.Pods[pods[0]].Terminating = true
				s.c.Pods = append(s.c.Pods, Pod{Template: web, Name: "web-new", Node: s.nodeIndex("a"), Ready: true})
				return map[string][]int32{"web": append(pods, int32(len(s.c.Pods)-1))}
			},
			want: map[string]Summary{"web": summary(StateNoRoom, 1, 0, map[Reason]int{ReasonInsufficientCPU: 1})},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s scenario
			services := tc.build(&s)
			result := s.simulate()
			got := make(map[string]Summary, len(services))
			for name, pods := range services {
				got[name] = result.Summarize(pods)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("summaries:\n got %+v\nwant %+v", got, tc.want)
			}
			// The same question gives the same answer, walking the
			// pods or from the cluster's index.
			s.c.Prepare()
			again := s.simulate()
			if !reflect.DeepEqual(again.outcomes, result.outcomes) {
				t.Errorf("with the index: outcomes %+v, without %+v", again.outcomes, result.outcomes)
			}
			for name, pods := range services {
				if a := again.Summarize(pods); !reflect.DeepEqual(a, got[name]) {
					t.Errorf("%s: a second simulation differs: %+v", name, a)
				}
			}
		})
	}
}

func TestSimulatePlacesOnBestScoredNode(t *testing.T) {
	var s scenario
	s.node("a", 8000, 16)
	s.node("b", 4000, 8)
	s.node("c", 4000, 8)
	s.node("d", 8000, 16)
	s.gone = []string{"a"}
	s.pods(workload("busy", 2000, 2048), "b")
	pods := s.pods(workload("web", 1000, 1024), "a", "a", "a")
	result := s.simulate()
	var nodes []string
	for _, p := range pods {
		out, ok := result.Outcome(p)
		if !ok || out.Node < 0 {
			t.Fatalf("pod %d not placed: %+v", p, out)
		}
		nodes = append(nodes, s.c.Nodes[out.Node].Name)
	}
	// d is the emptiest. The second pod's LeastAllocated is 81 on c and
	// on d, but the system default spreading (maxSkew 3 on the hostname)
	// scores the nodes without a web pod 100 and d 50, weight 2: c. The
	// third goes to b, the only node left without one, though it is the
	// fullest (LeastAllocated 43): spreading outweighs room.
	want := []string{"d", "c", "b"}
	if !slices.Equal(nodes, want) {
		t.Errorf("placed on %v, want %v", nodes, want)
	}
}

func TestWarmNodes(t *testing.T) {
	var s scenario
	s.node("old1", 8000, 16).Images = []*Image{{Names: []string{"mathoid:2018", "mathoid@sha256:1"}}, {Names: []string{"envoy:1"}}}
	s.node("old2", 8000, 16).Images = []*Image{{Names: []string{"mathoid:2018"}}, {Names: []string{"envoy:1"}}}
	s.node("new1", 8000, 16).Images = []*Image{{Names: []string{"envoy:1"}}}
	s.node("new2", 8000, 16)
	tainted := s.node("tainted", 8000, 16)
	tainted.Images = []*Image{{Names: []string{"mathoid:2018"}}, {Names: []string{"envoy:1"}}}
	tainted.Taints = []Taint{{Key: "k", Effect: EffectNoSchedule}}
	mathoid := workload("mathoid", 100, 100)
	mathoid.Images = []string{"mathoid:2018", "envoy:1"}
	for _, tc := range []struct {
		gone []string
		want int
	}{
		{nil, 2},
		{[]string{"old1"}, 1},
		{[]string{"old1", "old2"}, 0},
	} {
		s.gone = tc.gone
		if got := s.simulate().WarmNodes([][]*Template{{mathoid}}); got[0] != tc.want {
			t.Errorf("gone %v: WarmNodes = %d, want %d", tc.gone, got, tc.want)
		}
	}
	// Asked together, with a service without images and one whose
	// template keeps it off the tainted node.
	tolerant := workload("tolerant", 100, 100)
	tolerant.Images = mathoid.Images
	tolerant.Tolerations = []Toleration{{Operator: "Exists"}}
	s.gone = nil
	if got, want := s.simulate().WarmNodes([][]*Template{{workload("noimage", 1, 1)}, {mathoid}, {tolerant}, {mathoid, tolerant}}), []int{0, 2, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("WarmNodes = %v, want %v", got, want)
	}
}

func TestPDBs(t *testing.T) {
	var s scenario
	s.node("a", 8000, 16)
	s.node("b", 8000, 16)
	s.node("c", 8000, 16)
	web := s.pods(workload("web", 100, 100), "a", "a", "b", "c")
	api := s.pods(workload("api", 100, 100), "a", "b")
	s.c.Pods[web[1]].Ready = false // an unhealthy pod costs no budget
	s.c.PDBs = []PDB{
		{Namespace: "default", Name: "web", Selector: selectApp("web"), DisruptionsAllowed: 1},
		{Namespace: "default", Name: "api", Selector: selectApp("api"), DisruptionsAllowed: 1},
		{Namespace: "other", Name: "web", Selector: selectApp("web"), DisruptionsAllowed: 0},
	}
	for _, tc := range []struct {
		gone []string
		pods []int32
		want []PDBExceeded
	}{
		{[]string{"a"}, web, []PDBExceeded{}},
		{[]string{"a", "b"}, web, []PDBExceeded{{Name: "web", Allowed: 1, Needed: 2}}},
		{[]string{"a", "b"}, api, []PDBExceeded{{Name: "api", Allowed: 1, Needed: 2}}},
		{[]string{"c"}, api, []PDBExceeded{}},
	} {
		s.gone = tc.gone
		if got := s.simulate().PDBs(tc.pods); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("gone %v: PDBs = %+v, want %+v", tc.gone, got, tc.want)
		}
	}
	// The same from the cluster's index.
	s.c.Prepare()
	for _, tc := range []struct {
		gone []string
		pods []int32
		want []PDBExceeded
	}{
		{[]string{"a", "b"}, web, []PDBExceeded{{Name: "web", Allowed: 1, Needed: 2}}},
		{[]string{"c"}, api, []PDBExceeded{}},
	} {
		s.gone = tc.gone
		if got := s.simulate().PDBs(tc.pods); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("prepared, gone %v: PDBs = %+v, want %+v", tc.gone, got, tc.want)
		}
	}
}

func TestOrder(t *testing.T) {
	pod := func(priority int32, namespace, owner, name string) Pod {
		return Pod{Name: name, Template: &Template{Namespace: namespace, Owner: owner, Priority: priority}}
	}
	// Each pod comes before the next.
	pods := []Pod{
		pod(10, "zz", "ReplicaSet/zz", "zz-abcde"),
		pod(0, "a", "StatefulSet/zz", "zz-0"),
		pod(0, "b", "StatefulSet/db", "db-0"),
		pod(0, "b", "StatefulSet/db", "db-1"),
		pod(0, "b", "ReplicaSet/web-5d8f", "web-5d8f-q2x9z"),
		pod(0, "b", "ReplicationController/web-rc", "web-rc-bbbbb"),
		pod(0, "b", "StatefulSet/x", "x-0"),
	}
	for i := range pods {
		for j := range pods {
			if got, want := Order(&pods[i], &pods[j]), cmp.Compare(i, j); got != want {
				t.Errorf("Order(%s, %s) = %d, want %d", pods[i].Name, pods[j].Name, got, want)
			}
		}
	}
}

// TestSummaryNoRoom: the replicas certain to fit nowhere, which
// kube_spread_replicas_unplaceable publishes: not those the model cannot
// judge, though they are unplaced too.
func TestSummaryNoRoom(t *testing.T) {
	s := Summary{State: StateNoRoom, Displaced: 5, Placed: 1, Unplaced: 4,
		Reasons: map[Reason]int{ReasonInsufficientCPU: 2, ReasonTaint: 1}, UnknownReason: "persistent volume claim"}
	if got := s.NoRoom(); got != 3 {
		t.Errorf("NoRoom() = %d, want 3 (2 for cpu, 1 for a taint; the unknown pod is not counted)", got)
	}
	if got := (Summary{State: StateFit, Displaced: 2, Placed: 2}).NoRoom(); got != 0 {
		t.Errorf("NoRoom() of a fit = %d, want 0", got)
	}
}
