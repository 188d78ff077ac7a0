package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// benchmarkSizes are the pod counts of the benchmarks: 30 pods per node
// and 10 per service, up to the Kubernetes limit of 150,000 pods.
var benchmarkSizes = []int{1_000, 10_000, 150_000}

// countingWriter counts the bytes and the samples (lines not starting with
// '#') written to it.
type countingWriter struct {
	bytes, samples int64
	midLine        bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	for _, b := range p {
		if !w.midLine && b != '#' {
			w.samples++
		}
		w.midLine = b != '\n'
	}
	return len(p), nil
}

// everyScrapeChanged is a watcher whose caches seem to change between any
// two scrapes, as in a busy cluster: every scrape analyses again.
type everyScrapeChanged struct {
	*cluster.Watcher
	generation uint64
}

func (e *everyScrapeChanged) Generation() uint64 { e.generation++; return e.generation }

// BenchmarkScrape is one whole scrape as the /metrics handler serves it,
// uncompressed and, as Prometheus asks for it, gzip-compressed ("-gzip"):
// the exporter's own metrics through the registry and the text exposition
// of the figures. "changed" scrapes after one pod changed (its readiness
// flipped through the clientset, the watcher has seen it; the change
// itself is not timed): the incremental analysis, the default;
// "changed-full" the same with --collector.analysis=full, the whole
// cluster snapshotted and analysed again; "unchanged" scrapes a cluster
// that did not change (the analysis is reused); "maintenance" one with
// maintenanceNodes nodes cordoned, analysed again at every scrape as if it
// changed: the scrape then places their pods on the others, from a whole
// snapshot. The caches hold a synthetic cluster fed through a fake
// clientset.
func BenchmarkScrape(b *testing.B) {
	for _, pods := range benchmarkSizes {
		objs, podObjs := syntheticObjects(pods)
		client := fake.NewSimpleClientset(objs...)
		w, err := cluster.New(client, cluster.Config{TopologyKeys: []string{synth.ZoneKey}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.Start(ctx)
		if !w.WaitForSync(ctx) {
			b.Fatal("caches did not sync")
		}
		changes := 0
		for _, variant := range []string{"changed", "changed-full", "unchanged", "maintenance"} {
			var source Source = w
			if variant == "maintenance" {
				source = &everyScrapeChanged{Watcher: w}
			}
			if variant == "maintenance" {
				cordon(ctx, b, client, w, maintenanceNodes)
			}
			for _, compressed := range []bool{false, true} {
				name := fmt.Sprintf("pods=%d/%s", pods, variant)
				if compressed {
					name += "-gzip"
				}
				b.Run(name, func(b *testing.B) {
					c := New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true, FullAnalysis: variant == "changed-full"}, slog.New(slog.DiscardHandler))
					registry := prometheus.NewRegistry()
					registry.MustRegister(c)
					handler := NewHandler(registry, c, slog.New(slog.DiscardHandler))
					format := expfmt.NewFormat(expfmt.TypeTextPlain)
					write := handler.Write
					if compressed {
						write = handler.writeGzip
					}

					// A new collector analyses (and compresses) at its first
					// scrape; without this one, "unchanged" at a few
					// iterations would count it too.
					if err := write(io.Discard, format); err != nil {
						b.Fatal(err)
					}
					var out *countingWriter
					b.ReportAllocs()
					for b.Loop() {
						if strings.HasPrefix(variant, "changed") {
							b.StopTimer()
							changePod(ctx, b, client, w, podObjs[changes%len(podObjs)], changes)
							changes++
							b.StartTimer()
						}
						out = &countingWriter{}
						if err := write(out, format); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(out.bytes), "response-bytes")
					if !compressed {
						b.ReportMetric(float64(out.samples), "series")
					}
				})
			}
		}
		cancel()
	}
}

