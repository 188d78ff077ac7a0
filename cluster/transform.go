package cluster

import (
	"hash/maphash"
	"slices"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// trim is the informers' transform: it turns every object they receive
// into the compact type the cache keeps (objects.go), before it is stored.
// At 150,000 pods the bytes kept per pod decide whether the exporter fits
// in a small container.
//
// What client-go asks of a transform, checked against its code (v0.37):
//   - It must be idempotent. With the watch-list client, the reflector
//     stores the streamed objects in a temporary store that applies the
//     transform, then hands them to the FIFO's Replace, which applies it
//     again: a compact object comes back as it is.
//   - It never modifies the object it is given and returns a new one: the
//     object may be shared with other consumers.
//   - Tombstones: the FIFOs do not transform a cache.DeletedFinalStateUnknown
//     (its object came from the store, so is compact already); should one
//     arrive anyway, its object is trimmed and the tombstone kept, so a
//     delete handler never meets an API struct.
//
// Objects of any other type pass unchanged.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		p := &cachedPod{
			name:            o.Name,
			node:            nodeHandle(o.Spec.NodeName),
			resourceVersion: parseResourceVersion(o.ResourceVersion),
			terminating:     o.DeletionTimestamp != nil,
			finished:        o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed,
		}
		var ownerName string
		p.ownerKind, ownerName = controllerOf(&o.ObjectMeta, kindReplicaSet, kindStatefulSet, kindReplicationController)
		p.owner = nsName(intern(string(makeNSName(o.Namespace, ownerName))))
		p.template = podTemplate(o, p.ownerKind, metav1.GetControllerOfNoCopy(&o.ObjectMeta))
		for _, c := range o.Status.Conditions {
			if c.Type == corev1.PodReady {
				p.ready = c.Status == corev1.ConditionTrue
				break
			}
		}
		return p, nil
	case *appsv1.Deployment:
		return newWorkload(&o.ObjectMeta, o.Spec.Replicas), nil
	case *appsv1.StatefulSet:
		return newWorkload(&o.ObjectMeta, o.Spec.Replicas), nil
	case *appsv1.ReplicaSet:
		return newWorkload(&o.ObjectMeta, o.Spec.Replicas), nil
	case *corev1.ReplicationController:
		return newWorkload(&o.ObjectMeta, o.Spec.Replicas), nil
	case *corev1.Service:
		return &cachedService{
			key:             makeNSName(o.Namespace, o.Name),
			minNodes:        minNodesOf(&o.ObjectMeta),
			resourceVersion: parseResourceVersion(o.ResourceVersion),
			selector:        len(o.Spec.Selector) > 0,
		}, nil
	case *discoveryv1.EndpointSlice:
		return &cachedEndpointSlice{
			key:             makeNSName(o.Namespace, o.Name),
			service:         nsName(intern(string(makeNSName(o.Namespace, o.Labels[discoveryv1.LabelServiceName])))),
			endpoints:       endpoints(o.Endpoints),
			resourceVersion: parseResourceVersion(o.ResourceVersion),
		}, nil
	case *corev1.Node:
		n := nodeScheduling(o)
		n.name = unique.Make(o.Name)
		n.allocatable = resources(o.Status.Allocatable)
		n.images = nodeImages(o.Status.Images)
		n.resourceVersion = parseResourceVersion(o.ResourceVersion)
		return n, nil
	case *policyv1.PodDisruptionBudget:
		return &cachedPDB{
			key:             makeNSName(o.Namespace, o.Name),
			pdb:             pdbInput(o),
			resourceVersion: parseResourceVersion(o.ResourceVersion),
		}, nil
	case cache.DeletedFinalStateUnknown:
		if o.Obj != nil {
			trimmed, err := trim(o.Obj)
			if err != nil {
				return nil, err
			}
			o.Obj = trimmed
		}
		return o, nil
	}
	return obj, nil
}

// nodeScheduling is the part of a cached Node that unschedulableReasons
// reads: labels, taints, spec.unschedulable, the Ready condition and the
// deletion timestamp. trim builds on it, and UnschedulableReasons judges a
// Node object the caches have not seen with it, so both follow one rule.
func nodeScheduling(o *corev1.Node) *cachedNode {
	n := &cachedNode{
		labels:        makeNodeLabels(o.Labels),
		taints:        nodeTaints(o.Spec.Taints),
		unschedulable: o.Spec.Unschedulable,
		deleting:      o.DeletionTimestamp != nil,
	}
	for _, c := range o.Status.Conditions {
		if c.Type == corev1.NodeReady {
			n.ready = c.Status == corev1.ConditionTrue
			break
		}
	}
	return n
}

