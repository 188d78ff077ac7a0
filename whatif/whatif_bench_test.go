package whatif

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// BenchmarkAsk measures a what-if for a batch of 10 nodes on synced caches
// of a synthetic cluster (pods with requests and images, nodes with
// allocatable and images), the analysis of the cluster as it is done
// already, as the handler shares it between questions: the cost of one
// question while nothing changes. "snapshot" is what the first question
// after a change pays on top.
func BenchmarkAsk(b *testing.B) {
	for _, pods := range []int{10_000, 150_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			w, _ := syncedWatcher(b, pods)
			b.Run("snapshot", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := w.Snapshot(); err != nil {
						b.Fatal(err)
					}
				}
			})
			c, err := w.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			opts := spread.Options{}
			now := spread.Analyze(c, opts)
			c.Placement.Prepare() // as the handler does
			b.Run("prepare", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					again, err := w.Snapshot()
					if err != nil {
						b.Fatal(err)
					}
					again.Placement.Prepare()
				}
			})
			nodes := synth.ForPods(pods).Nodes
			b.Run("ask", func(b *testing.B) {
				b.ReportAllocs()
				first := 0
				for b.Loop() {
					batch := make([]string, 10)
					for i := range batch {
						batch[i] = synth.NodeName((first + i) % nodes)
					}
					first += 10
					answer, err := ask(c, now, batch, opts)
					if err != nil {
						b.Fatal(err)
					}
					if len(answer.Services) == 0 {
						b.Fatal("no service in the answer")
					}
				}
			})
		})
	}
}

// syncedWatcher returns a Watcher whose caches hold the synthetic cluster
// of test/scale/synth with the given pods, fed through a fake clientset
// so that every object passes the transform as in production, and a
// context that ends with the benchmark.
func syncedWatcher(b *testing.B, pods int) (*cluster.Watcher, context.Context) {
	b.Helper()
	var objs []runtime.Object
	for _, obj := range synth.Generate(synth.ForPods(pods)).Objects() {
		objs = append(objs, obj.(runtime.Object))
	}
	w, err := cluster.New(fake.NewSimpleClientset(objs...), cluster.Config{TopologyKeys: []string{synth.ZoneKey}, MaintenanceTaints: cluster.DefaultMaintenanceTaints})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w.Start(ctx)
	if !w.WaitForSync(ctx) {
		b.Fatal("caches did not sync")
	}
	return w, ctx
}
