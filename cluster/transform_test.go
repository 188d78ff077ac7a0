package cluster

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestTrimKeepsOnlyWhatTheAnalysisReads(t *testing.T) {
	full := pod("ns", "web-1-a", "a", true, append(owned("ReplicaSet", "web-1"),
		metav1.OwnerReference{Kind: "Other", Name: "not-the-controller"}))
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	full.Annotations = map[string]string{"big": "annotation"}
	full.ResourceVersion = "42"
	full.Status.Conditions = append(full.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Message: "long"})
	full.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "registry.invalid/app:1"}}

	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1-a", ResourceVersion: "42",
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1", Controller: ptr.To(true)}}},
		Spec:   corev1.PodSpec{NodeName: "a"},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	got, err := trim(full)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trim(pod) =\n%#v\nwant\n%#v", got, want)
	}
	// client-go requires transforms to be idempotent.
	again, _ := trim(got)
	if !reflect.DeepEqual(again, want) {
		t.Errorf("trim is not idempotent: %#v", again)
	}
}
