package placement

import (
	"cmp"
	"maps"
	"slices"
)

// Settle returns the cluster after the simulation r: each displaced pod
// on the node r chose for it, or pending when it found none; the nodes
// marked in wiped (a reimage, by index) without images and without their
// terminating pods; each node that received a pod holding the pod's
// images, pulled at the largest size a node of the simulated cluster
// holds them with (0 when none does). Pod and node indexes stay the same.
// moved maps each pod whose node changed to its new node, -1 for none.
// The simulated cluster is not modified.
//
// When the simulated cluster is prepared, so is the result: its index is
// moved from the simulated cluster's by what changed. A campaign settles a
// state per batch, and walking 150,000 pods to index each, or to count
// them in each simulation, cost more than placing the displaced ones.
func (r *Result) Settle(wiped []bool) (next *Cluster, moved map[int32]int32) {
	in := r.c
	out := &Cluster{Nodes: slices.Clone(in.Nodes), Pods: slices.Clone(in.Pods), PDBs: in.PDBs}
	isWiped := func(node int32) bool { return node >= 0 && int(node) < len(wiped) && wiped[node] }
	for i := range out.Nodes {
		if isWiped(int32(i)) {
			out.Nodes[i].Images = nil
		}
	}
	moved = make(map[int32]int32, len(r.displaced))
	pulls := make(map[int32][]string)
	for k, p := range r.displaced {
		node := r.outcomes[k].Node
		out.Pods[p].Node, out.Pods[p].Pending = node, node < 0
		moved[p] = node
		if node >= 0 {
			pulls[node] = append(pulls[node], in.Pods[p].Template.Images...)
		}
	}
	x := in.index()
	takeTerminating := func(i int32) {
		if p := &out.Pods[i]; p.Terminating && isWiped(p.Node) {
			p.Node = -1
			moved[i] = -1
		}
	}
	if x == nil {
		for i := range out.Pods {
			takeTerminating(int32(i))
		}
	} else {
		for node := range min(len(wiped), len(x.podsOn)) {
			if wiped[node] {
				for _, i := range x.podsOn[node] {
					takeTerminating(i)
				}
			}
		}
	}
	added := pullImages(out, in, pulls)
	if x != nil {
		var wipedNodes []int32
		for node := range wiped {
			if isWiped(int32(node)) {
				wipedNodes = append(wipedNodes, int32(node))
			}
		}
		out.idx.once.Do(func() { out.idx.moveFrom(x, in, out, moved, wipedNodes, added) })
		out.idx.ready.Store(true)
	}
	return out, moved
}

// pulledImage is an image a node pulled in Settle.
type pulledImage struct {
	node int32
	name string
	size int64
}

// pullImages adds to each node of c the images of the pods placed on it
// that it does not hold, with the largest size a node of before holds
// them with, 0 when none does: the kubelet pulls them before the pods
// start. It returns what it added, by node and then in the pods' order.
func pullImages(c, before *Cluster, pulls map[int32][]string) []pulledImage {
	if len(pulls) == 0 {
		return nil
	}
	sizes := make(map[string]int64)
	for _, images := range pulls {
		for _, name := range images {
			sizes[name] = 0
		}
	}
	if x := before.index(); x != nil {
		for name := range sizes {
			sizes[name] = x.holders.largest(name)
		}
	} else {
		for i := range before.Nodes {
			for _, image := range before.Nodes[i].Images {
				for _, name := range image.Names {
					if size, wanted := sizes[name]; wanted && image.SizeBytes > size {
						sizes[name] = image.SizeBytes
					}
				}
			}
		}
	}
	var added []pulledImage
	for _, node := range slices.Sorted(maps.Keys(pulls)) {
		held := make(map[string]bool)
		for _, image := range c.Nodes[node].Images {
			for _, name := range image.Names {
				held[name] = true
			}
		}
		var images []*Image
		for _, name := range pulls[node] {
			if !held[name] {
				held[name] = true
				images = append(images, &Image{Names: []string{name}, SizeBytes: sizes[name]})
				added = append(added, pulledImage{node: node, name: name, size: sizes[name]})
			}
		}
		if len(images) > 0 {
			c.Nodes[node].Images = append(slices.Clip(c.Nodes[node].Images), images...)
		}
	}
	return added
}

// moveFrom makes x the index of out, the cluster in settled: prev is in's
// index, moved the pods whose node changed, wiped the nodes that lost
// their images, added the images pulled. It costs the pods that moved and
// the nodes they left or joined, plus a copy of the per-node arrays
// (indexData.changed); the image holders are prev's with the wiped nodes
// and pulled images on top, not indexed again.
func (x *clusterIndex) moveFrom(prev *clusterIndex, in, out *Cluster, moved map[int32]int32, wiped []int32, added []pulledImage) {
	before := make(map[int32]Pod, len(moved))
	for p := range moved {
		before[p] = in.Pods[p]
	}
	x.indexData = prev.changed(out, before)
	x.holders = prev.holders.after(wiped, added)
}

// addUsage adds (sign 1) or takes away (sign -1) a template's requests on
// a node.
func (x *indexData) addUsage(n int32, t *Template, sign int64) {
	used := x.used[int(n)*fixedSlots : int(n+1)*fixedSlots]
	used[slotCPU] += sign * t.Requests.MilliCPU
	used[slotMemory] += sign * t.Requests.Memory
	used[slotEphemeralStorage] += sign * t.Requests.EphemeralStorage
	used[slotPods] += sign * t.Requests.Pods
	x.scoreUsed[2*n] += sign * t.ScoreMilliCPU
	x.scoreUsed[2*n+1] += sign * t.ScoreMemory
}

// after returns the holders once the wiped nodes lost every image and the
// pulled images were added: h's lists stay as they are, shared, with the
// wiped nodes and the pulled images on top.
func (h *imageHolders) after(wiped []int32, pulled []pulledImage) *imageHolders {
	next := &imageHolders{byName: h.byName, nodes: h.nodes, size: h.size,
		wiped: maps.Clone(h.wiped), pulled: make(map[string][]nodeImage, len(h.pulled)+len(pulled))}
	if next.wiped == nil {
		next.wiped = make(map[int32]bool, len(wiped))
	}
	for _, n := range wiped {
		next.wiped[n] = true
	}
	for name, list := range h.pulled {
		list = slices.DeleteFunc(slices.Clone(list), func(n nodeImage) bool { return slices.Contains(wiped, n.node) })
		if len(list) > 0 {
			next.pulled[name] = list
		}
	}
	for _, p := range pulled {
		next.pulled[p.name] = append(next.pulled[p.name], nodeImage{node: p.node, size: p.size})
	}
	for _, list := range next.pulled {
		slices.SortFunc(list, func(a, b nodeImage) int { return cmp.Compare(a.node, b.node) })
	}
	return next
}
