package cluster

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"unique"

	"k8s.io/client-go/tools/cache"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// A Follower keeps a snapshot up to date at the cost of what changed, not
// of the cluster: the event handler records, for every follower, which
// services and nodes each event touches, and the follower's next snapshot
// builds only those services anew from the caches and keeps the others of
// its previous snapshot. At 150,000 pods a whole snapshot takes about a
// hundred milliseconds, and the scrape after one pod changed paid it.
//
// What an event touches:
//   - a pod: the service of its controller (its ReplicaSet's Deployment,
//     or the StatefulSet, ReplicaSet or ReplicationController itself). A
//     Service's replicas are its EndpointSlices' endpoints, which the
//     endpoint controller updates on its own when a pod changes;
//   - an EndpointSlice: its Service;
//   - a workload or a Service: itself; a ReplicaSet also its Deployment,
//     before and after the change, as adoption moves its pods;
//   - a node: every service with a replica on it, which only the analysis
//     knows (spread.Report.ServicesOn), so the follower returns the names.
//
// While an unschedulable node holds pods, the snapshot also needs the
// placement model's input, which covers every pod: the follower keeps it
// (placementBase) and brings it up to date with the pods and nodes that
// changed. Of the services, only those with a displaced pod are built
// anew, with their replicas tied to it (placeReplicas).
type Follower struct {
	w *Watcher

	mu      sync.Mutex
	changes changes

	// base is the placement input, nil until the first snapshot. Only
	// SnapshotForScrape, which has one caller at a time, uses it.
	base *placementBase
}

// changes are what the caches changed since a follower last took them.
type changes struct {
	services map[serviceKey]struct{}
	nodes    map[string]struct{}
	pods     map[podRef]struct{}
}

// serviceKey names a service by kind, namespace and name.
type serviceKey struct {
	kind spread.Kind
	key  nsName
}

// Follow returns a new follower of the watcher's caches. Every follower
// costs the event handler a map insert per event, so there is one per
// reader that keeps a snapshot (the collector), not one per request.
func (w *Watcher) Follow() *Follower {
	f := &Follower{w: w}
	w.followersMu.Lock()
	defer w.followersMu.Unlock()
	w.followers = append(w.followers, f)
	return f
}

// record notes what one event of the named resource touches, for every
// follower; old is nil for an add or a delete.
func (w *Watcher) record(resource string, old, obj any) {
	w.followersMu.Lock()
	followers := w.followers
	w.followersMu.Unlock()
	if len(followers) == 0 {
		return
	}
	var keys []serviceKey
	var nodes []string
	var pods []podRef
	for _, o := range []any{old, obj} {
		if tombstone, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = tombstone.Obj
		}
		switch o := o.(type) {
		case *cachedPod:
			if k, ok := podServiceKinds[o.ownerKind]; ok {
				keys = append(keys, serviceKey{k, o.owner})
			}
			pods = append(pods, podRef{o.owner.namespace(), o.name})
		case *cachedEndpointSlice:
			keys = append(keys, serviceKey{spread.KindService, o.service})
		case *cachedService:
			keys = append(keys, serviceKey{spread.KindService, o.key})
		case *cachedWorkload:
			keys = append(keys, serviceKey{workloadKinds[resource], o.key})
			if o.ownerKind == kindDeployment {
				keys = append(keys, serviceKey{spread.KindDeployment, o.owner})
			}
		case *cachedNode:
			nodes = append(nodes, o.name.Value())
		}
	}
	for _, f := range followers {
		f.mu.Lock()
		f.changes.add(keys, nodes, pods)
		f.mu.Unlock()
	}
}

// podServiceKinds are the controllers whose pods count, by the kind a
// service of them has. A pod of a ReplicaSet that a Deployment owns is
// the Deployment's: Snapshot resolves that through the ReplicaSet.
var podServiceKinds = map[kind]spread.Kind{
	kindReplicaSet:            spread.KindReplicaSet,
	kindStatefulSet:           spread.KindStatefulSet,
	kindReplicationController: spread.KindReplicationController,
}

// workloadKinds are the kinds of service of the workload resources.
var workloadKinds = map[string]spread.Kind{
	"deployments":            spread.KindDeployment,
	"statefulsets":           spread.KindStatefulSet,
	"replicasets":            spread.KindReplicaSet,
	"replicationcontrollers": spread.KindReplicationController,
}

func (c *changes) add(keys []serviceKey, nodes []string, pods []podRef) {
	if len(keys) > 0 && c.services == nil {
		c.services = make(map[serviceKey]struct{})
	}
	for _, k := range keys {
		c.services[k] = struct{}{}
	}
	if len(nodes) > 0 && c.nodes == nil {
		c.nodes = make(map[string]struct{})
	}
	for _, n := range nodes {
		c.nodes[n] = struct{}{}
	}
	if len(pods) > 0 && c.pods == nil {
		c.pods = make(map[podRef]struct{})
	}
	for _, p := range pods {
		c.pods[p] = struct{}{}
	}
}

