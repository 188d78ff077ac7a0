package cluster

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Builders for the objects of the tests: only the fields the exporter reads.

func node(name string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": "zone-" + name}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func owned(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)}}
}

func pod(namespace, name, nodeName string, ready bool, owners []metav1.OwnerReference) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, OwnerReferences: owners, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/app:1"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func deployment(namespace, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
	}
}

func replicaSet(namespace, name string, replicas int32, owners []metav1.OwnerReference) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, OwnerReferences: owners},
		Spec:       appsv1.ReplicaSetSpec{Replicas: &replicas},
	}
}

func service(namespace, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
}

type endpoint struct {
	pod, node          string
	ready, terminating bool
}

func endpointSlice(namespace, name, serviceName string, family discoveryv1.AddressType, endpoints ...endpoint) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: serviceName}},
		AddressType: family,
	}
	for i, ep := range endpoints {
		e := discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.0.0.%d", i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ep.ready), Serving: ptr.To(ep.ready), Terminating: ptr.To(ep.terminating)},
		}
		if ep.node != "" {
			e.NodeName = ptr.To(ep.node)
		}
		if ep.pod != "" {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: ep.pod}
		}
		slice.Endpoints = append(slice.Endpoints, e)
	}
	return slice
}

// describe renders a snapshot as sorted lines, so a test states the whole
// expected input of the analysis in a readable form.
func describe(c *spread.Cluster) []string {
	var lines []string
	for _, n := range c.Nodes {
		reasons := make([]string, len(n.Unschedulable))
		for i, r := range n.Unschedulable {
			reasons[i] = string(r)
		}
		lines = append(lines, fmt.Sprintf("node %s domains=%v unschedulable=[%s]", n.Name, n.Domains, strings.Join(reasons, ",")))
	}
	for _, s := range c.Services {
		replicas := make([]string, len(s.Replicas))
		for i, r := range s.Replicas {
			state := "unready"
			if r.Ready {
				state = "ready"
			}
			replicas[i] = r.Node + ":" + state
		}
		slices.Sort(replicas)
		lines = append(lines, fmt.Sprintf("%s %s/%s desired=%d min_nodes=%d replicas=[%s]", s.Kind, s.Namespace, s.Name, s.DesiredReplicas, s.MinNodes, strings.Join(replicas, " ")))
	}
	slices.Sort(lines)
	return lines
}

func startWatcher(t *testing.T, config Config, objects ...runtime.Object) (*Watcher, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objects...)
	if config.TopologyKeys == nil {
		config.TopologyKeys = []string{"topology.kubernetes.io/zone"}
	}
	if config.MaintenanceTaints == nil {
		config.MaintenanceTaints = DefaultMaintenanceTaints
	}
	w, err := New(client, config)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.Start(ctx)
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !w.WaitForSync(syncCtx) {
		t.Fatal("caches did not sync")
	}
	return w, client
}

