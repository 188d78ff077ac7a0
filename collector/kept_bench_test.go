package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// liveHeap is the heap left after the garbage collector has run; twice,
// so that objects whose cleanups the first collection ran are gone too.
func liveHeap() int64 {
	goruntime.GC()
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkKeptState measures the live heap an exporter keeps, per pod,
// in the parts the scale harness's resident set cannot tell apart
// (docs/benchmarks.md, run M): cache-bytes/pod the synced informer
// caches; kept-bytes/pod what the collector keeps on top of them after
// its first gzip scrape and five scrapes after a pod changed (the last
// analysis and its figures, the incremental analysis's replicas, the
// compressed pieces, the placement input); kept-maintenance-bytes/pod
// the same once maintenanceNodes nodes are cordoned and a scrape placed
// their pods (the placement index too). The loop is a gzip scrape of the
// unchanged cluster.
func BenchmarkKeptState(b *testing.B) {
	for _, pods := range benchmarkSizes {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			objs, podObjs := syntheticObjects(pods)
			client := fake.NewSimpleClientset(objs...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			before := liveHeap()
			w, err := cluster.New(client, cluster.Config{TopologyKeys: []string{synth.ZoneKey}, MaintenanceTaints: cluster.DefaultMaintenanceTaints})
			if err != nil {
				b.Fatal(err)
			}
			w.Start(ctx)
			if !w.WaitForSync(ctx) {
				b.Fatal("caches did not sync")
			}
			synced := liveHeap()

			c := New(w, Options{Analysis: spread.Options{DefaultMinNodes: 2}}, slog.New(slog.DiscardHandler))
			registry := prometheus.NewRegistry()
			registry.MustRegister(c)
			handler := NewHandler(registry, c, slog.New(slog.DiscardHandler))
			format := expfmt.NewFormat(expfmt.TypeTextPlain)
			scrape := func() {
				if err := handler.writeGzip(io.Discard, format); err != nil {
					b.Fatal(err)
				}
			}
			scrape()
			for i := range 5 {
				changePod(ctx, b, client, w, podObjs[i*len(podObjs)/5], i)
				scrape()
			}
			kept := liveHeap()
			cordon(ctx, b, client, w, maintenanceNodes)
			scrape()
			keptMaintenance := liveHeap()

			b.ReportAllocs()
			for b.Loop() {
				scrape()
			}
			perPod := func(bytes int64) float64 { return float64(bytes) / float64(pods) }
			b.ReportMetric(perPod(synced-before), "cache-bytes/pod")
			b.ReportMetric(perPod(kept-synced), "kept-bytes/pod")
			b.ReportMetric(perPod(keptMaintenance-synced), "kept-maintenance-bytes/pod")
			// The objects the fake clientset serves must stay live until
			// here, or their collection would count against the figures.
			goruntime.KeepAlive(objs)
			goruntime.KeepAlive(podObjs)
			goruntime.KeepAlive(client)
			goruntime.KeepAlive(handler)
		})
	}
}