// take returns the changes recorded and forgets them.
func (f *Follower) take() changes {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changes
	f.changes = changes{}
	return c
}

// SnapshotForScrape returns what Watcher.SnapshotForScrape would, built
// from prev, this follower's previous snapshot (nil for the first), and
// the changes recorded since prev was taken. It returns the names of the
// nodes that changed, for the caller to analyse again the services on
// them, and whole, true when the snapshot was built whole (the first,
// prev nil): then nothing in it comes from prev, and the caller analyses
// all of it.
//
// Services not touched since prev are prev's: the same *spread.Service,
// which the caller may take as unchanged (spread.ReanalyzeAfter does).
// Neither prev nor anything in it is modified.
//
// Ordering is Generation's: a caller that reads Generation and then calls
// this sees every change counted up to the value it read, because the
// handler records a change before it counts it.
func (f *Follower) SnapshotForScrape(prev *spread.Cluster) (next *spread.Cluster, nodes []string, whole bool, err error) {
	w := f.w
	if !w.Synced() {
		return nil, nil, false, ErrCacheNotSynced
	}
	changes := f.take()
	if prev == nil {
		// Dropped before the whole snapshot is built, which it would
		// otherwise double in memory.
		f.base = nil
		if next, err = w.SnapshotForScrape(); err != nil {
			return nil, nil, false, err
		}
		f.base = w.newPlacementBase()
		return next, nil, true, nil
	}
	next = &spread.Cluster{TopologyKeys: w.config.TopologyKeys, Nodes: prev.Nodes}
	if len(changes.nodes) > 0 {
		w.snapshotNodes(next)
		nodes = make([]string, 0, len(changes.nodes))
		for name := range changes.nodes {
			nodes = append(nodes, name)
		}
		slices.Sort(nodes)
	}
	next.Services = w.updateServices(prev.Services, changes.services)
	if f.base == nil || !f.base.update(w, changes.pods, changes.nodes) {
		f.base = nil
		f.base = w.newPlacementBase()
	}
	var displaced []int32
	if anyUnschedulable(next.Nodes) {
		unschedulable := unschedulableNodes(next.Nodes)
		gone := make([]bool, len(f.base.nodes.handles))
		for i, h := range f.base.nodes.handles {
			gone[i] = unschedulable[h]
		}
		next.Placement, displaced = f.base.input(w, gone)
	}
	if next.Placement != nil {
		next.Services = w.placeReplicas(next.Services, f.base, displaced)
	} else if prev.Placement != nil {
		next.Services = withoutPlacement(next.Services)
	}
	return next, nodes, false, nil
}

// placeReplicas returns services with every service that has a displaced
// pod (one on an unschedulable node) built anew with its replicas tied to
// the placement input of base, as a whole snapshot ties them, and every
// other service untied: the ties are indexes into one snapshot's input,
// whose pods move between snapshots. Only the services with a displaced
// pod are placed (spread.PlaceDisplaced), so the others need none; few
// are. displaced are the indexes of the displaced pods in the input.
func (w *Watcher) placeReplicas(services []*spread.Service, base *placementBase, displaced []int32) []*spread.Service {
	// The displaced pods: their controllers, and their identities as
	// endpoints, by namespace.
	keys := make(map[serviceKey]struct{})
	ids := make(map[uint64]struct{})
	namespaces := make(map[string]bool)
	for _, i := range displaced {
		p := base.cached[i]
		if k, ok := podServiceKinds[p.ownerKind]; ok {
			keys[serviceKey{k, p.owner}] = struct{}{}
		}
		namespace := p.owner.namespace()
		ids[endpointKey(namespace, podID(p.name))] = struct{}{}
		namespaces[namespace] = true
	}
	for _, obj := range w.endpointSlices.List() {
		slice := obj.(*cachedEndpointSlice)
		namespace := slice.key.namespace()
		if !namespaces[namespace] {
			continue
		}
		for _, ep := range slice.endpoints {
			if _, ok := ids[endpointKey(namespace, ep.id())]; ok && ep.id() != 0 {
				keys[serviceKey{spread.KindService, slice.service}] = struct{}{}
				break
			}
		}
	}
	w.addDeployments(keys)

	// Cloned, as withoutPlacement returns services itself when nothing
	// was tied, and services is the previous snapshot's.
	out := slices.Clone(withoutPlacement(services))
	tie := placementTies{byName: base.index}
	for k := range keys {
		if i, found := slices.BinarySearchFunc(out, k, compareKey); found {
			if svc := w.service(k, &tie); svc != nil {
				out[i] = svc
			}
		}
	}
	return out
}

