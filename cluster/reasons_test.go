package cluster

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// TestUnschedulableReasonsJudgesAsTheSnapshot: the admission webhook judges
// a Node object the caches have not seen; it must find the reasons the
// snapshot finds once the object is cached, or the webhook and the metrics
// would disagree about what takes a node out of service.
func TestUnschedulableReasonsJudgesAsTheSnapshot(t *testing.T) {
	selector, err := labels.Parse("maintenance=batch-3")
	if err != nil {
		t.Fatal(err)
	}
	config := Config{
		MaintenanceTaints:   append([]string{"example.org/reimage"}, DefaultMaintenanceTaints...),
		MaintenanceSelector: selector,
	}
	tests := []struct {
		node *corev1.Node
		want []spread.Reason
	}{
		{node("ready"), nil},
		{node("cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }), []spread.Reason{spread.ReasonCordoned}},
		{node("notready", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }), []spread.Reason{spread.ReasonNotReady}},
		{node("nocondition", func(n *corev1.Node) { n.Status.Conditions = nil }), []spread.Reason{spread.ReasonNotReady}},
		{node("tainted", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "example.org/reimage", Effect: corev1.TaintEffectNoSchedule}}
		}), []spread.Reason{spread.ReasonMaintenanceTaint}},
		{node("outofservice", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/out-of-service", Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}}
		}), []spread.Reason{spread.ReasonMaintenanceTaint}},
		{node("prefer", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "example.org/reimage", Effect: corev1.TaintEffectPreferNoSchedule},
				{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule},
			}
		}), nil},
		{node("planned", func(n *corev1.Node) { n.Labels["maintenance"] = "batch-3" }), []spread.Reason{spread.ReasonMaintenanceLabel}},
		{node("otherbatch", func(n *corev1.Node) { n.Labels["maintenance"] = "batch-4" }), nil},
		{node("deleting", func(n *corev1.Node) {
			n.DeletionTimestamp = &metav1.Time{Time: time.Unix(1530688000, 0)}
		}), []spread.Reason{spread.ReasonDeleting}},
		{node("everything", func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Status.Conditions = nil
			n.Spec.Taints = []corev1.Taint{{Key: "ToBeDeletedByClusterAutoscaler", Effect: corev1.TaintEffectNoSchedule}}
			n.Labels["maintenance"] = "batch-3"
		}), []spread.Reason{spread.ReasonCordoned, spread.ReasonNotReady, spread.ReasonMaintenanceTaint, spread.ReasonMaintenanceLabel}},
	}
	var objects []runtime.Object
	for _, tc := range tests {
		objects = append(objects, tc.node.DeepCopy())
	}
	w, _ := startWatcher(t, config, objects...)
	snapshot, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		got := w.UnschedulableReasons(tc.node)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: UnschedulableReasons = %v, want %v", tc.node.Name, got, tc.want)
		}
		if cached := snapshot.Nodes[tc.node.Name].Unschedulable; !slices.Equal(got, cached) {
			t.Errorf("%s: UnschedulableReasons = %v, the snapshot of the cached node %v", tc.node.Name, got, cached)
		}
	}
}
