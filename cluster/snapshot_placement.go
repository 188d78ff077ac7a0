package cluster

import (
	"hash/maphash"
	"slices"
	"strings"
	"unique"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// anyUnschedulable reports whether some node is unschedulable: without
// one, no pod is displaced, and nobody need list the pods to know.
func anyUnschedulable(nodes map[string]*spread.Node) bool {
	for _, n := range nodes {
		if !n.Schedulable() {
			return true
		}
	}
	return false
}

// placementRefs tie the cached pods to the placement input of a snapshot.
// The zero value stands for a snapshot without placement input.
type placementRefs struct {
	// pod holds, for each cached pod in list order, its index in
	// placement.Cluster.Pods plus one; 0 when it is not there.
	pod []int32
}

// of returns the Replica.Pod of the cached pod at index i of the list.
func (r placementRefs) of(i int) int32 {
	if r.pod == nil {
		return 0
	}
	return r.pod[i]
}

// holdsDisplacedPods reports whether some unschedulable node holds a pod
// that is bound and not finished: one the placement model would displace.
// A cordoned node that is empty (drained, or kept aside) displaces
// nothing. Without any unschedulable node, the usual case, it looks at no
// pod.
func holdsDisplacedPods(nodes map[string]*spread.Node, pods []any) bool {
	if !anyUnschedulable(nodes) {
		return false
	}
	for _, obj := range pods {
		p := obj.(*cachedPod)
		if p.finished || p.node == (unique.Handle[string]{}) {
			continue
		}
		if n, ok := nodes[p.node.Value()]; ok && !n.Schedulable() {
			return true
		}
	}
	return false
}

// snapshotPlacement builds the input of the placement model: every node
// (sorted by name, the model's tie-break order), every pod that is bound
// to a known node and not finished, and every PodDisruptionBudget.
func (w *Watcher) snapshotPlacement(pods []any) (*placement.Cluster, placementRefs) {
	nodes := w.placementNodes()
	pc := &placement.Cluster{Nodes: nodes.nodes}

	refs := placementRefs{pod: make([]int32, len(pods))}
	kept := 0
	for _, obj := range pods {
		if p := obj.(*cachedPod); !p.finished && p.node != (unique.Handle[string]{}) {
			kept++
		}
	}
	pc.Pods = make([]placement.Pod, 0, kept)
	for i, obj := range pods {
		in, ok := nodes.pod(obj.(*cachedPod))
		if !ok {
			continue
		}
		pc.Pods = append(pc.Pods, in)
		refs.pod[i] = int32(len(pc.Pods))
	}
	pc.PDBs = w.placementPDBs()
	return pc, refs
}

// placementNodes are the nodes of a placement input, sorted by name, with
// their names' handles in the same order and the index of each.
type placementNodes struct {
	nodes   []placement.Node
	handles []unique.Handle[string]
	index   map[unique.Handle[string]]int32
}

// placementNodes returns every cached node as the placement model's input
// has it.
func (w *Watcher) placementNodes() placementNodes {
	nodeObjs := w.nodes.List()
	nodes := make([]*cachedNode, len(nodeObjs))
	for i, obj := range nodeObjs {
		nodes[i] = obj.(*cachedNode)
	}
	slices.SortFunc(nodes, func(a, b *cachedNode) int { return strings.Compare(a.name.Value(), b.name.Value()) })
	out := placementNodes{
		nodes:   make([]placement.Node, len(nodes)),
		handles: make([]unique.Handle[string], len(nodes)),
		index:   make(map[unique.Handle[string]]int32, len(nodes)),
	}
	labelCount := 0
	for _, n := range nodes {
		labelCount += len(n.labels)
	}
	// One block for every node's labels.
	labels := make(placement.Labels, 0, labelCount)
	for i, n := range nodes {
		start := len(labels)
		for _, l := range n.labels {
			labels = append(labels, placement.Label{Key: l.Value().key, Value: l.Value().value})
		}
		out.nodes[i] = placement.Node{
			Name:        n.name.Value(),
			Labels:      labels[start:len(labels):len(labels)],
			Taints:      n.taints,
			Allocatable: n.allocatable,
			Images:      n.images,
		}
		out.handles[i] = n.name
		out.index[n.name] = int32(i)
	}
	return out
}

// pod returns the cached pod as the placement input has it, and false for
// a pod the input leaves out: one not bound, finished, or bound to a node
// that is gone from the cache.
func (n placementNodes) pod(p *cachedPod) (placement.Pod, bool) {
	if p.finished || p.node == (unique.Handle[string]{}) {
		return placement.Pod{}, false
	}
	node, ok := n.index[p.node]
	if !ok {
		return placement.Pod{}, false
	}
	return placement.Pod{Template: p.template, Name: p.name, Node: node, Ready: p.ready, Terminating: p.terminating}, true
}

// placementPDBs returns every PodDisruptionBudget, sorted by namespace and
// name.
func (w *Watcher) placementPDBs() []placement.PDB {
	pdbObjs := w.podDisruptionBudgets.List()
	pdbs := make([]placement.PDB, len(pdbObjs))
	for i, obj := range pdbObjs {
		pdbs[i] = obj.(*cachedPDB).pdb
	}
	slices.SortFunc(pdbs, func(a, b placement.PDB) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return pdbs
}

// endpointPods finds the pod behind an endpoint: by the endpoint's
// identity (the hash of its target's kind and name) in the Service's
// namespace.
type endpointPods map[uint64]int32

var namespaceSeed = maphash.MakeSeed()

// endpointKey mixes the namespace into an endpoint's identity: pod names
// repeat across namespaces. The multiplier is odd, so no two namespaces'
// hashes cancel for the same identity but by a 64-bit collision.
func endpointKey(namespace string, id uint64) uint64 {
	return id ^ maphash.String(namespaceSeed, namespace)*0x9e3779b97f4a7c15
}

// endpointIndex indexes the pods that are in the placement input by
// namespace and identity; nil without placement input.
func (r placementRefs) endpointIndex(pods []any) endpointPods {
	if r.pod == nil {
		return nil
	}
	index := make(endpointPods, len(pods))
	lastNamespace, lastHash := "", uint64(0)
	for i, obj := range pods {
		if r.pod[i] == 0 {
			continue
		}
		p := obj.(*cachedPod)
		// Pods come in runs of one namespace: hash it once per run.
		if ns := p.owner.namespace(); ns != lastNamespace || lastHash == 0 {
			lastNamespace, lastHash = ns, maphash.String(namespaceSeed, ns)*0x9e3779b97f4a7c15
		}
		index[podID(p.name)^lastHash] = r.pod[i]
	}
	return index
}

// find returns the pod of an endpoint as a Replica.Pod: 0 when unknown.
func (e endpointPods) find(namespace string, id uint64) int32 {
	if id == 0 || e == nil {
		return 0
	}
	return e[endpointKey(namespace, id)]
}
