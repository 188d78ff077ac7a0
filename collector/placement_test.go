package collector

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// mathoidMaintenance is day two of the 2018 incident with room to judge,
// as a real Watcher snapshots it for a scrape: kubernetes2001 and 2002
// are cordoned and hold mathoid's four replicas (3 CPUs each); 2003 and
// 2004 have 4 CPUs each, 2003 already runs the queue (2 x 500m) and holds
// mathoid's image, 2004 is pristine. Two replicas fit (one on each), two
// do not, and one node is warm. The renderer on 2001 wants to run next to
// another service (required pod affinity), which the model does not
// judge.
func mathoidMaintenance(t *testing.T) *spread.Cluster {
	t.Helper()
	node := func(name, zone string, cordoned bool, images ...string) *corev1.Node {
		n := testNode(name)
		n.Labels["topology.kubernetes.io/zone"] = zone
		n.Labels["kubernetes.io/hostname"] = name
		n.Spec.Unschedulable = cordoned
		n.Status.Allocatable = corev1.ResourceList{
			corev1.ResourceCPU: apiresource.MustParse("4"), corev1.ResourceMemory: apiresource.MustParse("16Gi"), corev1.ResourcePods: apiresource.MustParse("110"),
		}
		for _, image := range images {
			n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: []string{image}, SizeBytes: 300 << 20})
		}
		return n
	}
	pod := func(namespace, ownerKind, owner, name, node, cpu, image string) *corev1.Pod {
		p := testPod(namespace, owner, 0, node, true)
		p.Name = name
		p.UID = types.UID("uid-" + name)
		p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = ownerKind, owner
		p.Labels = map[string]string{"app": owner}
		p.Spec.Containers = []corev1.Container{{Name: "app", Image: image, Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse(cpu)},
		}}}
		p.Status.Phase = corev1.PodRunning
		return p
	}
	deployment := func(namespace, name string, replicas int32) []runtime.Object {
		return []runtime.Object{
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + name)}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}},
			&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-1", OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)},
			}}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)}},
		}
	}

	objects := []runtime.Object{
		node("kubernetes2001", "row-a", true), node("kubernetes2002", "row-b", true),
		node("kubernetes2003", "row-c", false, "wikimedia/mathoid:2018", "wikimedia/queue:1"),
		node("kubernetes2004", "row-d", false),
		testStatefulSet("batch", "queue", 2),
		pod("batch", "StatefulSet", "queue", "queue-0", "kubernetes2003", "500m", "wikimedia/queue:1"),
		pod("batch", "StatefulSet", "queue", "queue-1", "kubernetes2003", "500m", "wikimedia/queue:1"),
	}
	objects = append(objects, deployment("mathoid", "mathoid", 4)...)
	objects = append(objects, deployment("batch", "renderer", 1)...)
	renderer := pod("batch", "ReplicaSet", "renderer-1", "renderer-1-a", "kubernetes2001", "100m", "wikimedia/renderer:1")
	renderer.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "queue"}}, TopologyKey: "kubernetes.io/hostname",
	}}}}
	objects = append(objects, renderer)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "mathoid", Name: "mathoid-x7k2p", Labels: map[string]string{discoveryv1.LabelServiceName: "mathoid"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, node := range []string{"kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002"} {
		name := fmt.Sprintf("mathoid-1-%d", i)
		objects = append(objects, pod("mathoid", "ReplicaSet", "mathoid-1", name, node, "3", "wikimedia/mathoid:2018"))
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.0.0.%d", i+1)}, NodeName: ptr.To(node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "mathoid", Name: name},
		})
	}
	objects = append(objects, slice, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "mathoid", Name: "mathoid"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "mathoid-1"}},
	})

	w := startWatcher(t, fake.NewClientset(objects...))
	c, err := w.SnapshotForScrape()
	if err != nil {
		t.Fatal(err)
	}
	if c.Placement == nil {
		t.Fatal("no placement input with pods on cordoned nodes")
	}
	return c
}

// TestFinishedPodsOnACordonedNodeAreNotDisplaced: a cordoned node that
// holds only a finished pod (evicted, Failed) of a service displaces
// nothing: the watcher builds no placement input for it, and the service
// is judged all the same, 0 unplaceable as documented, not left without a
// sample as one the model cannot judge. Both analyses.
func TestFinishedPodsOnACordonedNodeAreNotDisplaced(t *testing.T) {
	cordoned := testNode("n1")
	cordoned.Spec.Unschedulable = true
	evicted := testPod("ns", "db", 0, "n1", false)
	evicted.Status.Phase = corev1.PodFailed
	evicted.Status.Reason = "Evicted"
	objects := []runtime.Object{
		cordoned, testNode("n2"), testNode("n3"), testStatefulSet("ns", "db", 3), evicted,
		testPod("ns", "db", 1, "n2", true), testPod("ns", "db", 2, "n3", true), testPod("ns", "db", 3, "n3", true),
	}
	exposesInBothAnalyses(t, objects, `kube_spread_replicas_unplaceable{kind="StatefulSet",name="db",namespace="ns"} 0`)
}

// exposesInBothAnalyses checks that a collector of a watcher of objects,
// with the defaults, exposes every line of want, with the full and with
// the incremental analysis.
func exposesInBothAnalyses(t *testing.T, objects []runtime.Object, want ...string) {
	t.Helper()
	for _, full := range []bool{true, false} {
		w := startWatcher(t, fake.NewClientset(objects...))
		c := New(w, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true, NodeReplicasAtRisk: true, FullAnalysis: full}, slog.New(slog.DiscardHandler))
		out := string(expose(t, c))
		for _, line := range want {
			if !strings.Contains(out, line+"\n") {
				t.Errorf("full analysis %v: no %s in:\n%s", full, line, out)
			}
		}
	}
}

// TestNoRoomIsAtRisk: a service whose displaced replica finds no room
// pages (KubeSpreadMaintenanceNoRoom) even when that replica is not ready
// and the ready ones are spread well; it is at risk, so its per-node
// series, which the runbook asks for, are published. Both analyses.
func TestNoRoomIsAtRisk(t *testing.T) {
	node := func(name string, cordoned bool) *corev1.Node {
		n := testNode(name)
		n.Spec.Unschedulable = cordoned
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("4"), corev1.ResourceMemory: apiresource.MustParse("16Gi"), corev1.ResourcePods: apiresource.MustParse("110")}
		return n
	}
	pod := func(i int, node string, ready bool, cpu string) *corev1.Pod {
		p := testPod("ns", "db", i, node, ready)
		p.Status.Phase = corev1.PodRunning
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: "img", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse(cpu)}}}}
		return p
	}
	// The not-ready pod on the cordoned n1 asks for 3.5 CPUs; n2 to n4
	// have 3 left each.
	objects := []runtime.Object{node("n1", true), node("n2", false), node("n3", false), node("n4", false), testStatefulSet("ns", "db", 4),
		pod(0, "n1", false, "3500m"), pod(1, "n2", true, "1"), pod(2, "n3", true, "1"), pod(3, "n4", true, "1")}
	exposesInBothAnalyses(t, objects,
		`kube_spread_replicas_unplaceable{kind="StatefulSet",name="db",namespace="ns"} 1`,
		`kube_spread_node_replicas{kind="StatefulSet",name="db",namespace="ns",node="n2"} 1`,
		`kube_spread_node_replicas{kind="StatefulSet",name="db",namespace="ns",node="n4"} 1`)
}
