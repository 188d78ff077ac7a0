package cluster

import (
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
	"unique"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// mustTrim trims an object and checks what client-go relies on: trimming
// again returns the same object (the watch-list client transforms twice),
// the store's key function and the informer's resync check read the
// result, which is a runtime.Object whose deep copy is equal.
func mustTrim(t *testing.T, obj runtime.Object) any {
	t.Helper()
	object, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	wantKey, _ := cache.MetaNamespaceKeyFunc(obj)
	got, err := trim(obj)
	if err != nil {
		t.Fatal(err)
	}
	again, err := trim(got)
	if err != nil || again != got {
		t.Errorf("trim is not idempotent: %#v, %v", again, err)
	}
	if key, err := cache.MetaNamespaceKeyFunc(got); err != nil || key != wantKey {
		t.Errorf("key of the trimmed %T = %q, %v; want %q", got, key, err, wantKey)
	}
	trimmed, err := meta.Accessor(got)
	if err != nil {
		t.Fatalf("meta.Accessor(%T): %v", got, err)
	}
	if rv := trimmed.GetResourceVersion(); rv != object.GetResourceVersion() {
		t.Errorf("resource version of the trimmed %T = %q, want %q", got, rv, object.GetResourceVersion())
	}
	copied := got.(runtime.Object).DeepCopyObject()
	if !reflect.DeepEqual(copied, got) {
		t.Errorf("deep copy differs: %#v", copied)
	}
	return got
}

func TestTrimPod(t *testing.T) {
	full := pod("ns", "web-1-a", "a", true, append(owned("ReplicaSet", "web-1"),
		metav1.OwnerReference{Kind: "Other", Name: "not-the-controller"}))
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	full.Annotations = map[string]string{"big": "annotation"}
	full.ResourceVersion = "42"
	full.Status.Conditions = append([]corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Message: "long"}}, full.Status.Conditions...)
	full.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "registry.invalid/app:1"}}

	terminating := pod("ns", "db-0", "b", false, owned("StatefulSet", "db"))
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Unix(1530688000, 0)}
	rc := pod("ns", "legacy-x", "", true, owned("ReplicationController", "legacy"))
	rc.Status.Conditions = nil

	for _, tc := range []struct {
		pod  *corev1.Pod
		want *cachedPod
	}{
		{full, &cachedPod{owner: "ns/web-1", name: "web-1-a", node: nodeHandle("a"), resourceVersion: 43, ownerKind: kindReplicaSet, ready: true}},
		{terminating, &cachedPod{owner: "ns/db", name: "db-0", node: nodeHandle("b"), ownerKind: kindStatefulSet, terminating: true}},
		{rc, &cachedPod{owner: "ns/legacy", name: "legacy-x", ownerKind: kindReplicationController}},
		// Only the namespace is kept of an owner whose pods do not count.
		{pod("ns", "agent-x", "a", true, owned("DaemonSet", "agent")), &cachedPod{owner: "ns/", name: "agent-x", node: nodeHandle("a"), ownerKind: kindOther, ready: true}},
		{pod("ns", "bare", "a", true, nil), &cachedPod{owner: "ns/", name: "bare", node: nodeHandle("a"), ownerKind: kindNone, ready: true}},
	} {
		got := mustTrim(t, tc.pod).(*cachedPod)
		// The template has tests of its own (placement_test.go); here
		// only that it is there.
		if got.template == nil || got.template.Namespace != "ns" {
			t.Errorf("trim(pod %s): template %+v", tc.pod.Name, got.template)
		}
		trimmed := *got
		trimmed.template = nil
		if !reflect.DeepEqual(&trimmed, tc.want) {
			t.Errorf("trim(pod %s) =\n%#v\nwant\n%#v", tc.pod.Name, &trimmed, tc.want)
		}
	}
	finished := pod("ns", "job-x", "a", false, owned("Job", "job"))
	finished.Status.Phase = corev1.PodSucceeded
	if got := mustTrim(t, finished).(*cachedPod); !got.finished {
		t.Errorf("trim(succeeded pod): finished = false")
	}
}

