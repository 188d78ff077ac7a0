package cluster

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Snapshot turns the cached objects into the input of the analysis. It
// returns ErrCacheNotSynced until every cache has synced.
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
func (w *Watcher) Snapshot() (*spread.Cluster, error) {
	if !w.Synced() {
		return nil, ErrCacheNotSynced
	}
	c := &spread.Cluster{
		TopologyKeys: w.config.TopologyKeys,
		Nodes:        make(map[string]*spread.Node),
	}
	for _, obj := range w.nodes.List() {
		node := obj.(*corev1.Node)
		domains := make([]string, len(w.config.TopologyKeys))
		for i, key := range w.config.TopologyKeys {
			domains[i] = node.Labels[key]
		}
		c.Nodes[node.Name] = &spread.Node{Name: node.Name, Domains: domains, Unschedulable: w.unschedulableReasons(node)}
	}

	// Workloads by kind and namespace/name, so each pod finds its owner.
	workloads := make(map[spread.Kind]map[objectKey]*spread.Service)
	addWorkload := func(kind spread.Kind, object metav1.Object, replicas *int32) {
		if !w.namespaceIncluded(object.GetNamespace()) {
			return
		}
		desired := 1 // The API server defaults spec.replicas to 1.
		if replicas != nil {
			desired = int(*replicas)
		}
		svc := &spread.Service{
			Namespace: object.GetNamespace(), Kind: kind, Name: object.GetName(),
			DesiredReplicas: desired, MinNodes: minNodesOf(object),
		}
		if workloads[kind] == nil {
			workloads[kind] = make(map[objectKey]*spread.Service)
		}
		workloads[kind][key(object.GetNamespace(), object.GetName())] = svc
		c.Services = append(c.Services, svc)
	}
	for _, obj := range w.deployments.List() {
		d := obj.(*appsv1.Deployment)
		addWorkload(spread.KindDeployment, d, d.Spec.Replicas)
	}
	for _, obj := range w.statefulSets.List() {
		s := obj.(*appsv1.StatefulSet)
		addWorkload(spread.KindStatefulSet, s, s.Spec.Replicas)
	}
	for _, obj := range w.replicationControllers.List() {
		rc := obj.(*corev1.ReplicationController)
		if metav1.GetControllerOfNoCopy(rc) == nil {
			addWorkload(spread.KindReplicationController, rc, rc.Spec.Replicas)
		}
	}
	// A ReplicaSet owned by a Deployment passes its pods on to it: during a
	// rollout both the old and the new ReplicaSet's pods serve.
	replicaSetOwners := make(map[objectKey]*spread.Service)
	for _, obj := range w.replicaSets.List() {
		rs := obj.(*appsv1.ReplicaSet)
		owner := metav1.GetControllerOfNoCopy(rs)
		switch {
		case owner == nil:
			addWorkload(spread.KindReplicaSet, rs, rs.Spec.Replicas)
			replicaSetOwners[key(rs.Namespace, rs.Name)] = workloads[spread.KindReplicaSet][key(rs.Namespace, rs.Name)]
		case owner.Kind == "Deployment":
			if d := workloads[spread.KindDeployment][key(rs.Namespace, owner.Name)]; d != nil {
				replicaSetOwners[key(rs.Namespace, rs.Name)] = d
			}
		}
	}
	for _, obj := range w.pods.List() {
		pod := obj.(*corev1.Pod)
		owner := metav1.GetControllerOfNoCopy(pod)
		if owner == nil {
			continue
		}
		var svc *spread.Service
		switch owner.Kind {
		case "ReplicaSet":
			svc = replicaSetOwners[key(pod.Namespace, owner.Name)]
		case "StatefulSet":
			svc = workloads[spread.KindStatefulSet][key(pod.Namespace, owner.Name)]
		case "ReplicationController":
			svc = workloads[spread.KindReplicationController][key(pod.Namespace, owner.Name)]
		}
		if svc != nil {
			svc.Replicas = append(svc.Replicas, spread.Replica{Node: pod.Spec.NodeName, Ready: podReady(pod)})
		}
	}

	services := make(map[objectKey]*spread.Service)
	for _, obj := range w.services.List() {
		s := obj.(*corev1.Service)
		if len(s.Spec.Selector) == 0 || !w.namespaceIncluded(s.Namespace) {
			continue
		}
		svc := &spread.Service{Namespace: s.Namespace, Kind: spread.KindService, Name: s.Name, DesiredReplicas: -1, MinNodes: minNodesOf(s)}
		services[key(s.Namespace, s.Name)] = svc
		c.Services = append(c.Services, svc)
	}
	// A pod appears once per address family in a dual-stack Service, and
	// may briefly appear in two slices while the controller moves it:
	// count each endpoint once.
	seen := make(map[*spread.Service]map[string]struct{})
	for _, obj := range w.endpointSlices.List() {
		slice := obj.(*discoveryv1.EndpointSlice)
		svc := services[key(slice.Namespace, slice.Labels[discoveryv1.LabelServiceName])]
		if svc == nil {
			continue
		}
		if seen[svc] == nil {
			seen[svc] = make(map[string]struct{})
		}
		for i := range slice.Endpoints {
			ep := &slice.Endpoints[i]
			id := endpointID(ep)
			if _, dup := seen[svc][id]; dup && id != "" {
				continue
			}
			seen[svc][id] = struct{}{}
			node := ""
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			svc.Replicas = append(svc.Replicas, spread.Replica{Node: node, Ready: endpointReady(ep)})
		}
	}
	return c, nil
}

