package cluster

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Snapshot turns the cached objects into the input of the analysis. It
// returns ErrCacheNotSynced until every cache has synced. Every call
// returns new values: the caller may keep or change them.
//
// What counts as a service:
//   - a Service with a selector; its replicas are its EndpointSlices'
//     endpoints (a Service without selector points outside the cluster's
//     scheduling, so its spread is not ours to judge);
//   - a Deployment (its pods, owned through its ReplicaSets), a StatefulSet,
//     and a ReplicaSet or ReplicationController that no controller owns.
//
// DaemonSets run one pod per node by design, so their spread is the node
// count and maintenance always takes some of them; Jobs and bare pods are
// not kept running by anything. None of them is a service here.
//
// It allocates a fixed number of blocks (the nodes, the services and the
// replicas each in one), not a few per pod, and looks each pod's owner up
// once, in a map keyed by one string. The snapshot always holds the
// placement model's input (spread.Cluster.Placement), as the what-if API
// needs it for any question; a scrape calls SnapshotForScrape instead.
func (w *Watcher) Snapshot() (*spread.Cluster, error) {
	return w.snapshot(placementAlways)
}

// SnapshotForScrape is Snapshot without the placement model's input
// unless some unschedulable node holds a pod. Only displaced pods need
// placing, and building the input (every pod in the model's form, and
// every endpoint's pod found through a map over all pods) doubled the
// time and nearly doubled the allocations of a snapshot at 150,000 pods,
// a cost every scrape after a change would pay while no maintenance runs.
func (w *Watcher) SnapshotForScrape() (*spread.Cluster, error) {
	return w.snapshot(placementIfDisplaced)
}

// SnapshotWithoutPlacement is Snapshot without the placement model's
// input, ever: the admission webhook judges spread verdicts only, and
// takes its snapshots in the background while cordons wait on none.
func (w *Watcher) SnapshotWithoutPlacement() (*spread.Cluster, error) {
	return w.snapshot(placementNever)
}

// UnschedulableNodes returns the sorted names of the cached nodes that are
// out of service, by the rules of Snapshot: what a caller judging on an
// older snapshot reads to count nodes gone since, at the cost of a walk
// over the nodes rather than a snapshot.
func (w *Watcher) UnschedulableNodes() []string {
	var names []string
	for _, obj := range w.nodes.List() {
		n := obj.(*cachedNode)
		if len(w.unschedulableReasons(n)) > 0 {
			names = append(names, n.name.Value())
		}
	}
	slices.Sort(names)
	return names
}

// NodesInService returns, of the named nodes, those the caches hold and
// show in service now, in the order named: with UnschedulableNodes, what a
// caller judging on an older snapshot reads to bring its nodes up to date.
func (w *Watcher) NodesInService(names []string) []string {
	var out []string
	for _, name := range names {
		// Nodes are cluster-scoped: the cache's key is the name.
		obj, exists, err := w.nodes.GetByKey(name)
		if err != nil || !exists {
			continue
		}
		if len(w.unschedulableReasons(obj.(*cachedNode))) == 0 {
			out = append(out, name)
		}
	}
	return out
}

// NodeResourceVersion returns the resourceVersion of the node the caches
// hold, and false when they hold none, or hold it at a version that is not
// a decimal number (kept only as a hash, see resourceVersion): the caller
// compares it with versions the API server sent, which a hash cannot be.
func (w *Watcher) NodeResourceVersion(name string) (string, bool) {
	obj, exists, err := w.nodes.GetByKey(name)
	if err != nil || !exists {
		return "", false
	}
	v := obj.(*cachedNode).resourceVersion
	if v == 0 || v&hashedVersion != 0 {
		return "", false
	}
	return v.String(), true
}

// placementInput says when a snapshot holds the placement model's input.
type placementInput int

const (
	placementAlways placementInput = iota
	// placementIfDisplaced: only when some unschedulable node holds a pod.
	placementIfDisplaced
	placementNever
)