// unschedulableNodes returns the handles of the unschedulable nodes.
func unschedulableNodes(nodes map[string]*spread.Node) map[unique.Handle[string]]bool {
	out := make(map[unique.Handle[string]]bool)
	for name, n := range nodes {
		if !n.Schedulable() {
			out[unique.Make(name)] = true
		}
	}
	return out
}

// eachPodOf calls f with each cached pod that a controller of ownerKind
// named owner owns. The index is by name alone: a ReplicaSet and a
// StatefulSet of one name share an entry.
func (w *Watcher) eachPodOf(ownerKind kind, owner nsName, f func(*cachedPod)) {
	pods, _ := w.pods.ByIndex(byOwner, string(owner))
	for _, obj := range pods {
		if p := obj.(*cachedPod); p.ownerKind == ownerKind {
			f(p)
		}
	}
}

// ownerKinds are the kinds of controller of the services whose replicas
// are their pods: podServiceKinds the other way round.
var ownerKinds = func() map[spread.Kind]kind {
	out := make(map[spread.Kind]kind, len(podServiceKinds))
	for owner, k := range podServiceKinds {
		out[k] = owner
	}
	return out
}()

// withoutPlacement returns services with every service whose replicas are
// tied to a placement input replaced by a copy untied; services itself
// when none is.
func withoutPlacement(services []*spread.Service) []*spread.Service {
	out, cloned := services, false
	for i, svc := range services {
		if !slices.ContainsFunc(svc.Replicas, func(r spread.Replica) bool { return r.Pod != 0 }) {
			continue
		}
		if !cloned {
			out, cloned = slices.Clone(services), true
		}
		untied := *svc
		untied.Replicas = slices.Clone(svc.Replicas)
		for j := range untied.Replicas {
			untied.Replicas[j].Pod = 0
		}
		out[i] = &untied
	}
	return out
}

// placementTies give a service's replicas their Replica.Pod: a pod's index
// in the placement input plus one, found by the pod's namespace and name,
// and an endpoint's through its pod. The nil value ties nothing.
type placementTies struct {
	byName endpointPods
}

func (t *placementTies) pod(p *cachedPod) int32 {
	if t == nil {
		return 0
	}
	return t.byName.find(p.owner.namespace(), podID(p.name))
}

func (t *placementTies) endpoint(namespace string, id uint64) int32 {
	if t == nil {
		return 0
	}
	return t.byName.find(namespace, id)
}

// updateServices returns services (sorted as a snapshot sorts them) with
// the changed ones built anew from the caches: replaced, added, or dropped
// when they no longer are services.
func (w *Watcher) updateServices(services []*spread.Service, changed map[serviceKey]struct{}) []*spread.Service {
	if len(changed) == 0 {
		return services
	}
	w.addDeployments(changed)
	out := slices.Clone(services)
	var added []*spread.Service
	dropped := false
	for k := range changed {
		// Searched in services, which nothing modifies, not in out.
		i, found := slices.BinarySearchFunc(services, k, compareKey)
		svc := w.service(k, nil)
		switch {
		case found && svc != nil:
			out[i] = svc
		case found:
			out[i], dropped = nil, true
		case svc != nil:
			added = append(added, svc)
		}
	}
	if dropped {
		out = slices.DeleteFunc(out, func(s *spread.Service) bool { return s == nil })
	}
	if len(added) > 0 {
		out = append(out, added...)
		slices.SortFunc(out, compareServices)
	}
	return out
}

// addDeployments adds to keys the Deployment of each ReplicaSet in them
// that a Deployment owns: a change to a ReplicaSet's pods is one to its
// Deployment's.
func (w *Watcher) addDeployments(keys map[serviceKey]struct{}) {
	for k := range keys {
		if k.kind != spread.KindReplicaSet {
			continue
		}
		if obj, exists, _ := w.replicaSets.GetByKey(string(k.key)); exists {
			if rs := obj.(*cachedWorkload); rs.ownerKind == kindDeployment {
				keys[serviceKey{spread.KindDeployment, rs.owner}] = struct{}{}
			}
		}
	}
}

// compareKey orders a service and a key as compareServices orders two
// services.
func compareKey(s *spread.Service, k serviceKey) int {
	namespace, name := k.key.split()
	return cmp.Or(strings.Compare(s.Namespace, namespace), strings.Compare(string(s.Kind), string(k.kind)), strings.Compare(s.Name, name))
}