// unschedulableReasons says why a node will not keep its replicas.
func (w *Watcher) unschedulableReasons(node *corev1.Node) []spread.Reason {
	var reasons []spread.Reason
	if node.Spec.Unschedulable {
		reasons = append(reasons, spread.ReasonCordoned)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		reasons = append(reasons, spread.ReasonNotReady)
	}
	if w.hasMaintenanceTaint(node) {
		reasons = append(reasons, spread.ReasonMaintenanceTaint)
	}
	if w.config.MaintenanceSelector.Matches(labels.Set(node.Labels)) {
		reasons = append(reasons, spread.ReasonMaintenanceLabel)
	}
	if node.DeletionTimestamp != nil {
		reasons = append(reasons, spread.ReasonDeleting)
	}
	return reasons
}

func (w *Watcher) hasMaintenanceTaint(node *corev1.Node) bool {
	for _, taint := range node.Spec.Taints {
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		for _, maintenanceKey := range w.config.MaintenanceTaints {
			if taint.Key == maintenanceKey {
				return true
			}
		}
	}
	return false
}

func (w *Watcher) namespaceIncluded(namespace string) bool {
	if w.config.NamespaceInclude != nil && !w.config.NamespaceInclude.MatchString(namespace) {
		return false
	}
	return w.config.NamespaceExclude == nil || !w.config.NamespaceExclude.MatchString(namespace)
}

// podReady: the pod's Ready condition is True and it is not terminating.
func podReady(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// endpointReady: ready and not terminating. The API says a missing ready
// condition means ready.
func endpointReady(ep *discoveryv1.Endpoint) bool {
	if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
		return false
	}
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// endpointID identifies the pod behind an endpoint across slices.
func endpointID(ep *discoveryv1.Endpoint) string {
	if ep.TargetRef != nil {
		return ep.TargetRef.Kind + "/" + ep.TargetRef.Name
	}
	if len(ep.Addresses) > 0 {
		return ep.Addresses[0]
	}
	return ""
}

// minNodesOf returns a valid min-nodes annotation, or 0 for the default.
// Invalid values were already reported when the object arrived.
func minNodesOf(object metav1.Object) int {
	value, ok := object.GetAnnotations()[spread.MinNodesAnnotation]
	if !ok {
		return 0
	}
	n, err := spread.ParseMinNodes(value)
	if err != nil {
		return 0
	}
	return n
}

// objectKey identifies a namespaced object; a struct key costs no
// allocation per pod, unlike a joined string.
type objectKey struct{ namespace, name string }

func key(namespace, name string) objectKey { return objectKey{namespace, name} }