// snapshot is Snapshot, with the placement input as asked.
func (w *Watcher) snapshot(input placementInput) (*spread.Cluster, error) {
	if !w.Synced() {
		return nil, ErrCacheNotSynced
	}
	c := &spread.Cluster{TopologyKeys: w.config.TopologyKeys}
	w.snapshotNodes(c)
	services, owners, serviceIndex := w.snapshotServices()
	pods := w.pods.List()
	var refs placementRefs
	if input == placementAlways || input == placementIfDisplaced && holdsDisplacedPods(c.Nodes, pods) {
		c.Placement, refs = w.snapshotPlacement(pods)
	}
	w.snapshotReplicas(services, owners, serviceIndex, pods, refs)
	c.Services = make([]*spread.Service, len(services))
	for i := range services {
		c.Services[i] = &services[i]
	}
	// In the order of a report: every analysis of this snapshot (a what-if
	// runs three per question) then sorts a sorted list, in linear time.
	slices.SortFunc(c.Services, compareServices)
	return c, nil
}

// snapshotServices returns the services of a snapshot, without replicas,
// and indexes them: owners by the controllers pods name, serviceIndex by
// the Services' namespace and name.
func (w *Watcher) snapshotServices() (services []spread.Service, owners podOwners, serviceIndex map[nsName]int32) {
	included := w.namespaceFilter()
	deployments, statefulSets := w.deployments.List(), w.statefulSets.List()
	replicaSets, replicationControllers := w.replicaSets.List(), w.replicationControllers.List()
	serviceObjs := w.services.List()
	services = make([]spread.Service, 0, len(deployments)+len(statefulSets)+len(replicaSets)+len(replicationControllers)+len(serviceObjs))
	add := func(s spread.Service) int32 {
		services = append(services, s)
		return int32(len(services) - 1)
	}
	addWorkload := func(kind spread.Kind, wl *cachedWorkload) int32 { return add(workloadOf(kind, wl)) }

	// The service each pod owner stands for: a StatefulSet or an unowned
	// ReplicaSet or ReplicationController for itself, and a ReplicaSet
	// owned by a Deployment for the Deployment (during a rollout both the
	// old and the new ReplicaSet's pods serve).
	owners.init(len(replicaSets), len(statefulSets), len(replicationControllers))
	deploymentIndex := make(map[nsName]int32, len(deployments))
	for _, obj := range deployments {
		d := obj.(*cachedWorkload)
		if included(d.key) {
			deploymentIndex[d.key] = addWorkload(spread.KindDeployment, d)
		}
	}
	for _, obj := range statefulSets {
		s := obj.(*cachedWorkload)
		if included(s.key) {
			owners.of(kindStatefulSet)[s.key] = addWorkload(spread.KindStatefulSet, s)
		}
	}
	for _, obj := range replicationControllers {
		rc := obj.(*cachedWorkload)
		if rc.ownerKind == kindNone && included(rc.key) {
			owners.of(kindReplicationController)[rc.key] = addWorkload(spread.KindReplicationController, rc)
		}
	}
	for _, obj := range replicaSets {
		rs := obj.(*cachedWorkload)
		switch rs.ownerKind {
		case kindNone:
			if included(rs.key) {
				owners.of(kindReplicaSet)[rs.key] = addWorkload(spread.KindReplicaSet, rs)
			}
		case kindDeployment:
			if d, ok := deploymentIndex[rs.owner]; ok {
				owners.of(kindReplicaSet)[rs.key] = d
			}
		}
	}
	serviceIndex = make(map[nsName]int32, len(serviceObjs))
	for _, obj := range serviceObjs {
		s := obj.(*cachedService)
		if s.selector && included(s.key) {
			serviceIndex[s.key] = add(serviceOf(s))
		}
	}
	return services, owners, serviceIndex
}

// workloadOf is the service a workload stands for, without replicas.
func workloadOf(kind spread.Kind, wl *cachedWorkload) spread.Service {
	namespace, name := wl.key.split()
	return spread.Service{
		Namespace: namespace, Kind: kind, Name: name,
		DesiredReplicas: int(wl.replicas), MinNodes: int(wl.minNodes.value),
	}
}