func TestTrimWorkloads(t *testing.T) {
	annotated := func(value string) map[string]string {
		return map[string]string{spread.MinNodesAnnotation: value, "other": "x"}
	}
	rsOfDeployment := replicaSet("ns", "web-1", 3, owned("Deployment", "web"))
	rsOfDeployment.ResourceVersion = "7"
	unowned := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "legacy"}}
	ownedRC := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "child", OwnerReferences: owned("Something", "parent")},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](0)}}
	for _, tc := range []struct {
		obj  runtime.Object
		want *cachedWorkload
	}{
		{deployment("ns", "web", 3, annotated("3")), &cachedWorkload{key: "ns/web", minNodes: minNodes{raw: ptr.To("3"), value: 3}, replicas: 3}},
		// An invalid value is kept for the event handler to report, and
		// counts as absent.
		{deployment("ns", "bad", 2, annotated("two")), &cachedWorkload{key: "ns/bad", minNodes: minNodes{raw: ptr.To("two")}, replicas: 2}},
		{rsOfDeployment, &cachedWorkload{key: "ns/web-1", owner: "ns/web", replicas: 3, resourceVersion: 8, ownerKind: kindDeployment}},
		{replicaSet("ns", "loose", 2, nil), &cachedWorkload{key: "ns/loose", replicas: 2}},
		{&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "pg"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](5)}},
			&cachedWorkload{key: "db/pg", replicas: 5}},
		// The API server defaults spec.replicas to 1.
		{unowned, &cachedWorkload{key: "ns/legacy", replicas: 1}},
		{ownedRC, &cachedWorkload{key: "ns/child", ownerKind: kindOther}},
	} {
		if got := mustTrim(t, tc.obj); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("trim(%T) =\n%#v\nwant\n%#v", tc.obj, got, tc.want)
		}
	}
}

func TestTrimService(t *testing.T) {
	s := service("ns", "web", map[string]string{"app": "web"})
	s.Annotations = map[string]string{spread.MinNodesAnnotation: "2"}
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	if got, want := mustTrim(t, s), (&cachedService{key: "ns/web", minNodes: minNodes{raw: ptr.To("2"), value: 2}, selector: true}); !reflect.DeepEqual(got, want) {
		t.Errorf("trim(service) =\n%#v\nwant\n%#v", got, want)
	}
	if got, want := mustTrim(t, service("ns", "external", nil)), (&cachedService{key: "ns/external"}); !reflect.DeepEqual(got, want) {
		t.Errorf("trim(service without selector) =\n%#v\nwant\n%#v", got, want)
	}
}

func TestTrimEndpointSlice(t *testing.T) {
	slice := endpointSlice("ns", "web-abc", "web", discoveryv1.AddressTypeIPv4,
		endpoint{pod: "web-1-a", node: "a", ready: true},
		endpoint{pod: "web-1-b", node: "b", ready: true, terminating: true},
		endpoint{pod: "web-1-c"},
		endpoint{pod: "web-1-a", node: "a", ready: true}, // twice in one slice
		endpoint{node: "c", ready: true},                 // no target: identified by its address
	)
	slice.ResourceVersion = "99"
	// No target and no address: nothing identifies it; no condition means ready.
	slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{})
	got := mustTrim(t, slice).(*cachedEndpointSlice)
	if got.key != "ns/web-abc" || got.service != "ns/web" || got.resourceVersion != 100 {
		t.Errorf("trimmed slice: key %q, service %q, resource version %d", got.key, got.service, got.resourceVersion)
	}
	var eps []string
	for _, ep := range got.endpoints {
		eps = append(eps, strings.Join([]string{ep.nodeName(), map[bool]string{true: "ready", false: "unready"}[ep.ready()], map[bool]string{true: "id", false: "no-id"}[ep.id() != 0]}, ":"))
	}
	want := []string{"a:ready:id", "b:unready:id", ":unready:id", "c:ready:id", ":ready:no-id"}
	if !reflect.DeepEqual(eps, want) {
		t.Errorf("endpoints = %v, want %v", eps, want)
	}
	// The same pod has the same identity in another slice (dual-stack).
	other := mustTrim(t, endpointSlice("ns", "web-v6", "web", discoveryv1.AddressTypeIPv6, endpoint{pod: "web-1-a", node: "a"})).(*cachedEndpointSlice)
	if other.endpoints[0].id() != got.endpoints[0].id() || other.endpoints[0].id() == got.endpoints[1].id() {
		t.Errorf("endpoint identities: %x in both slices, %x for another pod", []uint64{got.endpoints[0].id(), other.endpoints[0].id()}, got.endpoints[1].id())
	}

	unlabelled := endpointSlice("ns", "orphan", "", discoveryv1.AddressTypeIPv4)
	unlabelled.Labels = nil
	if got := mustTrim(t, unlabelled).(*cachedEndpointSlice); got.service != "ns/" || got.endpoints != nil {
		t.Errorf("slice without service label: service %q, endpoints %v", got.service, got.endpoints)
	}
}

