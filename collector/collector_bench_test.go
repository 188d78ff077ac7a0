package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// benchmarkSizes are the pod counts of the benchmarks: 30 pods per node
// and 10 per service, up to the Kubernetes limit of 150,000 pods.
var benchmarkSizes = []int{1_000, 10_000, 150_000}

// countingWriter counts what the encoder writes.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkScrape is one whole scrape as promhttp serves it: the snapshot
// of the caches, the analysis, the constant metrics, the registry's
// gathering (sorting and checking) and the text encoding. The caches hold
// a synthetic cluster fed through a fake clientset.
func BenchmarkScrape(b *testing.B) {
	for _, pods := range benchmarkSizes {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			var objs []runtime.Object
			for _, obj := range synth.Generate(synth.ForPods(pods)).Objects() {
				objs = append(objs, obj.(runtime.Object))
			}
			w, err := cluster.New(fake.NewSimpleClientset(objs...), cluster.Config{TopologyKeys: []string{synth.ZoneKey}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w.Start(ctx)
			if !w.WaitForSync(ctx) {
				b.Fatal("caches did not sync")
			}
			registry := prometheus.NewRegistry()
			registry.MustRegister(New(w, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler)))

			var bytes, series int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				families, err := registry.Gather()
				if err != nil {
					b.Fatal(err)
				}
				out := &countingWriter{}
				encoder := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
				series = 0
				for _, f := range families {
					series += int64(len(f.GetMetric()))
					if err := encoder.Encode(f); err != nil {
						b.Fatal(err)
					}
				}
				bytes = out.n
			}
			b.ReportMetric(float64(bytes), "response-bytes")
			b.ReportMetric(float64(series), "series")
		})
	}
}

var _ io.Writer = (*countingWriter)(nil)
