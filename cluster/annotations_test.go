package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// lockedBuffer collects log lines written from the informers' goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// TestInvalidAnnotationsOncePerServiceAndValue pins what docs/metrics.md
// promises: an invalid min-nodes value is counted and logged once per
// distinct (service, value), only for objects that are services, only in
// watched namespaces, with long values cut in the log.
func TestInvalidAnnotationsOncePerServiceAndValue(t *testing.T) {
	ctx := context.Background()
	bad := func(value string) map[string]string { return map[string]string{spread.MinNodesAnnotation: value} }
	withAnnotations := func(rs *appsv1.ReplicaSet, annotations map[string]string) *appsv1.ReplicaSet {
		rs.Annotations = annotations
		return rs
	}
	unselected := service("ns", "external", nil)
	unselected.Annotations = bad("lots")
	logs := &lockedBuffer{}
	w, client := startWatcher(t, Config{
		NamespaceInclude: regexp.MustCompile("^ns$"),
		Logger:           slog.New(slog.NewTextHandler(logs, nil)),
	},
		deployment("ns", "web", 2, bad("two")),
		// Kubernetes copies a Deployment's annotations onto its
		// ReplicaSets, which are not services themselves.
		withAnnotations(replicaSet("ns", "web-5d8f", 2, owned("Deployment", "web")), bad("two")),
		withAnnotations(replicaSet("ns", "solo", 2, nil), bad("+3")),
		deployment("elsewhere", "ignored", 2, bad("two")),
		unselected,
	)
	if got := w.InvalidAnnotations(); got != 2 {
		t.Errorf("after sync: invalid annotations = %d, want 2 (ns/web and ns/solo); log:\n%s", got, strings.Join(logs.lines(), "\n"))
	}

	// waitFor applies an update and waits until the count is want and the
	// cache holds the update; a second look catches a late extra count.
	long := strings.Repeat("x", 10000)
	steps := []struct {
		value string
		want  uint64
	}{
		{"3", 2},    // valid: nothing to report
		{"two", 2},  // seen before for this service
		{long, 3},   // new
		{"two", 3},  // seen before
		{long, 3},   // seen before
		{" 3", 4},   // new, and not a whole number
		{"2", 4},    // valid
		{"-1", 5},   // new
		{"two", 5},  // seen before
		{"nine", 6}, // new
	}
	for i, step := range steps {
		d := deployment("ns", "web", int32(10+i), bad(step.value))
		if _, err := client.AppsV1().Deployments("ns").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(strings.Join(describeNow(t, w), "\n"), "Deployment ns/web desired="+strconv.Itoa(10+i)) || w.InvalidAnnotations() < step.want {
			if time.Now().After(deadline) {
				t.Fatalf("step %d (%.20q): invalid annotations = %d, want %d", i, step.value, w.InvalidAnnotations(), step.want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		if got := w.InvalidAnnotations(); got != step.want {
			t.Fatalf("step %d (%.20q): invalid annotations = %d, want %d", i, step.value, got, step.want)
		}
	}
	for _, line := range logs.lines() {
		if len(line) > 500 {
			t.Errorf("log line of %d bytes: %.200s...", len(line), line)
		}
		if strings.Contains(line, "elsewhere") || strings.Contains(line, "external") || strings.Contains(line, "web-5d8f") {
			t.Errorf("logged an object that is no service here: %s", line)
		}
	}
	if got := len(logs.lines()); got != 6 {
		t.Errorf("%d log lines, want one per count (6):\n%s", got, strings.Join(logs.lines(), "\n"))
	}
}

func describeNow(t *testing.T, w *Watcher) []string {
	t.Helper()
	snapshot, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return describe(snapshot)
}
