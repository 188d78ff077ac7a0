package cluster

import (
	"slices"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// placementBase is the placement model's input a Follower keeps from one
// snapshot to the next, brought up to date with the pods and nodes that
// changed since. A cordon displaces the pods of one node, and the scrape
// after it built the input of all 150,000 anew, hashed every pod to tie
// the displaced services' replicas to it, and was the cordon's latency
// (docs/benchmarks.md). Kept, a scrape that finds pods displaced hands the
// input out as it is, and ties replicas by looking them up. The input
// comes prepared (placement.Cluster.Prepare), its index moved from the
// last input's by the pods that changed since: the simulation then
// neither counts every staying pod per node nor walks every node's
// images.
//
// It costs about 80 bytes a pod while nothing is displaced (the input's
// copy of each pod, its cached pod and its index entry), kept so that the
// first cordon finds it built, and about 40 more once a cordon has asked
// for the index (pods by node and namespace, the nodes holding each
// image); and at each snapshot a lookup of each pod that changed.
//
// The input it hands out is shared with the snapshot and never modified
// after: the nodes are replaced, not changed, and the pods are copied
// before the first change after they were handed out.
type placementBase struct {
	nodes placementNodes
	// pods are the input's pods, in no order (the model orders the
	// displaced ones itself); cached holds the cached pod of each.
	pods   []placement.Pod
	cached []*cachedPod
	// index finds a pod's entry by namespace and name, as endpointPods
	// finds an endpoint's pod: its value is the index in pods plus one.
	index endpointPods
	// shared is true while a snapshot holds pods.
	shared bool

	// prepared is the index of the input last handed out, and before the
	// pods that input had at each index changed since: the next input is
	// prepared from them (placement.Cluster.PrepareFrom) at the cost of
	// the changes, not of a walk over every pod in each simulation.
	prepared *placement.Index
	before   map[int32]placement.Pod
}

// podRef names a pod whose change a follower recorded.
type podRef struct {
	namespace, name string
}

// newPlacementBase builds the base from the caches as they are.
func (w *Watcher) newPlacementBase() *placementBase {
	b := &placementBase{nodes: w.placementNodes()}
	pods := w.pods.List()
	b.pods = make([]placement.Pod, 0, len(pods))
	b.cached = make([]*cachedPod, 0, len(pods))
	b.index = make(endpointPods, len(pods))
	for _, obj := range pods {
		p := obj.(*cachedPod)
		if in, ok := b.nodes.pod(p); ok {
			b.add(p, in)
		}
	}
	return b
}

// podKey is the index key of a cached pod.
func podKey(p *cachedPod) uint64 {
	return endpointKey(p.owner.namespace(), podID(p.name))
}

func (b *placementBase) add(p *cachedPod, in placement.Pod) {
	b.changing(int32(len(b.pods)))
	b.pods = append(b.pods, in)
	b.cached = append(b.cached, p)
	b.index[podKey(p)] = int32(len(b.pods))
}

// update brings the base up to date with the caches after the pods and
// nodes named changed. It returns false when the nodes the caches hold are
// not the base's any more, added or deleted: then every pod's node index
// moves, and the caller builds the base anew.
func (b *placementBase) update(w *Watcher, pods map[podRef]struct{}, nodes map[string]struct{}) bool {
	if len(nodes) > 0 {
		n := w.placementNodes()
		if !slices.Equal(n.handles, b.nodes.handles) {
			return false
		}
		// Their labels, taints, room or images may have changed; their
		// indexes have not.
		b.nodes = n
	}
	for ref := range pods {
		obj, exists, _ := w.pods.GetByKey(ref.namespace + "/" + ref.name)
		var p *cachedPod
		var in placement.Pod
		ok := false
		if exists {
			p = obj.(*cachedPod)
			in, ok = b.nodes.pod(p)
		}
		i := b.index.find(ref.namespace, podID(ref.name))
		if !ok && i == 0 {
			continue
		}
		if b.shared {
			b.pods, b.shared = slices.Clone(b.pods), false
		}
		switch {
		case ok && i == 0:
			b.add(p, in)
		case ok:
			b.changing(i - 1)
			b.pods[i-1], b.cached[i-1] = in, p
		default:
			b.remove(ref, i-1)
		}
	}
	return true
}

// remove takes the pod at index i, named ref, out: the last pod moves to
// its place.
func (b *placementBase) remove(ref podRef, i int32) {
	last := int32(len(b.pods) - 1)
	b.changing(i)
	b.changing(last)
	if i != last {
		b.pods[i], b.cached[i] = b.pods[last], b.cached[last]
		b.index[podKey(b.cached[i])] = i + 1
	}
	b.pods, b.cached[last] = b.pods[:last], nil
	b.cached = b.cached[:last]
	delete(b.index, endpointKey(ref.namespace, podID(ref.name)))
}

// changing records the pod at index i, none past the end, before it
// changes, for the index of the next input. Past an eighth of the pods it
// drops the index: building it anew then costs less than moving it.
func (b *placementBase) changing(i int32) {
	if b.prepared == nil {
		return
	}
	if _, seen := b.before[i]; seen {
		return
	}
	if len(b.before) >= len(b.pods)/8+64 {
		b.prepared, b.before = nil, nil
		return
	}
	was := placement.Pod{Node: -1}
	if int(i) < len(b.pods) {
		was = b.pods[i]
	}
	b.before[i] = was
}

// input returns the placement input with the nodes marked gone taken
// away, and the indexes of the pods on them: nil input and none when no
// pod is on a gone node. The snapshot shares the input with the base.
func (b *placementBase) input(w *Watcher, gone []bool) (*placement.Cluster, []int32) {
	var displaced []int32
	for i := range b.pods {
		if gone[b.pods[i].Node] {
			displaced = append(displaced, int32(i))
		}
	}
	if len(displaced) == 0 {
		return nil, nil
	}
	b.shared = true
	c := &placement.Cluster{Nodes: b.nodes.nodes, Pods: b.pods, PDBs: w.placementPDBs()}
	c.PrepareFrom(b.prepared, b.before)
	b.prepared, b.before = c.Index(), make(map[int32]placement.Pod)
	return c, displaced
}