// serviceOf is the service a Service with a selector stands for, without
// replicas.
func serviceOf(s *cachedService) spread.Service {
	namespace, name := s.key.split()
	return spread.Service{
		Namespace: namespace, Kind: spread.KindService, Name: name,
		DesiredReplicas: -1, MinNodes: int(s.minNodes.value),
	}
}

// replica is the pod as a replica of its controller's service; pod is
// its Replica.Pod.
func (p *cachedPod) replica(pod int32) spread.Replica {
	return spread.Replica{Node: p.nodeName(), Ready: p.ready && !p.terminating, Finished: p.finished, Pod: pod}
}

// replica is the endpoint as a replica of its Service; pod is its
// Replica.Pod.
func (e cachedEndpoint) replica(pod int32) spread.Replica {
	return spread.Replica{Node: e.nodeName(), Ready: e.ready(), Pod: pod}
}

// snapshotReplicas gives each service its replicas, all in one allocation:
// a first pass finds the service of each pod and slice and counts, a second
// fills in.
func (w *Watcher) snapshotReplicas(services []spread.Service, owners podOwners, serviceIndex map[nsName]int32, pods []any, refs placementRefs) {
	counts := make([]int32, len(services))
	podService := make([]int32, len(pods))
	for i, obj := range pods {
		p := obj.(*cachedPod)
		podService[i] = -1
		if p.ownerKind < kindReplicaSet {
			continue // no controller, or one whose pods do not count
		}
		if s, ok := owners.of(p.ownerKind)[p.owner]; ok {
			podService[i] = s
			counts[s]++
		}
	}
	sliceObjs := w.endpointSlices.List()
	sliceService := make([]int32, len(sliceObjs))
	slicesPerService := make([]int32, len(services))
	for i, obj := range sliceObjs {
		slice := obj.(*cachedEndpointSlice)
		sliceService[i] = -1
		if s, ok := serviceIndex[slice.service]; ok {
			sliceService[i] = s
			counts[s] += int32(len(slice.endpoints))
			slicesPerService[s]++
		}
	}
	severalSlices := 0 // endpoints of Services with several slices
	for i, obj := range sliceObjs {
		if s := sliceService[i]; s >= 0 && slicesPerService[s] > 1 {
			severalSlices += len(obj.(*cachedEndpointSlice).endpoints)
		}
	}
	total := 0
	for _, n := range counts {
		total += int(n)
	}
	replicas := make([]spread.Replica, total)
	for i, n := range counts {
		if n > 0 {
			// Capped, so that appending to one service's replicas never
			// overwrites the next one's.
			services[i].Replicas = replicas[:0:n]
			replicas = replicas[n:]
		}
	}

	for i, obj := range pods {
		if s := podService[i]; s >= 0 {
			p := obj.(*cachedPod)
			svc := &services[s]
			svc.Replicas = append(svc.Replicas, p.replica(refs.of(i)))
		}
	}
	byEndpoint := refs.endpointIndex(pods)
	// Each slice holds an endpoint once (see endpoints); a Service with
	// several slices (one per address family, or over 100 endpoints, or a
	// pod moving) counts each endpoint once across them.
	seen := make(map[seenKey]struct{}, severalSlices)
	for i, obj := range sliceObjs {
		s := sliceService[i]
		if s < 0 {
			continue
		}
		slice := obj.(*cachedEndpointSlice)
		svc := &services[s]
		several := slicesPerService[s] > 1
		for _, ep := range slice.endpoints {
			if id := ep.id(); several && id != 0 {
				key := seenKey{s, id}
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = struct{}{}
			}
			svc.Replicas = append(svc.Replicas, ep.replica(byEndpoint.find(svc.Namespace, ep.id())))
		}
	}
}

