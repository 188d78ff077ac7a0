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
			x.indexData = prev.data.changed(c, before)
			if !sameImages(prev.nodes, c.Nodes) {
				x.holders = newImageHolders(c.Nodes)
			}
		} else {
			x.build(c)
		}
		x.ready.Store(true)
	})
}

// changed returns the index of c, an earlier state of which had d as
// its index and the pods in before where c's differ, with d's image
// holders: the caller replaces them if the images changed. d's slices
// and maps are shared where nothing changed, and never written.
func (d *indexData) changed(c *Cluster, before map[int32]Pod) indexData {
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
	// The lists whose members change, each with the pods that left it and
	// those that arrived, grouped so that each list is rebuilt once
	// whatever the number of changes. A pod that stays where it was (a
	// readiness change, the most common) rebuilds none.
	var (
		onNodes       = make(map[int32]*listChange)
		inNamespace   = make(map[string]*listChange)
		pending, anti listChange
	)
	for i, was := range before {
		now := Pod{Node: -1} // removed
		if int(i) < len(c.Pods) {
			now = c.Pods[i]
		}
		if onNode(was.Node) {
			if was.Template != nil {
				next.addUsage(was.Node, was.Template, -1)
			}
			if now.Node != was.Node {
				changeOf(onNodes, was.Node).leave(i)
			} else if now.Template != was.Template {
				changeOf(onNodes, was.Node) // for its lowest priority
			}
		}
		if onNode(now.Node) {
			if now.Template != nil {
				next.addUsage(now.Node, now.Template, 1)
			}
			if now.Node != was.Node {
				changeOf(onNodes, now.Node).arrive(i)
			}
		}
		pending.move(i, was.Node < 0 && was.Pending, now.Node < 0 && now.Pending)
		anti.move(i, hasAntiAffinity(was.Template), hasAntiAffinity(now.Template))
		wasNS, nowNS := namespaceOf(was.Template), namespaceOf(now.Template)
		if was.Template != nil && (now.Template == nil || nowNS != wasNS) {
			changeOf(inNamespace, wasNS).leave(i)
		}
		if now.Template != nil && (was.Template == nil || nowNS != wasNS) {
			changeOf(inNamespace, nowNS).arrive(i)
		}
	}
	for n, moved := range onNodes {
		next.podsOn[n] = moved.apply(d.podsOn[n])
		next.lowest[n], next.hasLowest[n] = 0, false
		for _, i := range next.podsOn[n] {
			if t := c.Pods[i].Template; t != nil && (!next.hasLowest[n] || t.Priority < next.lowest[n]) {
				next.lowest[n], next.hasLowest[n] = t.Priority, true
			}
		}
	}
	next.pending = orNone(pending.apply(d.pending))
	next.antiAffinity = orNone(anti.apply(d.antiAffinity))
	if len(inNamespace) > 0 {
		next.byNamespace = maps.Clone(d.byNamespace)
		for ns, moved := range inNamespace {
			if list := moved.apply(d.byNamespace[ns]); len(list) > 0 {
				next.byNamespace[ns] = list
			} else {
				delete(next.byNamespace, ns)
			}
		}
	}
	return next
}

// listChange is what changes in one of the index's lists of pods.
type listChange struct {
	left    map[int32]bool
	arrived []int32
}

// changeOf returns the change of the list under key, made on first use.
func changeOf[K comparable](lists map[K]*listChange, key K) *listChange {
	if lists[key] == nil {
		lists[key] = &listChange{}
	}
	return lists[key]
}

func (l *listChange) leave(i int32) {
	if l.left == nil {
		l.left = make(map[int32]bool)
	}
	l.left[i] = true
}

func (l *listChange) arrive(i int32) { l.arrived = append(l.arrived, i) }

// move records pod i leaving or arriving in the list as it was in it
// or not, and is now.
func (l *listChange) move(i int32, was, now bool) {
	switch {
	case was && !now:
		l.leave(i)
	case now && !was:
		l.arrive(i)
	}
}

// apply returns list without the pods that left and with those that
// arrived, in index order as build lists them; list itself, shared,
// when none did.
func (l *listChange) apply(list []int32) []int32 {
	if len(l.left) == 0 && len(l.arrived) == 0 {
		return list
	}
	out := make([]int32, 0, len(list)+len(l.arrived))
	for _, i := range list {
		if !l.left[i] {
			out = append(out, i)
		}
	}
	out = append(out, l.arrived...)
	slices.Sort(out)
	return out
}

func hasAntiAffinity(t *Template) bool { return t != nil && len(t.AntiAffinity) > 0 }

func namespaceOf(t *Template) string {
	if t == nil {
		return ""
	}
	return t.Namespace
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
