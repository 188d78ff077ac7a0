package fidelity

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestKwokKeepsNodeResourcesAndImages pins down what the generated cases
// rely on: the allocatable, capacity and images a test gives a node are
// what the scheduler and the exporter see, after kwok's node-initialize
// stage has made the node Ready and after a node-heartbeat, including
// values changed later through the status subresource.
func TestKwokKeepsNodeResourcesAndImages(t *testing.T) {
	// A heartbeat comes 20 to 45 seconds after the last one: wait for it
	// alongside the cases.
	t.Parallel()
	ctx := context.Background()
	c := client(t)
	resources := func(cpu, memory string, pods int64) corev1.ResourceList {
		return corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpu),
			corev1.ResourceMemory: resource.MustParse(memory),
			corev1.ResourcePods:   *resource.NewQuantity(pods, resource.DecimalSI),
		}
	}
	images := []corev1.ContainerImage{
		{Names: []string{"fidelity.invalid/pause:3.10"}, SizeBytes: 700 << 10},
		{Names: []string{"fidelity.invalid/mathoid@sha256:0123", "fidelity.invalid/mathoid:2018-07-03"}, SizeBytes: 412 << 20},
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "kwok-status-check",
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{hostnameLabel: "kwok-status-check"},
		},
		// No pod of any test tolerates this: the node stays empty.
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "fidelity.kube-spread.io/kwok-check", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:    resources("4", "8Gi", 17),
			Allocatable: resources("3500m", "7Gi", 17),
			Images:      images,
		},
	}
	t.Cleanup(func() {
		if err := DeleteNodes(context.Background(), c, node.Name); err != nil {
			t.Error(err)
		}
	})
	runner := &Runner{Client: c}
	if err := runner.CreateNodes(ctx, []*corev1.Node{node}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want corev1.NodeStatus) *corev1.Node {
		t.Helper()
		got, err := c.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sameResources("capacity", got.Status.Capacity, want.Capacity); err != nil {
			t.Errorf("%s: %v", when, err)
		}
		if err := sameResources("allocatable", got.Status.Allocatable, want.Allocatable); err != nil {
			t.Errorf("%s: %v", when, err)
		}
		if !reflect.DeepEqual(got.Status.Images, want.Images) {
			t.Errorf("%s: images %v, want %v", when, got.Status.Images, want.Images)
		}
		return got
	}
	check("created with its status, once kwok made it Ready", node.Status)

	// As a kubelet reports a pulled image and a changed reservation.
	want := *node.Status.DeepCopy()
	want.Allocatable = resources("3", "6Gi", 17)
	want.Images = append(want.Images, corev1.ContainerImage{Names: []string{"fidelity.invalid/citoid:1"}, SizeBytes: 90 << 20})
	patch := fmt.Appendf(nil, `{"status":{"allocatable":{"cpu":"3","memory":"6Gi"},"images":[{"names":["fidelity.invalid/pause:3.10"],"sizeBytes":%d},{"names":["fidelity.invalid/mathoid@sha256:0123","fidelity.invalid/mathoid:2018-07-03"],"sizeBytes":%d},{"names":["fidelity.invalid/citoid:1"],"sizeBytes":%d}]}}`,
		700<<10, 412<<20, 90<<20)
	if _, err := c.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	before := readyHeartbeat(check("patched through the status subresource", want))

	// The node-heartbeat stage patches the status every 20 to 45 seconds.
	err := poll(ctx, 2*time.Minute, "a kwok heartbeat of "+node.Name, func(ctx context.Context) error {
		got, err := c.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if now := readyHeartbeat(got); now.Equal(&before) {
			return fmt.Errorf("Ready heartbeat still %s", before.Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check("after a kwok heartbeat", want)
}

func readyHeartbeat(node *corev1.Node) metav1.Time {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastHeartbeatTime
		}
	}
	return metav1.Time{}
}

func sameResources(what string, got, want corev1.ResourceList) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s %v, want %v", what, got, want)
	}
	for name, quantity := range want {
		if have, ok := got[name]; !ok || have.Cmp(quantity) != 0 {
			return fmt.Errorf("%s %v, want %v", what, got, want)
		}
	}
	return nil
}
