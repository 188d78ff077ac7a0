package cluster

import (
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// The informers cache these compact types, not the API structs: trim
// (transform.go) converts every object before it is stored. A corev1.Pod is
// 1,280 bytes however much of it is emptied; a cachedPod is 64, and holds
// exactly what Snapshot and the event handler read, a pointer to the
// pod's template (what the placement model needs, shared by the pods of
// one ReplicaSet) included.
//
// client-go needs two things of a cached object, which each type provides
// through readOnlyMeta and its own getters:
//   - its key: the store's key function (cache.MetaNamespaceKeyFunc) takes
//     the namespace and name through meta.Accessor, which accepts a
//     metav1.Object;
//   - its resource version: the shared informer compares the old and new
//     object's to tell an update from a resync, and hands updates whose
//     versions are equal only to handlers that asked for resyncs, which
//     ours did not.
//
// They are runtime.Objects too, which client-go's cache mutation detector
// (KUBE_CACHE_MUTATION_DETECTOR) wants in order to deep-copy them.
//
// Cached objects are never modified: Snapshot only reads them, and the
// transform builds a new one for every object it receives.

// cachedPod is a cached Pod.
type cachedPod struct {
	readOnlyMeta
	// owner is the pod's namespace and, when ownerKind is one whose pods
	// count (ReplicaSet, StatefulSet, ReplicationController), its
	// controller's name: "namespace/name", else "namespace/". Interned, so
	// the pods of one controller share it, and one string header holds
	// both the pod's namespace and what Snapshot looks its service up by.
	owner nsName
	name  string
	// node is spec.nodeName, the zero handle while unscheduled (see
	// nodeName). Half a string header, the canonical copy kept alive by
	// the node's own handle.
	node unique.Handle[string]
	// template is what the placement model needs of the pod, interned
	// (see podTemplate).
	template        *placement.Template
	resourceVersion resourceVersion
	ownerKind       kind
	// ready: the Ready condition is True.
	ready bool
	// terminating: the pod has a deletion timestamp.
	terminating bool
	// finished: the pod Succeeded or Failed, and holds no resources.
	finished bool
}

// nodeName returns the pod's node, "" while unscheduled.
func (p *cachedPod) nodeName() string {
	if p.node == (unique.Handle[string]{}) {
		return ""
	}
	return p.node.Value()
}

// nodeHandle is the handle of a node name, the zero handle for "".
func nodeHandle(name string) unique.Handle[string] {
	if name == "" {
		return unique.Handle[string]{}
	}
	return unique.Make(name)
}

// cachedPDB is a cached PodDisruptionBudget.
type cachedPDB struct {
	readOnlyMeta
	key             nsName
	pdb             placement.PDB
	resourceVersion resourceVersion
}

// cachedWorkload is a cached Deployment, StatefulSet, ReplicaSet or
// ReplicationController.
type cachedWorkload struct {
	readOnlyMeta
	key nsName
	// owner is the controller's namespace and name when ownerKind is
	// Deployment (a ReplicaSet passes its pods on to its Deployment; other
	// owners only matter by kind).
	owner    nsName
	minNodes minNodes
	// replicas is spec.replicas, 1 when unset as the API server defaults it.
	replicas        int32
	resourceVersion resourceVersion
	ownerKind       kind
}

// cachedService is a cached Service.
type cachedService struct {
	readOnlyMeta
	key             nsName
	minNodes        minNodes
	resourceVersion resourceVersion
	// selector: spec.selector is not empty. A Service without one points
	// outside the cluster's scheduling.
	selector bool
}

// cachedEndpointSlice is a cached EndpointSlice.
type cachedEndpointSlice struct {
	readOnlyMeta
	key nsName
	// service is the namespace and the kubernetes.io/service-name label;
	// "namespace/" when the label is missing.
	service         nsName
	endpoints       []cachedEndpoint
	resourceVersion resourceVersion
}

// cachedEndpoint is one endpoint of a slice, 16 bytes.
type cachedEndpoint struct {
	// node is the endpoint's nodeName, the zero handle when unset. A
	// handle is half a string header, and the cached node of that name
	// keeps the canonical copy alive anyway.
	node unique.Handle[string]
	// bits holds in its upper 63 bits a hash of what identifies the pod
	// behind the endpoint across slices (see endpointID), 0 when nothing
	// does, and in its lowest whether the endpoint is ready (see
	// endpointReady): a separate bool would take 8 bytes more.
	bits uint64
}

func (e cachedEndpoint) id() uint64  { return e.bits >> 1 }
func (e cachedEndpoint) ready() bool { return e.bits&1 != 0 }

// nodeName returns the endpoint's node, "" when unset.
func (e cachedEndpoint) nodeName() string {
	if e.node == (unique.Handle[string]{}) {
		return ""
	}
	return e.node.Value()
}

// cachedNode is a cached Node.
type cachedNode struct {
	readOnlyMeta
	// name is the node's name. A handle, unlike the strings intern
	// returns, keeps the canonical copy alive: the pods on the node, which
	// intern its name, and its endpoints, which hold a handle too, share
	// this copy for as long as the node exists.
	name unique.Handle[string]
	// labels are all the node's labels: the maintenance selector and
	// NodesMatching may name any.
	labels nodeLabels
	// taints are all the node's taints, strings interned.
	taints []placement.Taint
	// allocatable is status.allocatable.
	allocatable placement.Resources
	// images are status.images, names normalized and interned.
	images          []*placement.Image
	resourceVersion resourceVersion
	// unschedulable is spec.unschedulable (cordoned).
	unschedulable bool
	// ready: the Ready condition is True.
	ready bool
	// deleting: the node has a deletion timestamp.
	deleting bool
}

// nsName is "namespace/name", the form of the store's keys: one string
// header for both halves. Namespaces cannot contain a slash.
type nsName string

func makeNSName(namespace, name string) nsName { return nsName(namespace + "/" + name) }

func (n nsName) split() (namespace, name string) {
	namespace, name, _ = strings.Cut(string(n), "/")
	return namespace, name
}

func (n nsName) namespace() string { namespace, _ := n.split(); return namespace }
func (n nsName) name() string      { _, name := n.split(); return name }

// nodeLabels are a node's labels sorted by key, a labels.Labels for
// selectors. Each label is a handle to a canonical key and value pair, 8
// bytes: nodes share most of their labels (zone, instance type, pool, os),
// which a map would copy into every node.
type nodeLabels []unique.Handle[label]

type label struct{ key, value string }

func makeNodeLabels(m map[string]string) nodeLabels {
	if len(m) == 0 {
		return nil
	}
	l := make(nodeLabels, 0, len(m))
	for key, value := range m {
		l = append(l, unique.Make(label{key, value}))
	}
	slices.SortFunc(l, func(a, b unique.Handle[label]) int { return strings.Compare(a.Value().key, b.Value().key) })
	return l
}

// Lookup implements labels.Labels.
func (l nodeLabels) Lookup(key string) (string, bool) {
	i, found := slices.BinarySearchFunc(l, key, func(e unique.Handle[label], key string) int {
		return strings.Compare(e.Value().key, key)
	})
	if !found {
		return "", false
	}
	return l[i].Value().value, true
}

// Has implements labels.Labels.
func (l nodeLabels) Has(key string) bool {
	_, found := l.Lookup(key)
	return found
}

// Get implements labels.Labels.
func (l nodeLabels) Get(key string) string {
	value, _ := l.Lookup(key)
	return value
}

// minNodes is the kube-spread.io/min-nodes annotation of a Service or
// workload, parsed once when the object arrives.
type minNodes struct {
	// raw is the annotation's value, nil when absent; the event handler
	// reports an invalid value once per new value.
	raw *string
	// value is the valid value, 0 when absent or invalid (the default
	// then applies).
	value int32
}

// kind is the kind of a controller owner reference, as far as the
// snapshot tells them apart.
type kind uint8

const (
	kindNone  kind = iota // no controller
	kindOther             // a kind the snapshot ignores (DaemonSet, Job...)
	kindDeployment
	// The kinds from here on are those whose pods count.
	kindReplicaSet
	kindStatefulSet
	kindReplicationController
)

func kindOf(s string) kind {
	switch s {
	case "Deployment":
		return kindDeployment
	case "ReplicaSet":
		return kindReplicaSet
	case "StatefulSet":
		return kindStatefulSet
	case "ReplicationController":
		return kindReplicationController
	}
	return kindOther
}

// resourceVersion keeps an object's metadata.resourceVersion in 8 bytes
// rather than a string header and its bytes. Resource versions are opaque
// strings by contract and decimal etcd revisions in practice: a decimal
// one is kept as its value plus one (0 stands for ""), and reads back
// unchanged; anything else is kept as a 64-bit hash with the top bit set.
// Equal versions stay equal and different ones different (but for a hash
// collision), which is what client-go's resync check needs.
type resourceVersion uint64

const hashedVersion = 1 << 63

var versionSeed = maphash.MakeSeed()

func parseResourceVersion(s string) resourceVersion {
	if s == "" {
		return 0
	}
	// At most 62 bits, so that value plus one stays below the hash bit;
	// no leading zero, so that it reads back the same.
	if n, err := strconv.ParseUint(s, 10, 62); err == nil && (s[0] != '0' || s == "0") {
		return resourceVersion(n + 1)
	}
	return resourceVersion(maphash.String(versionSeed, s) | hashedVersion)
}

// String returns the decimal resource version it was parsed from, or a
// stand-in for a hashed one.
func (v resourceVersion) String() string {
	switch {
	case v == 0:
		return ""
	case v&hashedVersion != 0:
		return "hashed:" + strconv.FormatUint(uint64(v&^hashedVersion), 16)
	}
	return strconv.FormatUint(uint64(v-1), 10)
}

// readOnlyMeta implements metav1.Object for the cached types, which keep
// no metadata beyond their namespace, name and resource version: they
// override those getters; every other getter returns the zero value and
// every setter does nothing.
type readOnlyMeta struct{}

var (
	_ metav1.Object  = (*cachedPod)(nil)
	_ metav1.Object  = (*cachedWorkload)(nil)
	_ metav1.Object  = (*cachedService)(nil)
	_ metav1.Object  = (*cachedEndpointSlice)(nil)
	_ metav1.Object  = (*cachedNode)(nil)
	_ metav1.Object  = (*cachedPDB)(nil)
	_ runtime.Object = (*cachedPDB)(nil)
	_ runtime.Object = (*cachedPod)(nil)
	_ runtime.Object = (*cachedWorkload)(nil)
	_ runtime.Object = (*cachedService)(nil)
	_ runtime.Object = (*cachedEndpointSlice)(nil)
	_ runtime.Object = (*cachedNode)(nil)
)

func (readOnlyMeta) GetNamespace() string                          { return "" }
func (readOnlyMeta) SetNamespace(string)                           {}
func (readOnlyMeta) GetName() string                               { return "" }
func (readOnlyMeta) SetName(string)                                {}
func (readOnlyMeta) GetGenerateName() string                       { return "" }
func (readOnlyMeta) SetGenerateName(string)                        {}
func (readOnlyMeta) GetUID() types.UID                             { return "" }
func (readOnlyMeta) SetUID(types.UID)                              {}
func (readOnlyMeta) GetResourceVersion() string                    { return "" }
func (readOnlyMeta) SetResourceVersion(string)                     {}
func (readOnlyMeta) GetGeneration() int64                          { return 0 }
func (readOnlyMeta) SetGeneration(int64)                           {}
func (readOnlyMeta) GetSelfLink() string                           { return "" }
func (readOnlyMeta) SetSelfLink(string)                            {}
func (readOnlyMeta) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (readOnlyMeta) SetCreationTimestamp(metav1.Time)              {}
func (readOnlyMeta) GetDeletionTimestamp() *metav1.Time            { return nil }
func (readOnlyMeta) SetDeletionTimestamp(*metav1.Time)             {}
func (readOnlyMeta) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (readOnlyMeta) SetDeletionGracePeriodSeconds(*int64)          {}
func (readOnlyMeta) GetLabels() map[string]string                  { return nil }
func (readOnlyMeta) SetLabels(map[string]string)                   {}
func (readOnlyMeta) GetAnnotations() map[string]string             { return nil }
func (readOnlyMeta) SetAnnotations(map[string]string)              {}
func (readOnlyMeta) GetFinalizers() []string                       { return nil }
func (readOnlyMeta) SetFinalizers([]string)                        {}
func (readOnlyMeta) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (readOnlyMeta) SetOwnerReferences([]metav1.OwnerReference)    {}
func (readOnlyMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (readOnlyMeta) SetManagedFields([]metav1.ManagedFieldsEntry)  {}
func (readOnlyMeta) GetObjectKind() schema.ObjectKind              { return schema.EmptyObjectKind }

func (p *cachedPod) GetNamespace() string           { return p.owner.namespace() }
func (p *cachedPod) GetName() string                { return p.name }
func (p *cachedPod) GetResourceVersion() string     { return p.resourceVersion.String() }
func (p *cachedPod) DeepCopyObject() runtime.Object { c := *p; return &c }

func (w *cachedWorkload) GetNamespace() string           { return w.key.namespace() }
func (w *cachedWorkload) GetName() string                { return w.key.name() }
func (w *cachedWorkload) GetResourceVersion() string     { return w.resourceVersion.String() }
func (w *cachedWorkload) DeepCopyObject() runtime.Object { c := *w; return &c }

func (s *cachedService) GetNamespace() string           { return s.key.namespace() }
func (s *cachedService) GetName() string                { return s.key.name() }
func (s *cachedService) GetResourceVersion() string     { return s.resourceVersion.String() }
func (s *cachedService) DeepCopyObject() runtime.Object { c := *s; return &c }

func (s *cachedEndpointSlice) GetNamespace() string       { return s.key.namespace() }
func (s *cachedEndpointSlice) GetName() string            { return s.key.name() }
func (s *cachedEndpointSlice) GetResourceVersion() string { return s.resourceVersion.String() }
func (s *cachedEndpointSlice) DeepCopyObject() runtime.Object {
	c := *s
	c.endpoints = slices.Clone(s.endpoints)
	return &c
}

func (b *cachedPDB) GetNamespace() string           { return b.key.namespace() }
func (b *cachedPDB) GetName() string                { return b.key.name() }
func (b *cachedPDB) GetResourceVersion() string     { return b.resourceVersion.String() }
func (b *cachedPDB) DeepCopyObject() runtime.Object { c := *b; return &c }

func (n *cachedNode) GetName() string            { return n.name.Value() }
func (n *cachedNode) GetResourceVersion() string { return n.resourceVersion.String() }
func (n *cachedNode) DeepCopyObject() runtime.Object {
	c := *n
	c.labels, c.taints, c.images = slices.Clone(n.labels), slices.Clone(n.taints), slices.Clone(n.images)
	return &c
}

func (w *cachedWorkload) minNodesAnnotation() (string, bool) { return w.minNodes.annotation() }
func (s *cachedService) minNodesAnnotation() (string, bool)  { return s.minNodes.annotation() }

func (m minNodes) annotation() (string, bool) { return deref(m.raw) }

func deref(s *string) (string, bool) {
	if s == nil {
		return "", false
	}
	return *s, true
}