func TestSnapshot(t *testing.T) {
	mustSelector := func(s string) labels.Selector {
		selector, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return selector
	}
	tests := []struct {
		name    string
		config  Config
		objects []runtime.Object
		want    []string
	}{
		{
			name: "a Service selecting the pods of two Deployments, main and canary",
			objects: []runtime.Object{
				node("a"), node("b"),
				deployment("wiki", "mathoid", 2, nil), replicaSet("wiki", "mathoid-1", 2, owned("Deployment", "mathoid")),
				deployment("wiki", "mathoid-canary", 1, nil), replicaSet("wiki", "mathoid-canary-1", 1, owned("Deployment", "mathoid-canary")),
				pod("wiki", "mathoid-1-x", "a", true, owned("ReplicaSet", "mathoid-1")),
				pod("wiki", "mathoid-1-y", "b", true, owned("ReplicaSet", "mathoid-1")),
				pod("wiki", "mathoid-canary-1-z", "a", true, owned("ReplicaSet", "mathoid-canary-1")),
				service("wiki", "mathoid", map[string]string{"app": "mathoid"}),
				endpointSlice("wiki", "mathoid-abc", "mathoid", discoveryv1.AddressTypeIPv4,
					endpoint{pod: "mathoid-1-x", node: "a", ready: true},
					endpoint{pod: "mathoid-1-y", node: "b", ready: true},
					endpoint{pod: "mathoid-canary-1-z", node: "a", ready: true}),
			},
			want: []string{
				"Deployment wiki/mathoid desired=2 min_nodes=0 replicas=[a:ready b:ready]",
				"Deployment wiki/mathoid-canary desired=1 min_nodes=0 replicas=[a:ready]",
				"Service wiki/mathoid desired=-1 min_nodes=0 replicas=[a:ready a:ready b:ready]",
				"node a domains=[zone-a] unschedulable=[]",
				"node b domains=[zone-b] unschedulable=[]",
			},
		},
		{
			name: "node reasons: cordon, NotReady, maintenance taint, maintenance label, deletion",
			config: Config{
				MaintenanceTaints:   append([]string{"example.org/reimage"}, DefaultMaintenanceTaints...),
				MaintenanceSelector: mustSelector("maintenance=batch-3"),
			},
			objects: []runtime.Object{
				node("cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
				node("notready", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }),
				node("nocondition", func(n *corev1.Node) { n.Status.Conditions = nil }),
				node("tainted", func(n *corev1.Node) {
					n.Spec.Taints = []corev1.Taint{{Key: "example.org/reimage", Effect: corev1.TaintEffectNoExecute}}
				}),
				node("prefer", func(n *corev1.Node) {
					// PreferNoSchedule keeps no pod away, and unknown keys are not maintenance.
					n.Spec.Taints = []corev1.Taint{
						{Key: "example.org/reimage", Effect: corev1.TaintEffectPreferNoSchedule},
						{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule},
					}
				}),
				node("planned", func(n *corev1.Node) { n.Labels["maintenance"] = "batch-3" }),
				node("deleting", func(n *corev1.Node) {
					n.DeletionTimestamp = &metav1.Time{Time: time.Unix(1530688000, 0)}
					n.Finalizers = []string{"example.org/keep"}
				}),
				node("nolabels", func(n *corev1.Node) { n.Labels = nil }),
			},
			want: []string{
				"node cordoned domains=[zone-cordoned] unschedulable=[cordoned]",
				"node deleting domains=[zone-deleting] unschedulable=[deleting]",
				"node nocondition domains=[zone-nocondition] unschedulable=[not_ready]",
				"node nolabels domains=[] unschedulable=[]",
				"node notready domains=[zone-notready] unschedulable=[not_ready]",
				"node planned domains=[zone-planned] unschedulable=[maintenance_label]",
				"node prefer domains=[zone-prefer] unschedulable=[]",
				"node tainted domains=[zone-tainted] unschedulable=[maintenance_taint]",
			},
		},
		{
			name: "workload kinds: StatefulSet, ownerless ReplicaSet and RC count; DaemonSet, Job and bare pods do not",
			objects: []runtime.Object{
				node("a"),
				&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "pg"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)}},
				pod("db", "pg-0", "a", true, owned("StatefulSet", "pg")),
				pod("db", "pg-1", "", false, owned("StatefulSet", "pg")),
				replicaSet("db", "loose", 3, nil),
				pod("db", "loose-1", "a", true, owned("ReplicaSet", "loose")),
				&corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "legacy"}},
				pod("db", "legacy-1", "a", true, []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "legacy", UID: "u", Controller: ptr.To(true)}}),
				&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "agent"}},
				pod("db", "agent-1", "a", true, owned("DaemonSet", "agent")),
				&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "backup"}},
				pod("db", "backup-1", "a", true, []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "backup", UID: "u", Controller: ptr.To(true)}}),
				pod("db", "bare", "a", true, nil),
				// A pod whose ReplicaSet is gone from the cache belongs to nothing.
				pod("db", "orphan", "a", true, owned("ReplicaSet", "deleted")),
			},
			want: []string{
				"ReplicaSet db/loose desired=3 min_nodes=0 replicas=[a:ready]",
				"ReplicationController db/legacy desired=1 min_nodes=0 replicas=[a:ready]",
				"StatefulSet db/pg desired=2 min_nodes=0 replicas=[:unready a:ready]",
				"node a domains=[zone-a] unschedulable=[]",
			},
		},
		{
			name: "terminating pod and unready, terminating and node-less endpoints; dual-stack counted once",
			objects: []runtime.Object{
				node("a"), node("b"),
				deployment("ns", "web", 3, map[string]string{spread.MinNodesAnnotation: "3"}),
				replicaSet("ns", "web-1", 3, owned("Deployment", "web")),
				pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1")),
				func() *corev1.Pod {
					p := pod("ns", "web-1-b", "b", true, owned("ReplicaSet", "web-1"))
					p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1530688000, 0)}
					p.Finalizers = []string{"example.org/keep"}
					return p
				}(),
				pod("ns", "web-1-c", "b", false, owned("ReplicaSet", "web-1")),
				service("ns", "web", map[string]string{"app": "web"}),
				// A Service without selector is not ours to judge.
				service("ns", "external", nil),
				endpointSlice("ns", "web-v4", "web", discoveryv1.AddressTypeIPv4,
					endpoint{pod: "web-1-a", node: "a", ready: true},
					endpoint{pod: "web-1-b", node: "b", terminating: true},
					endpoint{pod: "web-1-c", node: "b"},
					endpoint{pod: "somewhere", ready: true}),
				endpointSlice("ns", "web-v6", "web", discoveryv1.AddressTypeIPv6,
					endpoint{pod: "web-1-a", node: "a", ready: true}),
			},
			want: []string{
				"Deployment ns/web desired=3 min_nodes=3 replicas=[a:ready b:unready b:unready]",
				"Service ns/web desired=-1 min_nodes=0 replicas=[:ready a:ready b:unready b:unready]",
				"node a domains=[zone-a] unschedulable=[]",
				"node b domains=[zone-b] unschedulable=[]",
			},
		},
		{
			name: "namespace include and exclude",
			config: Config{
				NamespaceInclude: regexp.MustCompile(`^(?:team-.*)$`),
				NamespaceExclude: regexp.MustCompile(`^(?:team-test)$`),
			},
			objects: []runtime.Object{
				deployment("team-a", "web", 1, nil),
				deployment("team-test", "web", 1, nil),
				deployment("kube-system", "dns", 1, nil),
				service("team-a", "web", map[string]string{"app": "web"}),
				service("kube-system", "dns", map[string]string{"app": "dns"}),
			},
			want: []string{
				"Deployment team-a/web desired=1 min_nodes=0 replicas=[]",
				"Service team-a/web desired=-1 min_nodes=0 replicas=[]",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := startWatcher(t, tc.config, tc.objects...)
			snapshot, err := w.Snapshot()
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if got := describe(snapshot); !slices.Equal(got, tc.want) {
				t.Errorf("snapshot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestSnapshotBeforeSync(t *testing.T) {
	w, err := New(fake.NewClientset(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Snapshot(); err != ErrCacheNotSynced {
		t.Errorf("Snapshot before Start: err = %v, want ErrCacheNotSynced", err)
	}
}

// TestWatcherFollowsChanges drives the informers through updates and
// deletes, tombstones included, and checks each reaches the snapshot.
func TestWatcherFollowsChanges(t *testing.T) {
	ctx := context.Background()
	w, client := startWatcher(t, Config{},
		node("a"), node("b"),
		deployment("ns", "web", 2, nil), replicaSet("ns", "web-1", 2, owned("Deployment", "web")),
		pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1")),
		pod("ns", "web-1-b", "b", true, owned("ReplicaSet", "web-1")),
	)
	waitFor := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			snapshot, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			got := describe(snapshot)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: snapshot\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	cordoned := node("b", func(n *corev1.Node) { n.Spec.Unschedulable = true })
	if _, err := client.CoreV1().Nodes().Update(ctx, cordoned, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("cordon",
		"Deployment ns/web desired=2 min_nodes=0 replicas=[a:ready b:ready]",
		"node a domains=[zone-a] unschedulable=[]",
		"node b domains=[zone-b] unschedulable=[cordoned]")

	if err := client.CoreV1().Pods("ns").Delete(ctx, "web-1-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Nodes().Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("pod and node deleted",
		"Deployment ns/web desired=2 min_nodes=0 replicas=[a:ready]",
		"node a domains=[zone-a] unschedulable=[]")

	// A delete the watch missed arrives as a tombstone at the next relist;
	// the handler must take it without knowing the object's type.
	var pods *resource
	for _, r := range w.resources {
		if r.name == "pods" {
			pods = r
		}
	}
	before := pods.lastUpdate.Load()
	handler := w.eventHandler(pods, false)
	handler.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web-1-a", Obj: pod("ns", "web-1-a", "a", true, nil)})
	handler.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web-1-a", Obj: nil})
	if pods.lastUpdate.Load() < before {
		t.Error("tombstone did not update the last update time")
	}
	if got, err := trim(cache.DeletedFinalStateUnknown{Key: "k"}); err != nil || got != (cache.DeletedFinalStateUnknown{Key: "k"}) {
		t.Errorf("trim changed a tombstone: %v, %v", got, err)
	}
}

func TestInvalidAnnotationsAreCountedOncePerValue(t *testing.T) {
	ctx := context.Background()
	w, client := startWatcher(t, Config{},
		deployment("ns", "a", 2, map[string]string{spread.MinNodesAnnotation: "two"}),
		deployment("ns", "b", 2, map[string]string{spread.MinNodesAnnotation: "2"}),
		service("ns", "c", map[string]string{"app": "c"}),
	)
	if got := w.InvalidAnnotations(); got != 1 {
		t.Fatalf("after sync: invalid annotations = %d, want 1", got)
	}
	// Updating the object without touching the annotation reports nothing new.
	d := deployment("ns", "a", 3, map[string]string{spread.MinNodesAnnotation: "two"})
	if _, err := client.AppsV1().Deployments("ns").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := service("ns", "c", map[string]string{"app": "c"})
	s.Annotations = map[string]string{spread.MinNodesAnnotation: "0"}
	if _, err := client.CoreV1().Services("ns").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wait until both updates are cached, then count.
	var snapshot *spread.Cluster
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if snapshot, err = w.Snapshot(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Join(describe(snapshot), "\n")
		if strings.Contains(lines, "Deployment ns/a desired=3") && w.InvalidAnnotations() >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("updates not seen: invalid annotations = %d, snapshot:\n%s", w.InvalidAnnotations(), lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := w.InvalidAnnotations(); got != 2 {
		t.Errorf("invalid annotations = %d, want 2", got)
	}
	for _, svc := range snapshot.Services {
		if svc.MinNodes != map[string]int{"a": 0, "b": 2, "c": 0}[svc.Name] {
			t.Errorf("%s %s: min nodes = %d", svc.Kind, svc.Name, svc.MinNodes)
		}
	}
}

func TestProbeConfirmsFreshness(t *testing.T) {
	w, _ := startWatcher(t, Config{}, node("a"))
	ctx := context.Background()
	if f := w.Freshness(); f.Probed || !f.Confirmed.IsZero() {
		t.Fatalf("before any probe: %+v", f)
	}
	down := func(context.Context) error { return fmt.Errorf("connection refused") }
	up := func(context.Context) error { return nil }

	last := w.probeOnce(ctx, time.Second, down, 0)
	if f := w.Freshness(); !f.Probed || f.APIServerUp || !f.Confirmed.IsZero() {
		t.Errorf("API server down: %+v", f)
	}
	last = w.probeOnce(ctx, time.Second, up, last)
	first := w.Freshness()
	if !first.APIServerUp || first.Confirmed.IsZero() {
		t.Errorf("API server up, no list/watch error: %+v", first)
	}
	// A list/watch error between two probes withholds the confirmation
	// once, even though the API server answers again.
	w.config.RequestErrors.get("nodes").count.Add(1)
	last = w.probeOnce(ctx, time.Second, up, last)
	if f := w.Freshness(); !f.Confirmed.Equal(first.Confirmed) {
		t.Errorf("after a list/watch error: confirmed moved to %v", f.Confirmed)
	}
	w.probeOnce(ctx, time.Second, up, last)
	if f := w.Freshness(); !f.Confirmed.After(first.Confirmed) {
		t.Errorf("a clean probe after the error did not confirm: %v", f.Confirmed)
	}
}

// TestSnapshotPlacement: the placement input holds every node, sorted,
// with its room, the pods bound to a known node and not finished, and the
// budgets; each replica, a workload's pod or a Service's endpoint, leads
// to its pod.
func TestSnapshotPlacement(t *testing.T) {
	finished := pod("wiki", "report-x", "a", false, owned("Job", "report"))
	finished.Status.Phase = corev1.PodSucceeded
	sameNameElsewhere := pod("other", "mathoid-1-x", "b", true, owned("ReplicaSet", "mathoid-1"))
	w, _ := startWatcher(t, Config{},
		node("b", func(n *corev1.Node) {
			n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("4"), corev1.ResourcePods: apiresource.MustParse("110")}
		}),
		node("a"),
		deployment("wiki", "mathoid", 2, nil), replicaSet("wiki", "mathoid-1", 2, owned("Deployment", "mathoid")),
		pod("wiki", "mathoid-1-x", "a", true, owned("ReplicaSet", "mathoid-1")),
		pod("wiki", "mathoid-1-y", "b", true, owned("ReplicaSet", "mathoid-1")),
		pod("wiki", "pending", "", false, owned("ReplicaSet", "mathoid-1")),
		pod("wiki", "lost", "gone-node", true, nil),
		finished, sameNameElsewhere,
		service("wiki", "mathoid", map[string]string{"app": "mathoid"}),
		endpointSlice("wiki", "mathoid-abc", "mathoid", discoveryv1.AddressTypeIPv4,
			endpoint{pod: "mathoid-1-x", node: "a", ready: true},
			endpoint{pod: "mathoid-1-y", node: "b", ready: true},
			endpoint{pod: "not-cached", node: "b", ready: true}),
		&policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: "wiki", Name: "mathoid"},
			Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mathoid"}}},
			Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1},
		},
	)
	c, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	pc := c.Placement
	if len(pc.Nodes) != 2 || pc.Nodes[0].Name != "a" || pc.Nodes[1].Name != "b" || pc.Nodes[1].Allocatable.MilliCPU != 4000 {
		t.Errorf("placement nodes = %+v", pc.Nodes)
	}
	var pods []string
	for _, p := range pc.Pods {
		pods = append(pods, p.Template.Namespace+"/"+p.Name+"@"+pc.Nodes[p.Node].Name)
	}
	slices.Sort(pods)
	if want := []string{"other/mathoid-1-x@b", "wiki/mathoid-1-x@a", "wiki/mathoid-1-y@b"}; !slices.Equal(pods, want) {
		t.Errorf("placement pods = %v, want %v", pods, want)
	}
	if len(pc.PDBs) != 1 || pc.PDBs[0].Name != "mathoid" || pc.PDBs[0].DisruptionsAllowed != 1 {
		t.Errorf("placement PDBs = %+v", pc.PDBs)
	}
	for _, s := range c.Services {
		var got []string
		for _, r := range s.Replicas {
			name := "?"
			if i, ok := r.PlacementPod(); ok {
				name = pc.Pods[i].Template.Namespace + "/" + pc.Pods[i].Name
			}
			got = append(got, r.Node+"="+name)
		}
		slices.Sort(got)
		want := []string{"a=wiki/mathoid-1-x", "b=wiki/mathoid-1-y"}
		if s.Kind == spread.KindService {
			want = []string{"a=wiki/mathoid-1-x", "b=?", "b=wiki/mathoid-1-y"}
		}
		if s.Kind == spread.KindDeployment {
			want = append([]string{"=?"}, want...) // the pending pod
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s %s replicas = %v, want %v", s.Kind, s.Name, got, want)
		}
	}
}

// TestSnapshotForScrapePlacesOnlyDisplacedPods: a scrape's snapshot holds
// the placement input only when some unschedulable node holds a bound,
// unfinished pod, and is then the same as the what-if's; without it no
// replica leads to a pod.
func TestSnapshotForScrapePlacesOnlyDisplacedPods(t *testing.T) {
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	finishedOnC := pod("wiki", "report-x", "c", false, owned("Job", "report"))
	finishedOnC.Status.Phase = corev1.PodSucceeded
	workload := func(nodes ...string) []runtime.Object {
		objs := []runtime.Object{deployment("wiki", "mathoid", 2, nil), replicaSet("wiki", "mathoid-1", 2, owned("Deployment", "mathoid"))}
		for i, n := range nodes {
			objs = append(objs, pod("wiki", fmt.Sprintf("mathoid-1-%d", i), n, true, owned("ReplicaSet", "mathoid-1")))
		}
		return objs
	}
	tests := []struct {
		name          string
		objects       []runtime.Object
		wantPlacement bool
	}{
		{"every node schedulable", append(workload("a", "b"), node("a"), node("b"), node("c")), false},
		{"an empty node cordoned", append(workload("a", "b"), node("a"), node("b"), node("c", cordoned)), false},
		{"a cordoned node holding only a finished pod", append(workload("a", "b"), node("a"), node("b"), node("c", cordoned), finishedOnC), false},
		{"a cordoned node holding a replica", append(workload("a", "b"), node("a", cordoned), node("b"), node("c")), true},
		{"a not ready node holding a pod of no service", append(workload("a"), node("a"), node("b", func(n *corev1.Node) { n.Status.Conditions = nil }),
			pod("wiki", "bare", "b", true, nil)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := startWatcher(t, Config{}, tc.objects...)
			scrape, err := w.SnapshotForScrape()
			if err != nil {
				t.Fatal(err)
			}
			full, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if full.Placement == nil {
				t.Fatal("Snapshot without placement input")
			}
			if got := scrape.Placement != nil; got != tc.wantPlacement {
				t.Fatalf("placement input built: %v, want %v", got, tc.wantPlacement)
			}
			spreadOnly, err := w.SnapshotWithoutPlacement()
			if err != nil {
				t.Fatal(err)
			}
			if spreadOnly.Placement != nil {
				t.Error("SnapshotWithoutPlacement built the placement input")
			}
			if got, want := replicaPods(spreadOnly), replicaPods(&spread.Cluster{Services: full.Services}); !slices.Equal(got, want) {
				t.Errorf("without placement: replicas = %v, want %v", got, want)
			}
			// Informer lists come in map order, so compare what the
			// snapshots say rather than their layout.
			want := replicaPods(full)
			if !tc.wantPlacement {
				want = replicaPods(&spread.Cluster{Services: full.Services})
			}
			if got := replicaPods(scrape); !slices.Equal(got, want) {
				t.Errorf("replicas and their pods = %v, want %v", got, want)
			}
		})
	}
}

// TestUnschedulableNodes: the nodes out of service by the rules of a
// snapshot, read without one.
func TestUnschedulableNodes(t *testing.T) {
	w, _ := startWatcher(t, Config{MaintenanceTaints: DefaultMaintenanceTaints},
		node("a", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
		node("b", func(n *corev1.Node) { n.Status.Conditions = nil }),
		node("c"),
		node("d", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/out-of-service", Effect: corev1.TaintEffectNoExecute}}
		}))
	c, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for name, n := range c.Nodes {
		if !n.Schedulable() {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	if got := w.UnschedulableNodes(); !slices.Equal(got, want) || len(got) != 3 {
		t.Errorf("UnschedulableNodes() = %v, want %v as in the snapshot (a, b, d)", got, want)
	}
	if got, want := w.NodesInService([]string{"d", "c", "gone", "a"}), []string{"c"}; !slices.Equal(got, want) {
		t.Errorf("NodesInService(d, c, gone, a) = %v, want %v", got, want)
	}
}

// replicaPods lists, sorted, each replica of c as service, node and the
// pod it leads to in the placement input ("?" for none).
func replicaPods(c *spread.Cluster) []string {
	var out []string
	for _, s := range c.Services {
		for _, r := range s.Replicas {
			name := "?"
			if i, ok := r.PlacementPod(); ok && c.Placement != nil {
				name = c.Placement.Pods[i].Template.Namespace + "/" + c.Placement.Pods[i].Name
			}
			out = append(out, fmt.Sprintf("%s/%s: %s=%s", s.Kind, s.Name, r.Node, name))
		}
	}
	slices.Sort(out)
	return out
}

// TestNodeResourceVersion: the version of a node the caches hold, as the
// API server wrote it; none for a node not held, nor for one whose version
// the caches keep only as a hash (not comparable with the API server's).
func TestNodeResourceVersion(t *testing.T) {
	w, _ := startWatcher(t, Config{},
		node("a", func(n *corev1.Node) { n.ResourceVersion = "4711" }),
		node("b", func(n *corev1.Node) { n.ResourceVersion = "not-a-number" }),
		node("c", func(n *corev1.Node) { n.ResourceVersion = "" }))
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"a", "4711", true},
		{"b", "", false},
		{"c", "", false},
		{"gone", "", false},
	} {
		if got, ok := w.NodeResourceVersion(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("NodeResourceVersion(%s) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
