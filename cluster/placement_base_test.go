package cluster

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// TestPlacementBaseEqualsWholeInput drives a watcher through random pod
// and node events and after every one holds the follower's kept placement
// input to the one a whole snapshot builds from the same caches: the same
// nodes in the same order, the same pods (in any order), and an index that
// finds each pod. The input a snapshot was handed must not change after,
// whatever the base does next, and comes prepared, with the index one
// built from the whole input has, most of the time moved from the last
// input's.
func TestPlacementBaseEqualsWholeInput(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { placementBaseEqualsWholeInput(t, seed, 200) })
	}
}

func placementBaseEqualsWholeInput(t *testing.T, seed uint64, steps int) {
	w, client := startWatcher(t, Config{}, node("n0"), node("n1"), node("n2"))
	f := w.Follow()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 7))
	nodes := map[string]bool{"n0": true, "n1": true, "n2": true}
	pods := map[string]bool{}
	prev, _, _, err := f.SnapshotForScrape(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The input handed out by the last snapshot, and a copy of its pods.
	var handed *placement.Cluster
	var handedPods []placement.Pod
	rebuilds, inputs, moved := 0, 0, 0
	for step := range steps {
		before := w.Generation()
		what, err := placementEvent(ctx, client, r, nodes, pods)
		if err != nil {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
		if what == "" {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for w.Generation() == before {
			if time.Now().After(deadline) {
				t.Fatalf("step %d (%s): the watcher did not see the event within 10s", step, what)
			}
			time.Sleep(100 * time.Microsecond)
		}
		kept := f.base
		fromLast := kept != nil && kept.prepared != nil
		next, _, _, err := f.SnapshotForScrape(prev)
		if err != nil {
			t.Fatal(err)
		}
		prev = next
		if f.base != kept {
			rebuilds++
		}
		if handed != nil && !slices.Equal(handed.Pods, handedPods) {
			t.Fatalf("step %d (%s): the input a snapshot was handed changed after", step, what)
		}
		if next.Placement != nil {
			inputs++
			handed, handedPods = next.Placement, slices.Clone(next.Placement.Pods)
			whole := &placement.Cluster{Nodes: handed.Nodes, Pods: handed.Pods}
			whole.Prepare()
			if got := handed.Index(); got == nil || !reflect.DeepEqual(got, whole.Index()) {
				t.Fatalf("step %d (%s): the input's index is not the one built from it whole (moved from the last: %t)", step, what, fromLast)
			}
			if fromLast && f.base == kept {
				moved++
			}
		}

		whole, _ := w.snapshotPlacement(w.pods.List())
		b := f.base
		if !slices.EqualFunc(b.nodes.nodes, whole.Nodes, func(a, b placement.Node) bool { return describeNode(a) == describeNode(b) }) {
			t.Fatalf("step %d (%s): nodes %v, want %v", step, what, b.nodes.nodes, whole.Nodes)
		}
		if got, want := describePods(b.pods, b.nodes.nodes), describePods(whole.Pods, whole.Nodes); !slices.Equal(got, want) {
			t.Fatalf("step %d (%s): pods\n%v\nwant\n%v", step, what, got, want)
		}
		if len(b.cached) != len(b.pods) || len(b.index) != len(b.pods) {
			t.Fatalf("step %d (%s): %d pods, %d cached, %d indexed", step, what, len(b.pods), len(b.cached), len(b.index))
		}
		for i, p := range b.cached {
			if b.pods[i].Name != p.name || b.index[podKey(p)] != int32(i+1) {
				t.Fatalf("step %d (%s): pod %d is %s, cached %s, indexed at %d", step, what, i, b.pods[i].Name, p.name, b.index[podKey(p)]-1)
			}
		}
	}
	// The events must take every path: a node added or deleted rebuilds
	// the base, and a cordon hands out input.
	if rebuilds == 0 || inputs == 0 || moved == 0 {
		t.Errorf("%d rebuilds of the base, %d inputs handed out, %d with the index moved from the last: want all", rebuilds, inputs, moved)
	}
}

func describeNode(n placement.Node) string {
	return fmt.Sprintf("%s %v %v %v %v", n.Name, n.Labels, n.Taints, n.Allocatable, n.Images)
}

// describePods describes pods by name, node, template and state, sorted.
func describePods(pods []placement.Pod, nodes []placement.Node) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = fmt.Sprintf("%s on %s template %p ready %t terminating %t", p.Name, nodes[p.Node].Name, p.Template, p.Ready, p.Terminating)
	}
	slices.Sort(out)
	return out
}

// placementEvent makes one random change to the pods or nodes: it returns
// what it did, "" when it did nothing.
func placementEvent(ctx context.Context, client kubernetes.Interface, r *rand.Rand, nodes, pods map[string]bool) (string, error) {
	pick := func(m map[string]bool) string {
		keys := slices.Sorted(maps.Keys(m))
		return keys[r.IntN(len(keys))]
	}
	// A node name, sometimes one the cluster does not have.
	nodeName := func() string {
		if r.IntN(8) == 0 {
			return ""
		}
		return fmt.Sprintf("n%d", r.IntN(5))
	}
	podClient := client.CoreV1().Pods("wiki")
	switch op := r.IntN(10); {
	case op < 3 || len(pods) == 0:
		name := fmt.Sprintf("p%d", r.IntN(40))
		if pods[name] {
			return "", nil
		}
		pods[name] = true
		_, err := podClient.Create(ctx, pod("wiki", name, nodeName(), r.IntN(2) == 0, owned("ReplicaSet", fmt.Sprintf("rs%d", r.IntN(3)))), metav1.CreateOptions{})
		return "create pod " + name, err
	case op < 7:
		name := pick(pods)
		p, err := podClient.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "get pod " + name, err
		}
		what := "change pod " + name
		switch r.IntN(4) {
		case 0:
			p.Spec.NodeName = nodeName()
			what += ": to node " + p.Spec.NodeName
		case 1:
			p.Status.Conditions[0].Status = map[corev1.ConditionStatus]corev1.ConditionStatus{corev1.ConditionTrue: corev1.ConditionFalse, corev1.ConditionFalse: corev1.ConditionTrue}[p.Status.Conditions[0].Status]
			what += ": readiness"
		case 2:
			p.Status.Phase = corev1.PodSucceeded
			what += ": finished"
		case 3:
			p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
			what += ": terminating"
		}
		_, err = podClient.Update(ctx, p, metav1.UpdateOptions{})
		return what, err
	case op < 8:
		name := pick(pods)
		delete(pods, name)
		return "delete pod " + name, podClient.Delete(ctx, name, metav1.DeleteOptions{})
	default:
		name := fmt.Sprintf("n%d", r.IntN(5))
		switch {
		case !nodes[name]:
			nodes[name] = true
			_, err := client.CoreV1().Nodes().Create(ctx, node(name), metav1.CreateOptions{})
			return "create node " + name, err
		case r.IntN(3) == 0 && len(nodes) > 1:
			delete(nodes, name)
			return "delete node " + name, client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		}
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "get node " + name, err
		}
		n.Spec.Unschedulable = !n.Spec.Unschedulable
		n.Labels["rack"] = strings.Repeat("r", r.IntN(3))
		_, err = client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return fmt.Sprintf("node %s unschedulable %t", name, n.Spec.Unschedulable), err
	}
}
