package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const followPool = "follow"

// TestExporterFollowsClusterChanges makes each kind of change an operator
// makes before maintenance and checks that it reaches /metrics: cordon,
// maintenance taint, maintenance label, scale, node deletion.
func TestExporterFollowsClusterChanges(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	// Every service's per-node series, at risk or not: the test holds
	// them to the API server's pods.
	e := startExporter(t,
		"--collector.node-replicas.scope=all",
		"--node.maintenance-taint=kube-spread.io/test-reimage",
		"--node.maintenance-selector=maintenance=batch-1",
		"--namespaces.include=follow",
	)
	nodes := []string{"follow-a", "follow-b", "follow-c"}
	for i, name := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname":      name,
			"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%2),
			"kube-spread.io/test-pool":    followPool,
		}}}
		mustCreate(t, func() error { _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); return err })
	}
	mustCreate(t, func() error {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "follow"}}, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "web"}
	replicas := int32(3)
	mustCreate(t, func() error {
		_, err := c.AppsV1().Deployments("follow").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{"kube-spread.io/min-nodes": "3"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{"kube-spread.io/test-pool": followPool},
						Containers:   []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}},
					},
				},
			},
		}, metav1.CreateOptions{})
		return err
	})
	web := map[string]string{"namespace": "follow", "kind": "Deployment", "name": "web"}

	// Where the scheduler put the pods is its business; the exporter must
	// agree with what the API server says.
	eventually(t, e, "three ready replicas, figures matching the API", func(m map[string]*dto.MetricFamily) error {
		return matchAPI(ctx, c, m, web, 3, nil)
	})

	patchNode(t, c, "follow-a", `{"spec":{"unschedulable":true}}`)
	eventually(t, e, "cordon of follow-a", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "follow-a"}, 0),
			expect(m, "kube_spread_node_unschedulable_reason", map[string]string{"node": "follow-a", "reason": "cordoned"}, 1),
			matchAPI(ctx, c, m, web, 3, []string{"follow-a"}),
		)
	})

	patchNode(t, c, "follow-b", `{"spec":{"taints":[{"key":"kube-spread.io/test-reimage","effect":"NoSchedule"}]}}`)
	eventually(t, e, "maintenance taint on follow-b", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			expect(m, "kube_spread_node_unschedulable_reason", map[string]string{"node": "follow-b", "reason": "maintenance_taint"}, 1),
			matchAPI(ctx, c, m, web, 3, []string{"follow-a", "follow-b"}),
		)
	})

	patchNode(t, c, "follow-c", `{"metadata":{"labels":{"maintenance":"batch-1"}}}`)
	eventually(t, e, "maintenance label on follow-c", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			expect(m, "kube_spread_node_unschedulable_reason", map[string]string{"node": "follow-c", "reason": "maintenance_label"}, 1),
			expect(m, "kube_spread_replicas_schedulable", web, 0),
			expect(m, "kube_spread_schedulable_nodes", web, 0),
			expect(m, "kube_spread_min_nodes", web, 3),
		)
	})

	// The label only plans maintenance: the scheduler still uses follow-c,
	// so the new replicas land there.
	if _, err := c.AppsV1().Deployments("follow").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "scale to 5", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			expect(m, "kube_spread_replicas_desired", web, 5),
			matchAPI(ctx, c, m, web, 5, []string{"follow-a", "follow-b", "follow-c"}),
		)
	})

	if err := c.CoreV1().Nodes().Delete(ctx, "follow-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "deletion of follow-a removes its series", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			absent(m, "kube_spread_node_schedulable", map[string]string{"node": "follow-a"}),
			absent(m, "kube_spread_node_unschedulable_reason", map[string]string{"node": "follow-a"}),
			absent(m, "kube_spread_node_replicas", map[string]string{"node": "follow-a"}),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "follow-b"}, 0),
		)
	})
}

