package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

const incrementalPool = "incremental"

// TestIncrementalAnalysisAgreesWithFull runs the exporter twice against the
// real control plane, with its default incremental analysis and with
// --collector.analysis=full, the reference, and makes the changes an
// operator and the controllers make: a Deployment and the Service in front
// of it created, a rollout (two ReplicaSets serving), a cordon and its
// undoing (pods displaced: the analysis is whole), a scale-up, a pod
// deleted and replaced, a node moved to another zone, the Service's
// selector removed, the Deployment deleted. After each, once the full
// exporter shows it, the two must publish the same figures.
func TestIncrementalAnalysisAgreesWithFull(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	flags := []string{"--collector.node-replicas.scope=all", "--namespaces.include=" + incrementalPool}
	incremental := startExporter(t, flags...)
	full := startExporter(t, append(flags, "--collector.analysis=full")...)

	nodes := []string{"incremental-a", "incremental-b", "incremental-c"}
	for i, name := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname":      name,
			"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%2),
			"kube-spread.io/test-pool":    incrementalPool,
		}}}
		mustCreate(t, func() error { _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); return err })
	}
	mustCreate(t, func() error {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: incrementalPool}}, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "web"}
	replicas := int32(3)
	deployments := c.AppsV1().Deployments(incrementalPool)
	web := map[string]string{"namespace": incrementalPool, "kind": "Deployment", "name": "web"}
	webService := map[string]string{"namespace": incrementalPool, "kind": "Service", "name": "web"}
	patch := func(patch string) error {
		_, err := deployments.Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}

	steps := []struct {
		what string
		do   func() error
		// seen says whether the full exporter shows the step done.
		seen func(m map[string]*dto.MetricFamily) error
	}{
		{"a Deployment and its Service", func() error {
			if _, err := c.CoreV1().Services(incrementalPool).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}},
			}, metav1.CreateOptions{}); err != nil {
				return err
			}
			_, err := deployments.Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: appsv1.DeploymentSpec{
					Replicas: &replicas,
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							NodeSelector: map[string]string{"kube-spread.io/test-pool": incrementalPool},
							Containers:   []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}},
						},
					},
				},
			}, metav1.CreateOptions{})
			return err
		}, func(m map[string]*dto.MetricFamily) error {
			return errors.Join(matchAPI(ctx, c, m, web, 3, nil), exporterproc.Expect(m, "kube_spread_replicas_ready", webService, 3))
		}},
		{"a rollout", func() error {
			return patch(`{"spec":{"template":{"metadata":{"annotations":{"rollout":"2"}}}}}`)
		}, func(m map[string]*dto.MetricFamily) error {
			d, err := deployments.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.UpdatedReplicas != 3 || d.Status.Replicas != 3 || d.Status.ReadyReplicas != 3 {
				return fmt.Errorf("rollout not done: %+v", d.Status)
			}
			return matchAPI(ctx, c, m, web, 3, nil)
		}},
		{"a cordon", func() error {
			return patchNodeErr(ctx, c, "incremental-a", `{"spec":{"unschedulable":true}}`)
		}, func(m map[string]*dto.MetricFamily) error {
			return exporterproc.Expect(m, "kube_spread_node_schedulable", map[string]string{"node": "incremental-a"}, 0)
		}},
		{"the cordon undone", func() error {
			return patchNodeErr(ctx, c, "incremental-a", `{"spec":{"unschedulable":false}}`)
		}, func(m map[string]*dto.MetricFamily) error {
			return exporterproc.Expect(m, "kube_spread_node_schedulable", map[string]string{"node": "incremental-a"}, 1)
		}},
		{"a scale-up", func() error { return patch(`{"spec":{"replicas":5}}`) }, func(m map[string]*dto.MetricFamily) error {
			return errors.Join(exporterproc.Expect(m, "kube_spread_replicas_desired", web, 5), matchAPI(ctx, c, m, web, 5, nil))
		}},
		{"a pod deleted and replaced", func() error {
			pods, err := c.CoreV1().Pods(incrementalPool).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(pods.Items) == 0 {
				return fmt.Errorf("list web's pods: %v (%d)", err, len(pods.Items))
			}
			return c.CoreV1().Pods(incrementalPool).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{})
		}, func(m map[string]*dto.MetricFamily) error { return matchAPI(ctx, c, m, web, 5, nil) }},
		{"a node moved to another zone", func() error {
			return patchNodeErr(ctx, c, "incremental-c", `{"metadata":{"labels":{"topology.kubernetes.io/zone":"zone-9"}}}`)
		}, func(m map[string]*dto.MetricFamily) error {
			zones, err := readyZones(ctx, c, "app=web")
			if err != nil {
				return err
			}
			return exporterproc.Expect(m, "kube_spread_topology_domains", map[string]string{"namespace": incrementalPool, "kind": "Deployment", "name": "web", "topology_key": "topology.kubernetes.io/zone"}, float64(len(zones)))
		}},
		{"the Service's selector removed", func() error {
			_, err := c.CoreV1().Services(incrementalPool).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"selector":null}}`), metav1.PatchOptions{})
			return err
		}, func(m map[string]*dto.MetricFamily) error {
			return exporterproc.Absent(m, "kube_spread_replicas_ready", webService)
		}},
		{"the Deployment deleted", func() error { return deployments.Delete(ctx, "web", metav1.DeleteOptions{}) },
			func(m map[string]*dto.MetricFamily) error {
				return exporterproc.Absent(m, "kube_spread_replicas_ready", web)
			}},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		agree(t, step.what, incremental, full, step.seen)
	}
}

// agree scrapes both exporters until the full one passes seen and both
// publish the same figures, failing the test after a minute.
func agree(t *testing.T, what string, incremental, full *exporterproc.Exporter, seen func(map[string]*dto.MetricFamily) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last error
	for {
		want, err := full.Scrape(ctx)
		if err == nil {
			err = seen(want)
		}
		if err == nil {
			var got map[string]*dto.MetricFamily
			if got, err = incremental.Scrape(ctx); err == nil {
				err = sameFigures(figureSamples(got), figureSamples(want))
			}
		}
		if err == nil {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("%s: the incremental and the full analysis did not agree within a minute: %v", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// figureSamples returns the spread figures of a scrape, one entry per
// series: the exporter's own metrics (cache health, build, Go, process)
// differ between two processes.
func figureSamples(families map[string]*dto.MetricFamily) map[string]float64 {
	own := []string{"kube_spread_cache_", "kube_spread_list_watch_", "kube_spread_api_server_up", "kube_spread_build_info", "kube_spread_min_nodes_annotation_errors_total"}
	out := map[string]float64{}
	for name, family := range families {
		if !strings.HasPrefix(name, "kube_spread_") || slices.ContainsFunc(own, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		for _, m := range family.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func sameFigures(got, want map[string]float64) error {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok || g != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: incremental %v (present %t), full %v", k, g, ok, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in the incremental analysis", k))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d series differ, first: %s", len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
	}
	return nil
}

// readyZones returns the zones of the nodes that hold the ready pods the
// selector selects in the test's namespace, as the API server has them.
func readyZones(ctx context.Context, c kubernetes.Interface, selector string) (map[string]bool, error) {
	pods, err := c.CoreV1().Pods(incrementalPool).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	zones := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !isReady(&p) {
			continue
		}
		node, err := c.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		zones[node.Labels["topology.kubernetes.io/zone"]] = true
	}
	return zones, nil
}

func patchNodeErr(ctx context.Context, c kubernetes.Interface, name, patch string) error {
	_, err := c.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}