// compareServices orders services as a snapshot and a report do: by
// namespace, kind and name.
func compareServices(a, b *spread.Service) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Name, b.Name))
}

// service builds one service from the caches by the rules of Snapshot, or
// returns nil when the key names no service: the object is gone, is not a
// service (a Service without selector, a ReplicaSet a controller owns), or
// is in a namespace not watched. tie ties its replicas to a placement
// input; nil ties none.
func (w *Watcher) service(k serviceKey, tie *placementTies) *spread.Service {
	if !w.namespaceIncluded(k.key.namespace()) {
		return nil
	}
	if k.kind == spread.KindService {
		obj, exists, _ := w.services.GetByKey(string(k.key))
		if !exists || !obj.(*cachedService).selector {
			return nil
		}
		svc := serviceOf(obj.(*cachedService))
		w.endpointReplicas(&svc, tie)
		return &svc
	}
	store := w.workloads(k.kind)
	if store == nil {
		return nil
	}
	obj, exists, _ := store.GetByKey(string(k.key))
	if !exists {
		return nil
	}
	wl := obj.(*cachedWorkload)
	if (k.kind == spread.KindReplicaSet || k.kind == spread.KindReplicationController) && wl.ownerKind != kindNone {
		return nil
	}
	svc := workloadOf(k.kind, wl)
	switch k.kind {
	case spread.KindDeployment:
		rss, _ := w.replicaSets.ByIndex(byOwner, string(k.key))
		for _, obj := range rss {
			if rs := obj.(*cachedWorkload); rs.ownerKind == kindDeployment && rs.owner == k.key {
				w.podReplicas(&svc, kindReplicaSet, rs.key, tie)
			}
		}
	case spread.KindStatefulSet:
		w.podReplicas(&svc, kindStatefulSet, k.key, tie)
	case spread.KindReplicaSet:
		w.podReplicas(&svc, kindReplicaSet, k.key, tie)
	case spread.KindReplicationController:
		w.podReplicas(&svc, kindReplicationController, k.key, tie)
	}
	return &svc
}

// podReplicas appends the pods of one controller to the service's replicas.
func (w *Watcher) podReplicas(svc *spread.Service, ownerKind kind, owner nsName, tie *placementTies) {
	w.eachPodOf(ownerKind, owner, func(p *cachedPod) {
		svc.Replicas = append(svc.Replicas, p.replica(tie.pod(p)))
	})
}

// endpointReplicas sets the Service's replicas to its slices' endpoints,
// each endpoint once across slices (see snapshotReplicas).
func (w *Watcher) endpointReplicas(svc *spread.Service, tie *placementTies) {
	slices, _ := w.endpointSlices.ByIndex(byService, string(makeNSName(svc.Namespace, svc.Name)))
	var seen map[uint64]struct{}
	if len(slices) > 1 {
		seen = make(map[uint64]struct{})
	}
	for _, obj := range slices {
		for _, ep := range obj.(*cachedEndpointSlice).endpoints {
			if id := ep.id(); seen != nil && id != 0 {
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
			}
			svc.Replicas = append(svc.Replicas, ep.replica(tie.endpoint(svc.Namespace, ep.id())))
		}
	}
}

// workloads returns the cache of a kind of workload, nil for another kind.
func (w *Watcher) workloads(k spread.Kind) cache.Indexer {
	switch k {
	case spread.KindDeployment:
		return w.deployments
	case spread.KindStatefulSet:
		return w.statefulSets
	case spread.KindReplicaSet:
		return w.replicaSets
	case spread.KindReplicationController:
		return w.replicationControllers
	}
	return nil
}

// The names of the caches' indexes, and their functions. An index keeps a
// set entry per object it lists (some 40 bytes); each lists only what a
// Follower looks up.
const (
	// byOwner indexes pods of the controllers whose pods count, and
	// ReplicaSets a Deployment owns, by the controller's namespace and
	// name. Two controllers of different kinds may share a name: readers
	// check the kind.
	byOwner = "owner"
	// byService indexes EndpointSlices by their Service's namespace and
	// name.
	byService = "service"
)

func podsByOwner(obj any) ([]string, error) {
	if p, ok := obj.(*cachedPod); ok && p.ownerKind >= kindReplicaSet {
		return []string{string(p.owner)}, nil
	}
	return nil, nil
}

func replicaSetsByDeployment(obj any) ([]string, error) {
	if rs, ok := obj.(*cachedWorkload); ok && rs.ownerKind == kindDeployment {
		return []string{string(rs.owner)}, nil
	}
	return nil, nil
}

func slicesByService(obj any) ([]string, error) {
	if s, ok := obj.(*cachedEndpointSlice); ok {
		return []string{string(s.service)}, nil
	}
	return nil, nil
}
