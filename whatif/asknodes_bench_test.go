package whatif

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// movingWatcher is a watcher whose generation the benchmark moves, as
// churn elsewhere in the cluster does, without changing its content.
type movingWatcher struct {
	*cluster.Watcher
	moved atomic.Uint64
}

func (m *movingWatcher) Generation() uint64 { return m.Watcher.Generation() + m.moved.Load() }

// BenchmarkAskNodes measures the admission webhook's question, one node,
// on synced caches of a synthetic cluster:
//
//   - current: the caches have not moved since the kept snapshot;
//   - caches-moved: they moved before every question (churn elsewhere), and
//     the kept snapshot is within MaxStaleness: answered from it while a
//     refresh runs in the background, which the benchmark's time includes
//     (it competes for the CPU as on the exporter);
//   - pending: current, with 10 nodes admitted a moment ago counted as gone;
//   - snapshot: what a question waits for when there is no snapshot or
//     it is older than MaxStaleness.
func BenchmarkAskNodes(b *testing.B) {
	for _, pods := range []int{10_000, 150_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			w, ctx := syncedWatcher(b, pods)
			source := &movingWatcher{Watcher: w}
			h := NewHandler(source, spread.Options{}, slog.New(slog.DiscardHandler))
			nodes := synth.ForPods(pods).Nodes
			next := 0
			askOne := func(b *testing.B, gone []string) {
				answer, err := h.AskNodes(ctx, []string{synth.NodeName(next % nodes)}, gone)
				next += 7
				if err != nil {
					b.Fatal(err)
				}
				if len(answer.Services) == 0 {
					b.Fatal("no service in the answer")
				}
			}
			askOne(b, nil) // the first snapshot
			b.Run("current", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					askOne(b, nil)
				}
			})
			b.Run("caches-moved", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					source.moved.Add(1)
					askOne(b, nil)
				}
			})
			// Let the last refresh end, then make the snapshot current: a
			// question that finds it older than the bound waits for one.
			h.judging.mu.Lock()
			flight := h.judging.refresh
			h.judging.mu.Unlock()
			if flight != nil {
				<-flight.done
			}
			h.judging.mu.Lock()
			h.judging.taken = h.judging.taken.Add(-2 * MaxStaleness)
			h.judging.mu.Unlock()
			askOne(b, nil)
			pending := make([]string, 10)
			for i := range pending {
				pending[i] = synth.NodeName((nodes/2 + i) % nodes)
			}
			b.Run("pending", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					askOne(b, pending)
				}
			})
			b.Run("snapshot", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c, err := w.SnapshotWithoutPlacement()
					if err != nil {
						b.Fatal(err)
					}
					spread.Analyze(c, spread.Options{})
				}
			})
		})
	}
}
