package cluster

import (
	"context"
	"fmt"
	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	goruntime "runtime"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// benchmarkSizes are the pod counts of the benchmarks: 30 pods per node
// and 10 per service, up to the Kubernetes limit of 150,000 pods.
var benchmarkSizes = []int{1_000, 10_000, 150_000}

// syncedWatcher returns a Watcher whose caches hold a synthetic cluster of
// the given pod count, fed through a fake clientset so that every object
// passes the transform as in production. It also returns the growth of the
// live heap that the synced caches cost.
func syncedWatcher(b *testing.B, pods int) (*Watcher, uint64) {
	b.Helper()
	var objs []runtime.Object
	for _, obj := range synth.Generate(synth.ForPods(pods)).Objects() {
		objs = append(objs, obj.(runtime.Object))
	}
	client := fake.NewSimpleClientset(objs...)
	before := liveHeap()
	w, err := New(client, Config{TopologyKeys: []string{synth.ZoneKey}, MaintenanceTaints: DefaultMaintenanceTaints})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w.Start(ctx)
	if !w.WaitForSync(ctx) {
		b.Fatal("caches did not sync")
	}
	after := settledHeap()
	goruntime.KeepAlive(client)
	return w, after - before
}

func liveHeap() uint64 {
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return m.HeapAlloc
}

// settledHeap is the live heap once it stops shrinking: right after the
// sync, event handlers may still hold notifications, and the unique
// package frees the entries of strings interned in passing only after a
// garbage collection has run their cleanups.
func settledHeap() uint64 {
	heap := liveHeap()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		next := liveHeap()
		if next+next/200 >= heap { // within 0.5%
			return min(heap, next)
		}
		heap = next
	}
	return heap
}

// BenchmarkSnapshot measures building the analysis input from synced
// caches: "scrape" is what every scrape after a change builds (no node is
// unschedulable in the synthetic cluster, so without the placement input),
// "whatif" what a what-if question builds, the placement input included.
// cache-bytes/pod is the live heap the trimmed caches hold, divided by the
// pods.
func BenchmarkSnapshot(b *testing.B) {
	for _, pods := range benchmarkSizes {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			w, cacheBytes := syncedWatcher(b, pods)
			for _, bench := range []struct {
				name     string
				snapshot func() (*spread.Cluster, error)
			}{
				{"scrape", w.SnapshotForScrape},
				{"whatif", w.Snapshot},
			} {
				b.Run(bench.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := bench.snapshot(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(cacheBytes)/float64(pods), "cache-bytes/pod")
				})
			}
			benchmarkPlacementBase(b, w, pods)
		})
	}
}

// benchmarkPlacementBase measures the placement input a follower keeps:
// "placement-base" builds it from the synced caches (the first snapshot,
// or one after a node was added or deleted) and reports the live heap it
// holds per pod, which it holds all the time; "placement-base-update"
// applies one pod's change to it right after a snapshot took it, the
// copy of its pods included, as a scrape during maintenance on a busy
// cluster does; "placement-index" hands the input out for one node
// cordoned, prepared, and reports the live heap its index holds per pod,
// then times an update by one pod's change and the next input, its index
// moved from the last, as each scrape during maintenance does.
func benchmarkPlacementBase(b *testing.B, w *Watcher, pods int) {
	b.Run("placement-base", func(b *testing.B) {
		before := liveHeap()
		base := w.newPlacementBase()
		held := settledHeap() - before
		goruntime.KeepAlive(base)
		b.ReportAllocs()
		for b.Loop() {
			w.newPlacementBase()
		}
		b.ReportMetric(float64(held)/float64(pods), "base-bytes/pod")
	})
	b.Run("placement-base-update", func(b *testing.B) {
		base := w.newPlacementBase()
		p := base.cached[len(base.cached)/2]
		changed := map[podRef]struct{}{{p.owner.namespace(), p.name}: {}}
		b.ReportAllocs()
		for b.Loop() {
			base.shared = true
			if !base.update(w, changed, nil) {
				b.Fatal("the base wants a rebuild, though no node changed")
			}
		}
	})
	b.Run("placement-index", func(b *testing.B) {
		base := w.newPlacementBase()
		gone := make([]bool, len(base.nodes.nodes))
		gone[base.pods[0].Node] = true
		// The index alone: of a cluster that shares the base's nodes and
		// pods.
		before := liveHeap()
		indexed := &placement.Cluster{Nodes: base.nodes.nodes, Pods: base.pods}
		indexed.Prepare()
		held := settledHeap() - before
		goruntime.KeepAlive(indexed)
		c, _ := base.input(w, gone)
		p := base.cached[len(base.cached)/2]
		changed := map[podRef]struct{}{{p.owner.namespace(), p.name}: {}}
		b.ReportAllocs()
		for b.Loop() {
			if !base.update(w, changed, nil) {
				b.Fatal("the base wants a rebuild, though no node changed")
			}
			if c, _ = base.input(w, gone); c == nil {
				b.Fatal("no input for a node with pods cordoned")
			}
		}
		b.ReportMetric(float64(held)/float64(pods), "index-bytes/pod")
	})
}
