package collector

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// startWatcher runs a real Watcher on a fake clientset and returns it once
// its caches have synced.
func startWatcher(t *testing.T, client *fake.Clientset) *cluster.Watcher {
	t.Helper()
	w, err := cluster.New(client, cluster.Config{
		TopologyKeys:      []string{"topology.kubernetes.io/zone"},
		MaintenanceTaints: cluster.DefaultMaintenanceTaints,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.Start(ctx)
	syncCtx, done := context.WithTimeout(ctx, 30*time.Second)
	defer done()
	if !w.WaitForSync(syncCtx) {
		t.Fatal("caches did not sync")
	}
	return w
}

func testNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": name}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

func testStatefulSet(namespace, name string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: appsv1.StatefulSetSpec{Replicas: &replicas}}
}

func testPod(namespace, owner string, index int, node string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("%s-%d", owner, index), OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "StatefulSet", Name: owner, UID: "u", Controller: ptr.To(true)},
		}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

// TestConcurrentScrapesDuringUpdates scrapes and asks what-if questions
// from many goroutines while the informers apply a burst of pod and node
// updates. Run under -race (make test does). Every scrape must be
// internally consistent: per service, schedulable replicas never exceed
// ready ones, the per-node replicas add up to the ready replicas, and the
// node count matches the nodes listed.
func TestConcurrentScrapesDuringUpdates(t *testing.T) {
	const services, replicas, nodes = 20, 6, 4
	client := fake.NewClientset()
	ctx := context.Background()
	for n := range nodes {
		if _, err := client.CoreV1().Nodes().Create(ctx, testNode(fmt.Sprintf("node-%d", n)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for s := range services {
		name := fmt.Sprintf("svc-%d", s)
		if _, err := client.AppsV1().StatefulSets("ns").Create(ctx, testStatefulSet("ns", name, replicas), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for r := range replicas {
			if _, err := client.CoreV1().Pods("ns").Create(ctx, testPod("ns", name, r, fmt.Sprintf("node-%d", r%nodes), true), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := client.AppsV1().StatefulSets("ns").Create(ctx, testStatefulSet("ns", "marker", 0), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w := startWatcher(t, client)
	c := New(w, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	registry := prometheus.NewRegistry()
	registry.MustRegister(c)
	// Scrapes go through the /metrics handler over HTTP; Go's client asks
	// for gzip, so the pooled gzip writers are shared by the scrapers.
	server := httptest.NewServer(NewHandler(registry, c, slog.New(slog.DiscardHandler)))
	defer server.Close()

	// The fake clientset's watch channels hold 100 events and panic when
	// full; a real API server has no such limit. Every 40 updates the
	// writer adds a marker pod and waits until the cache has it: the
	// pods watch is in order, so everything before it was applied too.
	markers := 0
	drainPods := func() error {
		if _, err := client.CoreV1().Pods("ns").Create(ctx, testPod("ns", "marker", markers, "node-0", true), metav1.CreateOptions{}); err != nil {
			return err
		}
		markers++
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			snapshot, err := w.Snapshot()
			if err != nil {
				return err
			}
			for _, svc := range snapshot.Services {
				if svc.Name == "marker" && len(svc.Replicas) == markers {
					return nil
				}
			}
			time.Sleep(time.Millisecond)
		}
		return fmt.Errorf("marker pod %d not cached within 10s", markers)
	}

	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Add(1)
	go func() {
		defer writers.Done()
		// A burst of updates: pods flip readiness and move between nodes,
		// nodes are cordoned and uncordoned.
		for i := 0; i < 600; i++ {
			s, r := i%services, (i/services)%replicas
			pod := testPod("ns", fmt.Sprintf("svc-%d", s), r, fmt.Sprintf("node-%d", (r+i)%nodes), i%3 != 0)
			if _, err := client.CoreV1().Pods("ns").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
				return
			}
			if i%40 == 39 {
				if err := drainPods(); err != nil {
					t.Error(err)
					return
				}
			}
			if i%50 == 0 {
				node := testNode(fmt.Sprintf("node-%d", i%nodes))
				node.Spec.Unschedulable = i%100 == 0
				if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()

	var readers sync.WaitGroup
	var mu sync.Mutex
	scrapes := 0
	for g := 0; g < 8; g++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				families, err := scrapeOverHTTP(server.URL)
				if err != nil {
					t.Errorf("scrape: %v", err)
					return
				}
				if err := checkConsistent(families); err != nil {
					t.Error(err)
					return
				}
				snapshot, err := w.Snapshot()
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := whatif.Ask(snapshot, []string{"node-0", "node-1"}, spread.Options{DefaultMinNodes: 2}); err != nil {
					t.Errorf("what-if: %v", err)
					return
				}
				mu.Lock()
				scrapes++
				mu.Unlock()
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if scrapes == 0 {
		t.Fatal("no scrape completed")
	}
	t.Logf("%d consistent scrapes and what-if answers during 600 updates", scrapes)
}

// scrapeOverHTTP fetches and parses one exposition.
func scrapeOverHTTP(url string) ([]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Uncompressed {
		return nil, fmt.Errorf("status %s, gzip-compressed %t", resp.Status, resp.Uncompressed)
	}
	parsed, err := parseExposition(resp.Body)
	if err != nil {
		return nil, err
	}
	return slices.Collect(maps.Values(parsed)), nil
}

// checkConsistent checks the invariants of one scrape.
func checkConsistent(families []*dto.MetricFamily) error { return checkInvariants(families, true) }

// checkInvariants checks the invariants of one scrape; everyReplicaOnANode
// says every ready replica is on a node the cluster has, so that the
// per-node replicas add up to the ready ones rather than to at most them.
func checkInvariants(families []*dto.MetricFamily, everyReplicaOnANode bool) error {
	type figures struct{ ready, schedulable, nodes, nodeReplicaSum, nodeSeries float64 }
	perService := map[string]*figures{}
	get := func(m *dto.Metric) *figures {
		var key []string
		for _, l := range m.GetLabel() {
			if l.GetName() == "namespace" || l.GetName() == "kind" || l.GetName() == "name" {
				key = append(key, l.GetValue())
			}
		}
		k := strings.Join(key, "/")
		if perService[k] == nil {
			perService[k] = &figures{}
		}
		return perService[k]
	}
	for _, family := range families {
		for _, m := range family.GetMetric() {
			v := m.GetGauge().GetValue()
			switch family.GetName() {
			case "kube_spread_replicas_ready":
				get(m).ready = v
			case "kube_spread_replicas_schedulable":
				get(m).schedulable = v
			case "kube_spread_nodes":
				get(m).nodes = v
			case "kube_spread_node_replicas":
				f := get(m)
				f.nodeReplicaSum += v
				f.nodeSeries++
			}
		}
	}
	for name, f := range perService {
		sum := f.nodeReplicaSum == f.ready || !everyReplicaOnANode && f.nodeReplicaSum < f.ready
		if f.schedulable > f.ready || !sum || f.nodeSeries != f.nodes {
			return fmt.Errorf("inconsistent scrape for %s: %+v", name, *f)
		}
	}
	return nil
}

// TestSeriesFollowDeletions creates and deletes many services and nodes
// and checks that the series count returns to where it was: no label set
// outlives its object.
func TestSeriesFollowDeletions(t *testing.T) {
	client := fake.NewClientset(testNode("keep"))
	w := startWatcher(t, client)
	c := New(w, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	baseline := objectSeries(t, c)

	// Each service (one ready replica on a node of its own) has 11
	// series, its node one. The fake clientset's watch channels hold 100
	// events and panic when full, so the test works in batches of 40 and
	// waits for each to reach the cache.
	const n, batch, perService = 200, 40, 12
	for start := 0; start < n; start += batch {
		for i := start; i < start+batch; i++ {
			name := fmt.Sprintf("churn-%d", i)
			if _, err := client.AppsV1().StatefulSets("ns").Create(ctx, testStatefulSet("ns", name, 1), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := client.CoreV1().Pods("ns").Create(ctx, testPod("ns", name, 0, "node-"+name, true), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := client.CoreV1().Nodes().Create(ctx, testNode("node-"+name), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		want := baseline + (start+batch)*perService
		waitForCount(t, c, func(count int) bool { return count == want }, fmt.Sprintf("%d series after %d services", want, start+batch))
	}
	grown := objectSeries(t, c)

	for start := 0; start < n; start += batch {
		for i := start; i < start+batch; i++ {
			name := fmt.Sprintf("churn-%d", i)
			if err := client.AppsV1().StatefulSets("ns").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := client.CoreV1().Pods("ns").Delete(ctx, name+"-0", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := client.CoreV1().Nodes().Delete(ctx, "node-"+name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		want := baseline + (n-start-batch)*perService
		waitForCount(t, c, func(count int) bool { return count == want }, fmt.Sprintf("%d series after deleting %d services", want, start+batch))
	}
	t.Logf("series: %d before, %d with 200 services and nodes, %d after deleting them", baseline, grown, baseline)
}

// objectSeries counts the series about services and nodes: the self
// metrics have one series per watched resource, whatever the churn.
func objectSeries(t *testing.T, c *Collector) int {
	t.Helper()
	count := 0
	for _, family := range gather(t, c) {
		for _, m := range family.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" || l.GetName() == "node" {
					count++
					break
				}
			}
		}
	}
	return count
}

func waitForCount(t *testing.T, c *Collector, ok func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		count := objectSeries(t, c)
		if ok(count) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d series", what, count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