// TestReplicasOnADeletedNodeAreOnNoNode deletes a node that holds a ready
// replica. Its pod lingers until the pod garbage collector removes it (40 s
// of quarantine, then a sweep): meanwhile the replica is ready but on no
// node, so the scrape that no longer has the node has no series for it
// and does not count it among the service's nodes.
func TestReplicasOnADeletedNodeAreOnNoNode(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	e := startExporter(t, "--namespaces.include=deleted", "--collector.node-replicas.scope=all")
	const pool = "deleted"
	for _, name := range []string{"deleted-a", "deleted-b"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kube-spread.io/test-pool": pool,
		}}}
		mustCreate(t, func() error { _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); return err })
	}
	mustCreate(t, func() error {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "deleted"}}, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	mustCreate(t, func() error {
		_, err := c.AppsV1().Deployments("deleted").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{"kube-spread.io/test-pool": pool},
						// One replica per node, so deleting one node leaves
						// one replica on a node that exists.
						TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
							MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
						}},
						Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}},
					},
				},
			},
		}, metav1.CreateOptions{})
		return err
	})
	web := map[string]string{"namespace": "deleted", "kind": "Deployment", "name": "web"}
	eventually(t, e, "one ready replica on each node", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			expect(m, "kube_spread_replicas_ready", web, 2),
			expect(m, "kube_spread_node_replicas", map[string]string{"name": "web", "node": "deleted-a"}, 1),
			expect(m, "kube_spread_node_replicas", map[string]string{"name": "web", "node": "deleted-b"}, 1),
		)
	})

	if err := c.CoreV1().Nodes().Delete(ctx, "deleted-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "deletion of deleted-a", func(m map[string]*dto.MetricFamily) error {
		if err := absent(m, "kube_spread_node_schedulable", map[string]string{"node": "deleted-a"}); err != nil {
			return err
		}
		pods, err := c.CoreV1().Pods("deleted").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=deleted-a"})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			t.Fatal("the pod on deleted-a was gone before the exporter saw the node go: nothing left to test")
		}
		// This scrape no longer has the node, and its replica lingers.
		if err := errors.Join(
			absent(m, "kube_spread_node_replicas", map[string]string{"node": "deleted-a"}),
			expect(m, "kube_spread_nodes", web, 1),
			expect(m, "kube_spread_schedulable_nodes", web, 1),
		); err != nil {
			t.Errorf("the scrape without node deleted-a, whose pod lingers: %v", err)
		}
		return nil
	})
}

// matchAPI computes the figures of the workload from the API server's pods
// and compares them with the exporter's: the independent reading of the
// same cluster must agree.
func matchAPI(ctx context.Context, c kubernetes.Interface, m map[string]*dto.MetricFamily, labels map[string]string, wantReady int, unschedulable []string) error {
	pods, err := c.CoreV1().Pods(labels["namespace"]).List(ctx, metav1.ListOptions{LabelSelector: "app=" + labels["name"]})
	if err != nil {
		return err
	}
	perNode := make(map[string]int)
	ready, schedulable := 0, 0
	schedulableNodes := make(map[string]bool)
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !isReady(&p) {
			continue
		}
		ready++
		perNode[p.Spec.NodeName]++
		if !contains(unschedulable, p.Spec.NodeName) {
			schedulable++
			schedulableNodes[p.Spec.NodeName] = true
		}
	}
	if ready != wantReady {
		return fmt.Errorf("API: %d ready pods, waiting for %d", ready, wantReady)
	}
	errs := []error{
		expect(m, "kube_spread_replicas_ready", labels, float64(ready)),
		expect(m, "kube_spread_replicas_schedulable", labels, float64(schedulable)),
		expect(m, "kube_spread_nodes", labels, float64(len(perNode))),
		expect(m, "kube_spread_schedulable_nodes", labels, float64(len(schedulableNodes))),
	}
	for node, count := range perNode {
		errs = append(errs, expect(m, "kube_spread_node_replicas", map[string]string{"namespace": labels["namespace"], "kind": labels["kind"], "name": labels["name"], "node": node}, float64(count)))
	}
	return errors.Join(errs...)
}

func patchNode(t *testing.T, c kubernetes.Interface, name, patch string) {
	t.Helper()
	if _, err := c.CoreV1().Nodes().Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch node %s: %v", name, err)
	}
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
