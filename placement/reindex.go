package placement

import (
	"maps"
	"slices"
)

// Index is a prepared cluster's index kept apart from the cluster, so
// that a later state of the same cluster can be prepared from it at the
// cost of what changed (PrepareFrom) rather than a walk over every pod.
// The exporter's scrapes ask one question of each state of a cluster
// that changes a few pods at a time: building the index for each cost as
// much as the walk it saves (docs/benchmarks.md). It holds no pods, so
// keeping it does not keep the cluster's pods alive.
type Index struct {
	data indexData
	// nodes are the indexed cluster's nodes, to find whether their
	// images changed.
	nodes []Node
}

// Index returns c's index, nil unless c is prepared.
func (c *Cluster) Index() *Index {
	x := c.index()
	if x == nil {
		return nil
	}
	return &Index{data: x.indexData, nodes: c.Nodes}
}

// PrepareFrom prepares c, as Prepare does, from prev, the index of an
// earlier state of c. That state had the same nodes in the same order
// (their labels, taints, room and images may have changed since) and the
// same pods at the same indexes, but for the indexes in before, which
// maps each index whose pod changed, was added or was removed to the pod
// the earlier state had there: Pod{Node: -1} for an index that had none.
// A removed pod's index is past the end of c.Pods. It costs the pods in
// before, a sort of the lists of the nodes and namespaces they are in,
// and a copy of the per-node arrays; the nodes' images are indexed again
// only when some node's changed. A nil prev, or one of another number of
// nodes, prepares c whole. The cluster must not change after.
func (c *Cluster) PrepareFrom(prev *Index, before map[int32]Pod) {
	x := &c.idx
	x.once.Do(func() {
		if prev != nil && len(prev.nodes) == len(c.Nodes) {
			x.indexData = prev.data.changed(prev.nodes, c, before)
		} else {
			x.build(c)
		}
		x.ready.Store(true)
	})
}

// changed returns the index of c, an earlier state of which had d as
// its index, nodes as its nodes and the pods in before where c's differ.
// d's slices and maps are shared where nothing changed, and never
// written.
func (d *indexData) changed(nodes []Node, c *Cluster, before map[int32]Pod) indexData {
	next := indexData{
		podsOn:       slices.Clone(d.podsOn),
		pending:      d.pending,
		used:         slices.Clone(d.used),
		scoreUsed:    slices.Clone(d.scoreUsed),
		lowest:       slices.Clone(d.lowest),
		hasLowest:    slices.Clone(d.hasLowest),
		byNamespace:  d.byNamespace,
		antiAffinity: d.antiAffinity,
		holders:      d.holders,
	}
	onNode := func(n int32) bool { return n >= 0 && int(n) < len(c.Nodes) }
	after := func(i int32) *Pod {
		if int(i) < len(c.Pods) {
			return &c.Pods[i]
		}
		return nil
	}
	// What the changed pods were in and are in now.
	nodesTouched := make(map[int32]bool)
	namespaces := make(map[string]bool)
	var pending, anti bool
	note := func(p *Pod, sign int64) {
		if p == nil {
			return
		}
		if onNode(p.Node) {
			nodesTouched[p.Node] = true
			if p.Template != nil {
				next.addUsage(p.Node, p.Template, sign)
			}
		}
		pending = pending || p.Node < 0 && p.Pending
		if t := p.Template; t != nil {
			namespaces[t.Namespace] = true
			anti = anti || len(t.AntiAffinity) > 0
		}
	}
	for i, was := range before {
		note(&was, -1)
		note(after(i), 1)
	}
	// relist returns list without the changed pods, and with those of
	// them that belong to it now, in index order as build lists them;
	// none as build leaves a list of none (orNone).
	relist := func(list []int32, belongs func(*Pod) bool) []int32 {
		out := make([]int32, 0, len(list)+len(before))
		for _, i := range list {
			if _, changed := before[i]; !changed {
				out = append(out, i)
			}
		}
		for i := range before {
			if p := after(i); p != nil && belongs(p) {
				out = append(out, i)
			}
		}
		slices.Sort(out)
		return out
	}
	for n := range nodesTouched {
		next.podsOn[n] = relist(d.podsOn[n], func(p *Pod) bool { return p.Node == n })
		next.lowest[n], next.hasLowest[n] = 0, false
		for _, i := range next.podsOn[n] {
			if t := c.Pods[i].Template; t != nil && (!next.hasLowest[n] || t.Priority < next.lowest[n]) {
				next.lowest[n], next.hasLowest[n] = t.Priority, true
			}
		}
	}
	if pending {
		next.pending = orNone(relist(d.pending, func(p *Pod) bool { return p.Node < 0 && p.Pending }))
	}
	if len(namespaces) > 0 {
		next.byNamespace = maps.Clone(d.byNamespace)
		for ns := range namespaces {
			list := relist(d.byNamespace[ns], func(p *Pod) bool { return p.Template != nil && p.Template.Namespace == ns })
			if len(list) == 0 {
				delete(next.byNamespace, ns)
			} else {
				next.byNamespace[ns] = list
			}
		}
	}
	if anti {
		next.antiAffinity = orNone(relist(d.antiAffinity, func(p *Pod) bool { return p.Template != nil && len(p.Template.AntiAffinity) > 0 }))
	}
	if !sameImages(nodes, c.Nodes) {
		next.holders = newImageHolders(c.Nodes)
	}
	return next
}

// orNone returns nil for an empty list, as build leaves the lists it
// appends to (node lists are cut from one block, empty but not nil).
func orNone(list []int32) []int32 {
	if len(list) == 0 {
		return nil
	}
	return list
}

// sameImages reports whether each node of a holds the images of the node
// of b at its index: the same *Image values, which the caller interns.
func sameImages(a, b []Node) bool {
	for i := range a {
		if !slices.Equal(a[i].Images, b[i].Images) {
			return false
		}
	}
	return true
}