func TestTrimNode(t *testing.T) {
	n := node("a", func(n *corev1.Node) {
		n.Labels["maintenance"] = "batch-3"
		n.Spec.Unschedulable = true
		n.Spec.Taints = []corev1.Taint{
			{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule},
			{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule},
			{Key: "gone", Effect: corev1.TaintEffectNoExecute},
		}
		n.Status.Conditions = append([]corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}}, n.Status.Conditions...)
		n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.invalid/team/big:1", "registry.invalid/team/big@sha256:1"}, SizeBytes: 1 << 30}}
		n.Status.Allocatable = corev1.ResourceList{
			corev1.ResourceCPU: apiresource.MustParse("3900m"), corev1.ResourceMemory: apiresource.MustParse("15Gi"),
			corev1.ResourceEphemeralStorage: apiresource.MustParse("100G"), corev1.ResourcePods: apiresource.MustParse("110"),
			"example.com/gpu": apiresource.MustParse("2"), "hugepages-2Mi": apiresource.MustParse("0"),
		}
		n.ResourceVersion = "5"
	})
	got := mustTrim(t, n).(*cachedNode)
	want := &cachedNode{
		name: unique.Make("a"),
		labels: nodeLabels{
			unique.Make(label{"maintenance", "batch-3"}),
			unique.Make(label{"topology.kubernetes.io/zone", "zone-a"}),
		},
		taints: []placement.Taint{
			{Key: "node.kubernetes.io/unschedulable", Effect: placement.EffectNoSchedule},
			{Key: "soft", Effect: placement.EffectPreferNoSchedule},
			{Key: "gone", Effect: placement.EffectNoExecute},
		},
		allocatable: placement.Resources{
			MilliCPU: 3900, Memory: 15 << 30, EphemeralStorage: 100_000_000_000, Pods: 110,
			Extended: []placement.Quantity{{Name: "example.com/gpu", Value: 2}},
		},
		images:          []*placement.Image{{Names: []string{"team/big:1", "team/big@sha256:1"}, SizeBytes: 1 << 30}},
		resourceVersion: 6,
		unschedulable:   true,
		ready:           true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trim(node) =\n%#v\nwant\n%#v", got, want)
	}
	for _, tc := range []struct {
		selector string
		want     bool
	}{
		{"maintenance=batch-3", true},
		{"maintenance in (batch-1,batch-3),topology.kubernetes.io/zone", true},
		{"maintenance=batch-1", false},
		{"!maintenance", false},
		{"absent", false},
		{"!absent", true},
	} {
		selector, err := labels.Parse(tc.selector)
		if err != nil {
			t.Fatal(err)
		}
		if matches := selector.Matches(&got.labels); matches != tc.want {
			t.Errorf("%q matches the trimmed node: %v, want %v", tc.selector, matches, tc.want)
		}
	}

	deleting := node("b", func(n *corev1.Node) {
		n.DeletionTimestamp = &metav1.Time{Time: time.Unix(1530688000, 0)}
		n.Status.Conditions[0].Status = corev1.ConditionUnknown
		n.Labels = nil
	})
	if got := mustTrim(t, deleting).(*cachedNode); !got.deleting || got.ready || got.labels != nil {
		t.Errorf("trim(deleting, not ready node) = %#v", got)
	}
}

