package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestGeneration(t *testing.T) {
	ctx := context.Background()
	w, client := startWatcher(t, Config{},
		node("a"), node("b"),
		deployment("ns", "web", 1, nil), replicaSet("ns", "web-1", 1, owned("Deployment", "web")),
		pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1")),
	)
	synced := w.Generation()
	// Five adds and the end of the sync.
	if synced != 6 {
		t.Errorf("generation after sync = %d, want 6", synced)
	}
	if again := w.Generation(); again != synced {
		t.Errorf("generation moved without a change: %d, then %d", synced, again)
	}

	// waitForChange reads Generation until it moves past last, then checks
	// that a Snapshot taken after reading it shows the change.
	waitForChange := func(what string, last uint64, shows string) uint64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g := w.Generation()
			snapshot, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if g > last {
				if lines := describe(snapshot); !slices.Contains(lines, shows) {
					t.Fatalf("%s: generation %d, but the snapshot after it does not show %q:\n%s", what, g, shows, strings.Join(lines, "\n"))
				}
				return g
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: generation still %d", what, g)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cordoned := node("b")
	cordoned.Spec.Unschedulable = true
	if _, err := client.CoreV1().Nodes().Update(ctx, cordoned, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	g := waitForChange("update", synced, "node b domains=[zone-b] unschedulable=[cordoned]")
	if err := client.CoreV1().Pods("ns").Delete(ctx, "web-1-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	g = waitForChange("delete", g, "Deployment ns/web desired=1 min_nodes=0 replicas=[]")
	if _, err := client.CoreV1().Pods("ns").Create(ctx, pod("ns", "web-1-b", "b", true, owned("ReplicaSet", "web-1")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForChange("add", g, "Deployment ns/web desired=1 min_nodes=0 replicas=[b:ready]")
}

// TestGenerationCountsTheSync: an empty cluster syncs without a single
// event, and a caller must still learn that Snapshot now succeeds.
func TestGenerationCountsTheSync(t *testing.T) {
	w, err := New(fake.NewClientset(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	before := w.Generation()
	if _, err := w.Snapshot(); err != ErrCacheNotSynced {
		t.Fatalf("Snapshot before Start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	if !w.WaitForSync(ctx) {
		t.Fatal("caches did not sync")
	}
	after := w.Generation()
	if after != before+1 {
		t.Errorf("generation %d before the sync, %d after, want one more", before, after)
	}
	if _, err := w.Snapshot(); err != nil {
		t.Errorf("Snapshot after the sync: %v", err)
	}
	if again := w.Generation(); again != after {
		t.Errorf("generation moved again without a change: %d", again)
	}
}

// TestInformersHaveOnlyTheFollowersIndexes: the factory's informers index
// by namespace, which costs memory per object and serves nobody here; the
// only indexes are the three a Follower looks services up by.
func TestInformersHaveOnlyTheFollowersIndexes(t *testing.T) {
	w, err := New(fake.NewClientset(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"pods": {byOwner}, "replicasets": {byOwner}, "endpointslices": {byService}}
	for _, r := range w.resources {
		var got []string
		for name := range r.informer.GetIndexer().GetIndexers() {
			got = append(got, name)
		}
		if !slices.Equal(got, want[r.name]) {
			t.Errorf("%s: indexes %v, want %v", r.name, got, want[r.name])
		}
	}
}
