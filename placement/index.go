package placement

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// clusterIndex is what every simulation of one Cluster would otherwise
// find by walking all of its pods and node images: a what-if takes ten
// nodes away from 5,000, displacing some 300 pods of 150,000, and the walk
// over the rest was half of its time. It is built once, by Prepare, for a
// cluster that will be asked many questions (the what-if handler asks
// many of one snapshot); a cluster asked once (each state of a campaign)
// is walked instead: building the index costs more than one walk, and a
// campaign keeping ten states would keep ten indexes.
//
// It depends only on the cluster, never on what a question takes away:
// the usage of a node is that of all pods bound to it, which is what a
// simulation occupies on a node that stays (a displaced pod is on a gone
// node, or on none).
type clusterIndex struct {
	once  sync.Once
	ready atomic.Bool
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

// Prepare builds the cluster's index, once: a cluster that will be asked
// many questions (the what-if handler's snapshot) should be prepared
// before the first; one asked once (a campaign's intermediate states, a
// scrape's cluster) is cheaper to walk than to index. The cluster must not
// change after.
func (c *Cluster) Prepare() {
	x := &c.idx
	x.once.Do(func() {
		x.build(c)
		x.ready.Store(true)
	})
}

// index returns the cluster's index, nil unless it is prepared.
func (c *Cluster) index() *clusterIndex {
	if !c.idx.ready.Load() {
		return nil
	}
	return &c.idx
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
	x.holders = imageHolders(c.Nodes)
}

// imageHolders lists, per image name, the nodes holding it, each once, by
// node index. Nodes share the *Image of an image they hold (the caller
// interns them), so the nodes are found per distinct image, hashing a
// pointer rather than every name on every node (5,000 nodes hold some
// 190,000 images), and the lists are cut from one block.
func imageHolders(nodes []Node) map[string][]nodeImage {
	ids := make(map[*Image]int32)
	var distinct []*Image
	var counts []int32
	for i := range nodes {
		for _, image := range nodes[i].Images {
			id, ok := ids[image]
			if !ok {
				id = int32(len(distinct))
				ids[image] = id
				distinct = append(distinct, image)
				counts = append(counts, 0)
			}
			counts[id]++
		}
	}
	total := 0
	for _, n := range counts {
		total += int(n)
	}
	block := make([]nodeImage, 0, total)
	lists := make([][]nodeImage, len(distinct))
	for id, n := range counts {
		lists[id] = block[len(block) : len(block) : len(block)+int(n)]
		block = block[:len(block)+int(n)]
	}
	for i := range nodes {
		for _, image := range nodes[i].Images {
			id := ids[image]
			// A node listing one image twice holds it once.
			if list := lists[id]; len(list) == 0 || list[len(list)-1].node != int32(i) {
				lists[id] = append(list, nodeImage{node: int32(i), size: image.SizeBytes})
			}
		}
	}
	holders := make(map[string][]nodeImage, len(distinct))
	for id, image := range distinct {
		for _, name := range image.Names {
			existing, seen := holders[name]
			if !seen {
				holders[name] = lists[id]
				continue
			}
			// Two images under one name (a tag that moved, sizes that
			// differ between nodes): each node once, with the size of
			// the image seen first in the cluster.
			merged := append(slices.Clone(existing), lists[id]...)
			slices.SortStableFunc(merged, func(a, b nodeImage) int { return cmp.Compare(a.node, b.node) })
			holders[name] = slices.CompactFunc(merged, func(a, b nodeImage) bool { return a.node == b.node })
		}
	}
	return holders
}