// syntheticObjects generates a synthetic cluster of the given pod count:
// every object, for a fake clientset, and its pods, to change them.
func syntheticObjects(pods int) ([]runtime.Object, []*corev1.Pod) {
	var objs []runtime.Object
	var podObjs []*corev1.Pod
	for _, obj := range synth.Generate(synth.ForPods(pods)).Objects() {
		objs = append(objs, obj.(runtime.Object))
		if pod, ok := obj.(*corev1.Pod); ok {
			podObjs = append(podObjs, pod)
		}
	}
	return objs, podObjs
}

// changePod flips the readiness of a pod through the clientset and waits
// until the watcher has seen the change.
func changePod(ctx context.Context, b *testing.B, client *fake.Clientset, w *cluster.Watcher, pod *corev1.Pod, n int) {
	b.Helper()
	pod = pod.DeepCopy()
	pod.ResourceVersion = fmt.Sprint(1_000_000 + n)
	ready := corev1.ConditionFalse
	if n/len(pod.Name)%2 == 1 { // back to ready, now and then
		ready = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
	before := w.Generation()
	if _, err := client.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		b.Fatalf("change a pod: %v", err)
	}
	for deadline := time.Now().Add(time.Minute); w.Generation() == before; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			b.Fatal("the watcher did not see a pod change within a minute")
		}
	}
}

// maintenanceNodes is how many nodes the maintenance scrapes find
// cordoned: a batch as a maintenance window takes down.
const maintenanceNodes = 10

// cordon cordons the first nodes of the synthetic cluster and waits until
// the caches have them cordoned.
func cordon(ctx context.Context, b *testing.B, client *fake.Clientset, w *cluster.Watcher, nodes int) {
	b.Helper()
	for i := range nodes {
		node, err := client.CoreV1().Nodes().Get(ctx, synth.NodeName(i), metav1.GetOptions{})
		if err != nil {
			b.Fatalf("cordon: %v", err)
		}
		node.Spec.Unschedulable = true
		if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			b.Fatalf("cordon: %v", err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c, err := w.SnapshotForScrape()
		if err != nil {
			b.Fatal(err)
		}
		cordoned := 0
		for _, n := range c.Nodes {
			if !n.Schedulable() {
				cordoned++
			}
		}
		if cordoned == nodes {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("the caches did not see %d nodes cordoned within a minute", nodes)
}

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkAPIService is what one check of one service costs the exporter
// through the JSON API once the analysis is done: the request a
// per-service Icinga check sends, at each size, exact names and a regular
// expression that has to scan every service.
func BenchmarkAPIService(b *testing.B) {
	for _, pods := range benchmarkSizes {
		generated := synth.Generate(synth.ForPods(pods))
		var objs []runtime.Object
		for _, obj := range generated.Objects() {
			objs = append(objs, obj.(runtime.Object))
		}
		w, err := cluster.New(fake.NewSimpleClientset(objs...), cluster.Config{TopologyKeys: []string{synth.ZoneKey}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.Start(ctx)
		if !w.WaitForSync(ctx) {
			b.Fatal("caches did not sync")
		}
		c := New(w, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
		api := NewAPI(c, time.Now(), slog.New(slog.DiscardHandler))
		svc := generated.Services[0]
		name := svc.Deployment.Name
		for query, target := range map[string]string{
			"exact": fmt.Sprintf("/api/v1/services?namespace=%s&kind=Deployment&name=%s", svc.Namespace, name),
			"regex": fmt.Sprintf("/api/v1/services?namespace=%s&kind=Deployment&name=%s$", svc.Namespace, strings.TrimSuffix(name, name[len(name)-1:])+".?"+name[len(name)-1:]),
		} {
			b.Run(fmt.Sprintf("pods=%d/%s", pods, query), func(b *testing.B) {
				request := httptest.NewRequest("GET", target, nil)
				// The first request pays for the analysis, shared with /metrics.
				api.ServeHTTP(httptest.NewRecorder(), request)
				b.ReportAllocs()
				for b.Loop() {
					recorder := httptest.NewRecorder()
					api.ServeHTTP(recorder, request)
					if recorder.Code != 200 || !strings.Contains(recorder.Body.String(), `"name":"`+name+`"`) {
						b.Fatalf("status %d: %.300s", recorder.Code, recorder.Body)
					}
				}
			})
		}
		cancel()
	}
}