func newWorkload(meta *metav1.ObjectMeta, replicas *int32) *cachedWorkload {
	w := &cachedWorkload{
		key:             makeNSName(meta.Namespace, meta.Name),
		minNodes:        minNodesOf(meta),
		replicas:        1, // The API server defaults spec.replicas to 1.
		resourceVersion: parseResourceVersion(meta.ResourceVersion),
	}
	if replicas != nil {
		w.replicas = *replicas
	}
	var ownerName string
	if w.ownerKind, ownerName = controllerOf(meta, kindDeployment); ownerName != "" {
		w.owner = nsName(intern(string(makeNSName(meta.Namespace, ownerName))))
	}
	return w
}

// controllerOf returns the kind of an object's controller and, when it is
// one of the named kinds, its name.
func controllerOf(meta *metav1.ObjectMeta, named ...kind) (kind, string) {
	owner := metav1.GetControllerOfNoCopy(meta)
	if owner == nil {
		return kindNone, ""
	}
	k := kindOf(owner.Kind)
	if !slices.Contains(named, k) {
		return k, ""
	}
	return k, owner.Name
}

func minNodesOf(meta *metav1.ObjectMeta) minNodes {
	value, ok := meta.Annotations[spread.MinNodesAnnotation]
	if !ok {
		return minNodes{}
	}
	m := minNodes{raw: new(intern(value))}
	// Invalid values are reported by the event handler and count as
	// absent.
	if n, err := spread.ParseMinNodes(value); err == nil {
		m.value = int32(n)
	}
	return m
}

// endpoints keeps, for each endpoint, its node, readiness and identity.
// An endpoint whose identity an earlier one of the slice has is left out,
// so that the snapshot need not look for duplicates within a slice.
func endpoints(eps []discoveryv1.Endpoint) []cachedEndpoint {
	if len(eps) == 0 {
		return nil
	}
	kept := make([]cachedEndpoint, 0, len(eps))
	var seen map[uint64]struct{}
	if len(eps) > 1 {
		seen = make(map[uint64]struct{}, len(eps))
	}
	for i := range eps {
		ep := &eps[i]
		id := endpointID(ep)
		if id != 0 && seen != nil {
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
		}
		e := cachedEndpoint{bits: id << 1}
		if endpointReady(ep) {
			e.bits |= 1
		}
		if ep.NodeName != nil {
			e.node = unique.Make(*ep.NodeName)
		}
		kept = append(kept, e)
	}
	return slices.Clip(kept)
}

// endpointReady: ready and not terminating. The API says a missing ready
// condition means ready.
func endpointReady(ep *discoveryv1.Endpoint) bool {
	if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
		return false
	}
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

var endpointSeed = maphash.MakeSeed()

// podID is the endpointID of an endpoint whose target is the pod.
// It is computed when a snapshot needs it rather than kept with the pod:
// 8 bytes a pod is what took a cached pod from 64 to 80.
func podID(name string) uint64 {
	// The bytes endpointID hashes for a target reference to the pod.
	var h maphash.Hash
	h.SetSeed(endpointSeed)
	h.WriteString("Pod")
	h.WriteByte('/')
	h.WriteString(name)
	return max(h.Sum64()>>1, 1)
}

// endpointID identifies the pod behind an endpoint across slices: a pod
// appears once per address family in a dual-stack Service, and may briefly
// appear in two slices while the controller moves it. It hashes the target
// reference's kind and name, or else the first address, to 63 bits rather
// than keep the string (8 bytes instead of 16 and a copy of the name): two
// endpoints of a Service with 100,000 of them share a hash with a
// probability of 5 in 10 billion, and a collision undercounts by one
// replica. It returns 0 when nothing identifies the endpoint.
func endpointID(ep *discoveryv1.Endpoint) uint64 {
	var h maphash.Hash
	h.SetSeed(endpointSeed)
	switch {
	case ep.TargetRef != nil:
		h.WriteString(ep.TargetRef.Kind)
		h.WriteByte('/')
		h.WriteString(ep.TargetRef.Name)
	case len(ep.Addresses) > 0:
		h.WriteString(ep.Addresses[0])
	default:
		return 0
	}
	return max(h.Sum64()>>1, 1)
}

// intern returns the canonical copy of a string that repeats across cached
// objects (node names, owners, taint keys): the decoder gives every object
// its own copy. The standard library's unique package frees a canonical
// copy at the first garbage collection after no unique.Handle refers to it
// any more (intern's callers keep the string, not the handle), so its table
// stays small whatever the churn; strings interned between two collections
// share their bytes, which covers the pods of one ReplicaSet in a list,
// where they come one after the other. A cached node holds a handle to its
// name, so the pods on it always share the node's copy.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