// TestInternSharesNodeNames: the pods and endpoints on a cached node share
// the bytes of its name, whatever garbage collections happen in between.
func TestInternSharesNodeNames(t *testing.T) {
	n := mustTrim(t, node(strings.Repeat("x", 3)+"-node")).(*cachedNode)
	goruntime.GC()
	goruntime.GC()
	p := mustTrim(t, pod("ns", "p", string([]byte("xxx-node")), true, nil)).(*cachedPod)
	if p.node != n.name || unsafe.StringData(p.nodeName()) != unsafe.StringData(n.name.Value()) {
		t.Error("the pod does not share its node's name")
	}
}

func TestTrimTombstones(t *testing.T) {
	full := pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1"))
	compact := mustTrim(t, full)
	// What the FIFOs build: the store's (compact) object, or nothing.
	for _, tombstone := range []cache.DeletedFinalStateUnknown{
		{Key: "ns/web-1-a", Obj: compact},
		{Key: "ns/web-1-a"},
	} {
		if got, err := trim(tombstone); err != nil || got != tombstone {
			t.Errorf("trim(%#v) = %#v, %v", tombstone, got, err)
		}
	}
	// Should one carry an API object, the object is trimmed.
	got, err := trim(cache.DeletedFinalStateUnknown{Key: "ns/web-1-a", Obj: full})
	if want := (cache.DeletedFinalStateUnknown{Key: "ns/web-1-a", Obj: compact}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("trim(tombstone of an API object) = %#v, %v", got, err)
	}
	// Anything else passes unchanged.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if got, err := trim(cm); err != nil || got != cm {
		t.Errorf("trim(ConfigMap) = %#v, %v", got, err)
	}
}

func TestResourceVersion(t *testing.T) {
	for _, s := range []string{"", "0", "1", "42", "4611686018427387903"} {
		if got := parseResourceVersion(s).String(); got != s {
			t.Errorf("resource version %q reads back as %q", s, got)
		}
	}
	// Anything else is hashed: equal stays equal, different stays different.
	odd := []string{"007", "abc", "4611686018427387904", "18446744073709551616", "+1", "1_0"}
	for i, a := range odd {
		va := parseResourceVersion(a)
		if va&hashedVersion == 0 || va != parseResourceVersion(a) {
			t.Errorf("resource version %q: %x", a, va)
		}
		for _, b := range append(odd[i+1:], "7", "1", "") {
			if va == parseResourceVersion(b) {
				t.Errorf("resource versions %q and %q are equal", a, b)
			}
		}
	}
}

// TestPodID: a pod's identity is the one an endpoint targeting it has.
func TestPodID(t *testing.T) {
	for _, name := range []string{"web-1-a", "db-0", ""} {
		ep := &discoveryv1.Endpoint{TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: name}}
		if podID(name) != endpointID(ep) {
			t.Errorf("podID(%q) = %x, the endpoint's %x", name, podID(name), endpointID(ep))
		}
	}
	if podID("a") == podID("b") {
		t.Error("two pods, one identity")
	}
}

// TestCachedPodSize: a cached pod stays in the 64-byte size class; one
// field more costs 16 bytes at every pod (2.4 MB at 150,000).
func TestCachedPodSize(t *testing.T) {
	if size := unsafe.Sizeof(cachedPod{}); size > 64 {
		t.Errorf("a cachedPod is %d bytes, more than 64", size)
	}
}
