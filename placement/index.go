package placement

import "sync"

// clusterIndex is what every simulation of one Cluster would otherwise
// find by walking all of its pods and node images: a what-if takes ten
// nodes away from 5,000, displacing some 300 pods of 150,000, and the walk
// over the rest was half of its time. It is built once, on the first
// simulation, and shared by every question asked of the cluster after:
// the handler asks many of one snapshot, the campaign a few of each of its
// states.
//
// It depends only on the cluster, never on what a question takes away:
// the usage of a node is that of all pods bound to it, which is what a
// simulation occupies on a node that stays (a displaced pod is on a gone
// node, or on none).
type clusterIndex struct {
	once sync.Once
	// podsOn lists, per node, the pods bound to it; pending the pods
	// waiting without a node.
	podsOn  [][]int32
	pending []int32
	// used holds the fixed slots (CPU, memory, storage, pods) of the
	// requests of all pods bound to a node, fixedSlots per node;
	// scoreUsed their scoring requests, two per node.
	used, scoreUsed []int64
	// lowest is the lowest priority of a pod with a template bound to a
	// node, where hasLowest says there is one.
	lowest    []int32
	hasLowest []bool
	// byNamespace lists the pods of each namespace, the ones a
	// constraint's counter may count; antiAffinity the pods whose template
	// has required anti-affinity, which repel displaced pods wherever
	// they come from.
	byNamespace  map[string][]int32
	antiAffinity []int32
	// holders lists, per image name, the nodes holding it, each once.
	holders map[string][]nodeImage
}

// index returns the cluster's index, building it on first use. The
// cluster must not change after its first simulation.
func (c *Cluster) index() *clusterIndex {
	x := &c.idx
	x.once.Do(func() { x.build(c) })
	return x
}

func (x *clusterIndex) build(c *Cluster) {
	nodes := len(c.Nodes)
	x.podsOn = make([][]int32, nodes)
	x.used = make([]int64, nodes*fixedSlots)
	x.scoreUsed = make([]int64, nodes*2)
	x.lowest = make([]int32, nodes)
	x.hasLowest = make([]bool, nodes)
	x.byNamespace = make(map[string][]int32)
	// One block for every node's list: a slice per node grown by append
	// would allocate 5,000 times over.
	bound := make([]int32, 0, len(c.Pods))
	counts := make([]int32, nodes)
	for i := range c.Pods {
		if n := c.Pods[i].Node; n >= 0 && int(n) < nodes {
			counts[n]++
		}
	}
	start := 0
	for n, count := range counts {
		x.podsOn[n] = bound[start : start : int(start)+int(count)]
		start += int(count)
	}
	for i := range c.Pods {
		p := &c.Pods[i]
		t := p.Template
		switch n := p.Node; {
		case n >= 0 && int(n) < nodes:
			x.podsOn[n] = append(x.podsOn[n], int32(i))
			if t == nil {
				break
			}
			used := x.used[int(n)*fixedSlots : int(n+1)*fixedSlots]
			used[slotCPU] += t.Requests.MilliCPU
			used[slotMemory] += t.Requests.Memory
			used[slotEphemeralStorage] += t.Requests.EphemeralStorage
			used[slotPods] += t.Requests.Pods
			x.scoreUsed[2*n] += t.ScoreMilliCPU
			x.scoreUsed[2*n+1] += t.ScoreMemory
			if !x.hasLowest[n] || t.Priority < x.lowest[n] {
				x.lowest[n], x.hasLowest[n] = t.Priority, true
			}
		case n < 0 && p.Pending:
			x.pending = append(x.pending, int32(i))
		}
		if t != nil {
			x.byNamespace[t.Namespace] = append(x.byNamespace[t.Namespace], int32(i))
			if len(t.AntiAffinity) > 0 {
				x.antiAffinity = append(x.antiAffinity, int32(i))
			}
		}
	}
	x.holders = make(map[string][]nodeImage)
	for i := range c.Nodes {
		for _, image := range c.Nodes[i].Images {
			for _, name := range image.Names {
				list := x.holders[name]
				if len(list) == 0 || list[len(list)-1].node != int32(i) {
					x.holders[name] = append(list, nodeImage{node: int32(i), size: image.SizeBytes})
				}
			}
		}
	}
}
