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
// many of one snapshot); a cluster asked once is walked instead, since
// building the index costs more than one walk. Each state of a campaign
// from a prepared cluster gets its index moved from the state before
// (Result.Settle), at the cost of the pods that moved.
//
// It depends only on the cluster, never on what a question takes away:
// the usage of a node is that of all pods bound to it, which is what a
// simulation occupies on a node that stays (a displaced pod is on a gone
// node, or on none).
type clusterIndex struct {
	once  sync.Once
	ready atomic.Bool
	indexData
}

// indexData is what a clusterIndex holds, apart from the lock that builds
// it once: an Index keeps it without the cluster.
type indexData struct {
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
	// holders has the nodes holding each image.
	holders *imageHolders
}

// Prepare builds the cluster's index, once: a cluster that will be asked
// many questions (the what-if handler's snapshot, the start of a
// campaign) should be prepared before the first; one asked once (a
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
	x.holders = newImageHolders(c.Nodes)
}

// imageHolders indexes the nodes holding each image. Nodes share the
// *Image of an image they hold (the caller interns them), so the nodes are
// found per distinct image, hashing a pointer rather than every name on
// every node (5,000 nodes hold some 190,000 images), and kept as node
// indexes cut from one block, 4 bytes a copy; the size is the image's.
type imageHolders struct {
	// byName lists the distinct images under each name, usually one.
	byName map[string][]int32
	// nodes and size are per distinct image.
	nodes [][]int32
	size  []int64

	// A settled cluster's holders (Result.Settle) share the lists above
	// with the cluster they come from: the nodes in wiped hold none of
	// those images any more, and pulled lists the images pulled since, by
	// name, each holder once, by node index.
	wiped  map[int32]bool
	pulled map[string][]nodeImage
}

func newImageHolders(nodes []Node) *imageHolders {
	ids := make(map[*Image]int32)
	h := &imageHolders{byName: make(map[string][]int32)}
	var counts []int32
	for i := range nodes {
		for _, image := range nodes[i].Images {
			id, ok := ids[image]
			if !ok {
				id = int32(len(h.size))
				ids[image] = id
				h.size = append(h.size, image.SizeBytes)
				counts = append(counts, 0)
				for _, name := range image.Names {
					if list := h.byName[name]; !slices.Contains(list, id) {
						h.byName[name] = append(list, id)
					}
				}
			}
			counts[id]++
		}
	}
	total := 0
	for _, n := range counts {
		total += int(n)
	}
	block := make([]int32, 0, total)
	h.nodes = make([][]int32, len(counts))
	for id, n := range counts {
		h.nodes[id] = block[len(block) : len(block) : len(block)+int(n)]
		block = block[:len(block)+int(n)]
	}
	for i := range nodes {
		for _, image := range nodes[i].Images {
			id := ids[image]
			// A node listing one image twice holds it once.
			if list := h.nodes[id]; len(list) == 0 || list[len(list)-1] != int32(i) {
				h.nodes[id] = append(list, int32(i))
			}
		}
	}
	return h
}

// of lists the nodes holding an image of that name, each once, by node
// index, with the size of the image. Under two images of one name (a tag
// that moved, sizes that differ between nodes) a node holding both counts
// once, with the size of the image seen first in the cluster.
func (h *imageHolders) of(name string) []nodeImage {
	var out []nodeImage
	for _, id := range h.byName[name] {
		for _, node := range h.nodes[id] {
			if !h.wiped[node] {
				out = append(out, nodeImage{node: node, size: h.size[id]})
			}
		}
	}
	pulled := h.pulled[name]
	out = append(out, pulled...)
	if len(h.byName[name]) > 1 || len(pulled) > 0 {
		slices.SortStableFunc(out, func(a, b nodeImage) int { return cmp.Compare(a.node, b.node) })
		out = slices.CompactFunc(out, func(a, b nodeImage) bool { return a.node == b.node })
	}
	return out
}

// largest returns the largest size of an image of that name some node
// holds, 0 when none does.
func (h *imageHolders) largest(name string) int64 {
	var size int64
	for _, id := range h.byName[name] {
		if h.size[id] > size && slices.ContainsFunc(h.nodes[id], func(n int32) bool { return !h.wiped[n] }) {
			size = h.size[id]
		}
	}
	for _, p := range h.pulled[name] {
		size = max(size, p.size)
	}
	return size
}