// snapshotNodes fills in the nodes of a snapshot.
func (w *Watcher) snapshotNodes(c *spread.Cluster) {
	objs := w.nodes.List()
	keys := len(c.TopologyKeys)
	c.Nodes = make(map[string]*spread.Node, len(objs))
	nodes := make([]spread.Node, len(objs))
	domains := make([]string, len(objs)*keys)
	for i, obj := range objs {
		n := obj.(*cachedNode)
		d := domains[i*keys : (i+1)*keys : (i+1)*keys]
		for j, key := range c.TopologyKeys {
			d[j] = n.labels.Get(key)
		}
		name := n.name.Value()
		nodes[i] = spread.Node{Name: name, Domains: d, Unschedulable: w.unschedulableReasons(n)}
		c.Nodes[name] = &nodes[i]
	}
}

// UnschedulableReasons says why a Node object is unschedulable, by the
// rules that judge the cached nodes (the maintenance taints and selector
// of the Config): the admission webhook judges a change before any cache
// has it. Empty means schedulable.
func (w *Watcher) UnschedulableReasons(node *corev1.Node) []spread.Reason {
	return w.unschedulableReasons(nodeScheduling(node))
}

// unschedulableReasons says why a node will not keep its replicas.
func (w *Watcher) unschedulableReasons(n *cachedNode) []spread.Reason {
	var reasons []spread.Reason
	if n.unschedulable {
		reasons = append(reasons, spread.ReasonCordoned)
	}
	if !n.ready {
		reasons = append(reasons, spread.ReasonNotReady)
	}
	if w.hasMaintenanceTaint(n) {
		reasons = append(reasons, spread.ReasonMaintenanceTaint)
	}
	if w.config.MaintenanceSelector.Matches(&n.labels) {
		reasons = append(reasons, spread.ReasonMaintenanceLabel)
	}
	if n.deleting {
		reasons = append(reasons, spread.ReasonDeleting)
	}
	return reasons
}

func (w *Watcher) hasMaintenanceTaint(n *cachedNode) bool {
	for _, taint := range n.taints {
		// PreferNoSchedule keeps no pod away.
		if taint.Effect != placement.EffectNoSchedule && taint.Effect != placement.EffectNoExecute {
			continue
		}
		if slices.Contains(w.config.MaintenanceTaints, taint.Key) {
			return true
		}
	}
	return false
}

// namespaceFilter returns whether the namespace of an object is included,
// remembering the answer for each namespace through one snapshot: a
// regular expression per object would cost more than the rest of the
// snapshot.
func (w *Watcher) namespaceFilter() func(nsName) bool {
	if w.config.NamespaceInclude == nil && w.config.NamespaceExclude == nil {
		return func(nsName) bool { return true }
	}
	known := make(map[string]bool)
	return func(key nsName) bool {
		namespace := key.namespace()
		included, ok := known[namespace]
		if !ok {
			included = w.namespaceIncluded(namespace)
			known[namespace] = included
		}
		return included
	}
}

func (w *Watcher) namespaceIncluded(namespace string) bool {
	if w.config.NamespaceInclude != nil && !w.config.NamespaceInclude.MatchString(namespace) {
		return false
	}
	return w.config.NamespaceExclude == nil || !w.config.NamespaceExclude.MatchString(namespace)
}

// podOwners maps the controllers pods may name to the service each stands
// for, one map per kind: a string key takes the map's fast path.
type podOwners [3]map[nsName]int32

func (o *podOwners) init(replicaSets, statefulSets, replicationControllers int) {
	o[kindReplicaSet-kindReplicaSet] = make(map[nsName]int32, replicaSets)
	o[kindStatefulSet-kindReplicaSet] = make(map[nsName]int32, statefulSets)
	o[kindReplicationController-kindReplicaSet] = make(map[nsName]int32, replicationControllers)
}

// of returns the map of a kind from kindReplicaSet on.
func (o *podOwners) of(k kind) map[nsName]int32 { return o[k-kindReplicaSet] }

// seenKey is an endpoint of a service, for counting it once.
type seenKey struct {
	service int32
	id      uint64
}
