package cluster

import (
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// trim keeps only the fields the analysis reads. It runs on every object the
// informers receive, before it is cached: at 150,000 pods the bytes kept per
// pod decide whether the exporter fits in a small container. It returns a
// new object (the informer may hand the same object to other consumers in
// later client-go versions) and is idempotent, as client-go requires.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &corev1.Pod{
			ObjectMeta: trimMeta(&o.ObjectMeta, false),
			Spec:       corev1.PodSpec{NodeName: intern(o.Spec.NodeName)},
			Status:     corev1.PodStatus{Conditions: readyConditionOfPod(o.Status.Conditions)},
		}, nil
	case *corev1.Node:
		meta := trimMeta(&o.ObjectMeta, false)
		// Labels stay whole: the maintenance selector may name any label.
		meta.Labels = o.Labels
		return &corev1.Node{
			ObjectMeta: meta,
			Spec:       corev1.NodeSpec{Unschedulable: o.Spec.Unschedulable, Taints: schedulingTaints(o.Spec.Taints)},
			Status:     corev1.NodeStatus{Conditions: readyConditionOfNode(o.Status.Conditions)},
		}, nil
	case *corev1.Service:
		return &corev1.Service{
			ObjectMeta: trimMeta(&o.ObjectMeta, true),
			Spec:       corev1.ServiceSpec{Selector: o.Spec.Selector},
		}, nil
	case *discoveryv1.EndpointSlice:
		meta := trimMeta(&o.ObjectMeta, false)
		if name, ok := o.Labels[discoveryv1.LabelServiceName]; ok {
			meta.Labels = map[string]string{discoveryv1.LabelServiceName: name}
		}
		endpoints := make([]discoveryv1.Endpoint, len(o.Endpoints))
		for i, ep := range o.Endpoints {
			endpoints[i] = discoveryv1.Endpoint{Conditions: ep.Conditions, NodeName: ep.NodeName}
			if ep.TargetRef != nil {
				endpoints[i].TargetRef = &corev1.ObjectReference{Kind: ep.TargetRef.Kind, Name: ep.TargetRef.Name}
			} else if len(ep.Addresses) > 0 {
				endpoints[i].Addresses = []string{ep.Addresses[0]}
			}
		}
		return &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: o.AddressType, Endpoints: endpoints}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: trimMeta(&o.ObjectMeta, true), Spec: appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: trimMeta(&o.ObjectMeta, true), Spec: appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: trimMeta(&o.ObjectMeta, true), Spec: appsv1.ReplicaSetSpec{Replicas: o.Spec.Replicas}}, nil
	case *corev1.ReplicationController:
		return &corev1.ReplicationController{ObjectMeta: trimMeta(&o.ObjectMeta, true), Spec: corev1.ReplicationControllerSpec{Replicas: o.Spec.Replicas}}, nil
	}
	// Tombstones and anything unexpected pass unchanged.
	return obj, nil
}

// trimMeta keeps the identity, deletion mark and controller reference of an
// object and, for services and workloads, the min-nodes annotation.
func trimMeta(meta *metav1.ObjectMeta, keepMinNodes bool) metav1.ObjectMeta {
	trimmed := metav1.ObjectMeta{
		Name:              meta.Name,
		Namespace:         intern(meta.Namespace),
		ResourceVersion:   meta.ResourceVersion,
		DeletionTimestamp: meta.DeletionTimestamp,
	}
	if owner := metav1.GetControllerOfNoCopy(meta); owner != nil {
		trimmed.OwnerReferences = []metav1.OwnerReference{{Kind: intern(owner.Kind), Name: intern(owner.Name), Controller: &isController}}
	}
	if value, ok := meta.Annotations[spread.MinNodesAnnotation]; keepMinNodes && ok {
		trimmed.Annotations = map[string]string{spread.MinNodesAnnotation: value}
	}
	return trimmed
}

// readyConditionOfPod returns a shared slice for the usual statuses: at
// 150,000 pods a slice of one PodCondition each would cost 128 bytes per
// pod. Cached objects are never modified, so sharing is safe.
func readyConditionOfPod(conditions []corev1.PodCondition) []corev1.PodCondition {
	for _, c := range conditions {
		if c.Type == corev1.PodReady {
			switch c.Status {
			case corev1.ConditionTrue:
				return podReadyTrue
			case corev1.ConditionFalse:
				return podReadyFalse
			}
			return []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return nil
}

var (
	podReadyTrue  = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	podReadyFalse = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	// isController is the one Controller flag every trimmed owner
	// reference points to.
	isController = true
)

// intern returns the canonical copy of a string that repeats across cached
// objects (namespaces, node names, owner kinds and names): the decoder
// gives every object its own copy. The standard library's unique package
// frees canonical copies no object uses any more, so node and ReplicaSet
// churn cannot grow it.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

func readyConditionOfNode(conditions []corev1.NodeCondition) []corev1.NodeCondition {
	for _, c := range conditions {
		if c.Type == corev1.NodeReady {
			return []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return nil
}

// schedulingTaints keeps the taints that can take a node out of service;
// PreferNoSchedule does not keep pods away.
func schedulingTaints(taints []corev1.Taint) []corev1.Taint {
	var kept []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			kept = append(kept, corev1.Taint{Key: t.Key, Effect: t.Effect})
		}
	}
	return kept
}
