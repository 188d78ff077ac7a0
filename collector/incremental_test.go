package collector

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// TestIncrementalEqualsFull drives a real Watcher through random event
// sequences (pods created, moved, made ready or not and deleted, and
// adopted by other controllers; Deployments, ReplicaSets, StatefulSets,
// ReplicationControllers, Services and EndpointSlices created, changed
// and deleted; nodes added, cordoned, made not ready, moved to another
// zone and deleted) and after every event holds the incremental analysis
// to the full one on the same caches: the same figures, the same plain
// exposition bytes, and a gzip scrape that reads back as them. Scrapes of
// the incremental collector over HTTP and what-if questions run
// concurrently all along; make test runs it under -race.
func TestIncrementalEqualsFull(t *testing.T) {
	seen := placedSeen{kinds: map[spread.Kind]int{}}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { incrementalEqualsFull(t, seed, 150, &seen) })
	}
	// The events must make the placement matter: displaced pods that
	// find no room, and replicas with warm nodes to go to.
	if seen.displaced == 0 || seen.unplaceable == 0 || seen.warm == 0 {
		t.Errorf("%d scrapes placed displaced pods, %d times a service's found no room, %d times one had warm nodes: want all three", seen.displaced, seen.unplaceable, seen.warm)
	}
	for _, kind := range []spread.Kind{spread.KindDeployment, spread.KindStatefulSet, spread.KindReplicaSet, spread.KindReplicationController, spread.KindService} {
		if seen.kinds[kind] == 0 {
			t.Errorf("no %s was ever displaced: the events must displace every kind of service", kind)
		}
	}
	t.Logf("%d scrapes placed displaced pods; a service found no room %d times, had warm nodes %d times; displaced by kind %v", seen.displaced, seen.unplaceable, seen.warm, seen.kinds)
}

// placedSeen counts the scrapes that placed displaced pods, and the
// services that found no room, or had warm nodes, over all of them.
type placedSeen struct {
	displaced, unplaceable, warm int
	// kinds counts the services found displaced, by kind.
	kinds map[spread.Kind]int
}

func incrementalEqualsFull(t *testing.T, seed uint64, steps int, seen *placedSeen) {
	client := fake.NewClientset()
	w := startWatcher(t, client)
	options := Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}
	incremental := New(w, options, slog.New(slog.DiscardHandler))
	options.FullAnalysis = true
	full := New(w, options, slog.New(slog.DiscardHandler))
	if incremental.follower == nil || full.follower != nil {
		t.Fatal("the watcher must be followed by the incremental collector only")
	}
	handler := func(c *Collector) *Handler {
		registry := prometheus.NewRegistry()
		registry.MustRegister(c)
		return NewHandler(registry, c, slog.New(slog.DiscardHandler))
	}
	incrementalHandler, fullHandler := handler(incremental), handler(full)

	stop := make(chan struct{})
	var readers sync.WaitGroup
	server := httptest.NewServer(incrementalHandler)
	defer server.Close()
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				families, err := scrapeOverHTTP(server.URL)
				if err == nil {
					// Some replicas are on no node, or on one the
					// cluster does not have.
					err = checkInvariants(families, false)
				}
				if err != nil {
					t.Errorf("concurrent scrape: %v", err)
					return
				}
				if snapshot, err := w.Snapshot(); err == nil && len(snapshot.Nodes) > 0 {
					nodes := slices.Sorted(maps.Keys(snapshot.Nodes))[:1]
					if _, err := whatif.Ask(snapshot, nodes, spread.Options{DefaultMinNodes: 2}); err != nil {
						t.Errorf("what-if: %v", err)
						return
					}
				}
			}
		})
	}
	defer func() { close(stop); readers.Wait() }()

	r := rand.New(rand.NewPCG(seed, 20))
	e := &events{client: client, r: r, exists: map[string]bool{}}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	for step := range steps {
		before := w.Generation()
		what := e.next()
		deadline := time.Now().Add(10 * time.Second)
		for w.Generation() == before {
			if time.Now().After(deadline) {
				t.Fatalf("step %d (%s): the watcher did not see the event within 10s", step, what)
			}
			time.Sleep(100 * time.Microsecond)
		}
		got, want := incremental.analysis(), full.analysis()
		if (got == nil) != (want == nil) {
			t.Fatalf("step %d (%s): incremental analysis %v, full %v", step, what, got != nil, want != nil)
		}
		if got == nil {
			continue
		}
		if slices.ContainsFunc(want.services, func(s service) bool { return s.displaced }) {
			seen.displaced++
		}
		for _, s := range want.services {
			if s.unplaceable > 0 {
				seen.unplaceable++
			}
			if s.displaced && s.warmNodes > 0 {
				seen.warm++
			}
			if s.displaced {
				seen.kinds[s.Service.Kind]++
			}
		}
		// Replica.Pod indexes the snapshot's placement input: without
		// one, no replica may point into an old one.
		incremental.mu.Lock()
		base := incremental.base
		incremental.mu.Unlock()
		if base != nil && base.Placement == nil {
			for _, svc := range base.Services {
				if slices.ContainsFunc(svc.Replicas, func(r spread.Replica) bool { return r.Pod != 0 }) {
					t.Fatalf("step %d (%s): %s/%s/%s has replicas tied to a placement input the snapshot lacks", step, what, svc.Namespace, svc.Kind, svc.Name)
				}
			}
		}
		if diff := reportDifference(got.report, want.report); diff != "" {
			t.Fatalf("step %d (%s): %s", step, what, diff)
		}
		var gotText, wantText, gotGzip bytes.Buffer
		if err := incrementalHandler.Write(&gotText, format); err != nil {
			t.Fatal(err)
		}
		if err := fullHandler.Write(&wantText, format); err != nil {
			t.Fatal(err)
		}
		if gotText.String() != wantText.String() {
			t.Fatalf("step %d (%s): expositions differ: %s", step, what, firstDifference(wantText.String(), gotText.String()))
		}
		if err := incrementalHandler.writeGzip(&gotGzip, format); err != nil {
			t.Fatal(err)
		}
		if text := gunzipOneMember(t, gotGzip.Bytes()); !bytes.Equal(text, wantText.Bytes()) {
			t.Fatalf("step %d (%s): gzip exposition differs: %s", step, what, firstDifference(wantText.String(), string(text)))
		}
	}
	// The point is the incremental path: every analysis but the first
	// must have taken it, with pods displaced or not.
	incremental.mu.Lock()
	updates, analyses := incremental.updates, incremental.analyses
	incremental.mu.Unlock()
	if analyses-updates > 1 {
		t.Errorf("%d of %d analyses were updates of the one before; want all but the first", updates, analyses)
	}
	t.Logf("%d events, %d analyses, %d of them updates", steps, analyses, updates)
}

// reportDifference describes how two reports' figures differ, "" when
// they do not. The services' replicas are not compared: the full
// analysis drops them from what it keeps.
func reportDifference(got, want *spread.Report) string {
	if len(got.Services) != len(want.Services) {
		return fmt.Sprintf("%d services, want %d", len(got.Services), len(want.Services))
	}
	for i := range got.Services {
		g, w := comparable(got.Services[i]), comparable(want.Services[i])
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("service %d:\ngot  %+v\nwant %+v", i, g, w)
		}
	}
	if !reflect.DeepEqual(got.Nodes, want.Nodes) {
		return fmt.Sprintf("node figures:\ngot  %+v\nwant %+v", got.Nodes, want.Nodes)
	}
	if !reflect.DeepEqual(got.Domains, want.Domains) {
		return fmt.Sprintf("domains:\ngot  %+v\nwant %+v", got.Domains, want.Domains)
	}
	return ""
}

// comparableFigures are a service's figures without pointers.
type comparableFigures struct {
	Service spread.Service
	spread.Figures
}

func comparable(f spread.Figures) comparableFigures {
	svc := *f.Service
	svc.Replicas = nil
	f.Service = nil
	if len(f.NodeReplicas) == 0 {
		f.NodeReplicas = nil
	}
	if len(f.Domains) == 0 {
		f.Domains = nil
	}
	return comparableFigures{svc, f}
}

// events makes random changes to a small cluster through a clientset: each
// call to next makes one, which the watcher sees as one event.
type events struct {
	client *fake.Clientset
	r      *rand.Rand
	exists map[string]bool
}

func (e *events) pick(prefix string, n int) string { return fmt.Sprintf("%s-%d", prefix, e.r.IntN(n)) }

// upsertOrDelete creates, updates or deletes the object id names: create
// and update through upsert, delete through remove; deletes are rarer.
func (e *events) upsertOrDelete(id string, upsert func(create bool) error, remove func() error) string {
	var err error
	var what string
	switch {
	case e.exists[id] && e.r.IntN(5) == 0:
		err, what = remove(), "delete"
		delete(e.exists, id)
	case e.exists[id]:
		err, what = upsert(false), "update"
	default:
		err, what = upsert(true), "create"
		e.exists[id] = true
	}
	if err != nil {
		panic(fmt.Sprintf("%s %s: %v", what, id, err))
	}
	return what + " " + id
}

func (e *events) next() string {
	ctx := context.Background()
	// Mostly one namespace, so that pods, controllers and slices meet.
	ns := "a"
	if e.r.IntN(4) == 0 {
		ns = "b"
	}
	meta := func(name string, owner *metav1.OwnerReference) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: fmt.Sprint(e.r.Uint32())}
		if owner != nil {
			m.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		if e.r.IntN(4) == 0 {
			m.Annotations = map[string]string{spread.MinNodesAnnotation: []string{"1", "3", "bad"}[e.r.IntN(3)]}
		}
		return m
	}
	controller := func(kind, name string) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "u", Controller: ptr.To(true)}
	}
	replicas := func() *int32 { return ptr.To(int32(e.r.IntN(5))) }
	node := func() string {
		return []string{"", "ghost", "node-0", "node-1", "node-2", "node-3", "node-4"}[e.r.IntN(7)]
	}
	apply := func(create bool, c, u func() error) error {
		if create {
			return c()
		}
		return u()
	}
	del := metav1.DeleteOptions{}

	switch e.r.IntN(11) {
	case 0, 1: // a pod of some controller, or of none
		name := e.pick("pod", 12)
		var owner *metav1.OwnerReference
		switch e.r.IntN(5) {
		case 0:
			owner = controller("ReplicaSet", e.pick("rs", 4))
		case 1:
			owner = controller("StatefulSet", e.pick("sts", 3))
		case 2:
			owner = controller("ReplicationController", e.pick("rc", 2))
		case 3:
			owner = controller("DaemonSet", "ds")
		}
		// Requests and images, so that displaced pods find room or not,
		// and warm nodes or not.
		pod := &corev1.Pod{ObjectMeta: meta(name, owner), Spec: corev1.PodSpec{NodeName: node(), Containers: []corev1.Container{{
			Name: "app", Image: e.pick("image", 2) + ":1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(fmt.Sprintf("%dm", 500*(1+e.r.IntN(3))))}},
		}}}}
		ready := corev1.ConditionFalse
		if e.r.IntN(4) != 0 {
			ready = corev1.ConditionTrue
		}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		pods := e.client.CoreV1().Pods(ns)
		return e.upsertOrDelete("pod "+ns+"/"+name, func(create bool) error {
			return apply(create,
				func() error { _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); return err },
				func() error { _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); return err })
		}, func() error { return pods.Delete(ctx, name, del) })
	case 2, 3: // a ReplicaSet, of a Deployment or of none: adoption moves its pods
		name := e.pick("rs", 4)
		var owner *metav1.OwnerReference
		if e.r.IntN(3) != 0 {
			owner = controller("Deployment", e.pick("deploy", 2))

		}
		rs := &appsv1.ReplicaSet{ObjectMeta: meta(name, owner), Spec: appsv1.ReplicaSetSpec{Replicas: replicas()}}
		api := e.client.AppsV1().ReplicaSets(ns)
		return e.upsertOrDelete("replicaset "+ns+"/"+name, func(create bool) error {
			return apply(create,
				func() error { _, err := api.Create(ctx, rs, metav1.CreateOptions{}); return err },
				func() error { _, err := api.Update(ctx, rs, metav1.UpdateOptions{}); return err })
		}, func() error { return api.Delete(ctx, name, del) })
	case 4: // a Deployment, a StatefulSet or a ReplicationController
		api := e.client.AppsV1()
		switch e.r.IntN(3) {
		case 0:
			name := e.pick("deploy", 2)
			d := &appsv1.Deployment{ObjectMeta: meta(name, nil), Spec: appsv1.DeploymentSpec{Replicas: replicas()}}
			return e.upsertOrDelete("deployment "+ns+"/"+name, func(create bool) error {
				return apply(create,
					func() error { _, err := api.Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); return err },
					func() error { _, err := api.Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); return err })
			}, func() error { return api.Deployments(ns).Delete(ctx, name, del) })
		case 1:
			name := e.pick("sts", 3)
			s := &appsv1.StatefulSet{ObjectMeta: meta(name, nil), Spec: appsv1.StatefulSetSpec{Replicas: replicas()}}
			return e.upsertOrDelete("statefulset "+ns+"/"+name, func(create bool) error {
				return apply(create,
					func() error { _, err := api.StatefulSets(ns).Create(ctx, s, metav1.CreateOptions{}); return err },
					func() error { _, err := api.StatefulSets(ns).Update(ctx, s, metav1.UpdateOptions{}); return err })
			}, func() error { return api.StatefulSets(ns).Delete(ctx, name, del) })
		default:
			name := e.pick("rc", 2)
			var owner *metav1.OwnerReference
			if e.r.IntN(4) == 0 {
				owner = controller("SomeOperator", "op")
			}
			rc := &corev1.ReplicationController{ObjectMeta: meta(name, owner), Spec: corev1.ReplicationControllerSpec{Replicas: replicas()}}
			rcs := e.client.CoreV1().ReplicationControllers(ns)
			return e.upsertOrDelete("replicationcontroller "+ns+"/"+name, func(create bool) error {
				return apply(create,
					func() error { _, err := rcs.Create(ctx, rc, metav1.CreateOptions{}); return err },
					func() error { _, err := rcs.Update(ctx, rc, metav1.UpdateOptions{}); return err })
			}, func() error { return rcs.Delete(ctx, name, del) })
		}
	case 5: // a Service, with a selector or without
		name := e.pick("svc", 3)
		svc := &corev1.Service{ObjectMeta: meta(name, nil)}
		if e.r.IntN(4) != 0 {
			svc.Spec.Selector = map[string]string{"app": name}
		}
		api := e.client.CoreV1().Services(ns)
		return e.upsertOrDelete("service "+ns+"/"+name, func(create bool) error {
			return apply(create,
				func() error { _, err := api.Create(ctx, svc, metav1.CreateOptions{}); return err },
				func() error { _, err := api.Update(ctx, svc, metav1.UpdateOptions{}); return err })
		}, func() error { return api.Delete(ctx, name, del) })
	case 6, 7: // an EndpointSlice: two per Service may list one pod twice
		name := e.pick("slice", 5)
		slice := &discoveryv1.EndpointSlice{ObjectMeta: meta(name, nil), AddressType: discoveryv1.AddressTypeIPv4}
		slice.Labels = map[string]string{discoveryv1.LabelServiceName: e.pick("svc", 3)}
		for range e.r.IntN(4) {
			// Where a pod runs, and whether it is ready, is one fact
			// however many slices list it. Slices that disagree (a pod
			// recreated elsewhere under its name, listed by a slice not
			// yet updated) leave it to the order of the cache's list
			// which one counts, for the full analysis too.
			i := e.r.IntN(10)
			ep := discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.0.0.%d", i)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(i%4 != 0)},
			}
			if i%6 != 0 {
				ep.NodeName = ptr.To(fmt.Sprintf("node-%d", i%6))
			}
			if e.r.IntN(3) != 0 {
				ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: fmt.Sprintf("pod-%d", i)}
			}
			slice.Endpoints = append(slice.Endpoints, ep)
		}
		api := e.client.DiscoveryV1().EndpointSlices(ns)
		return e.upsertOrDelete("endpointslice "+ns+"/"+name, func(create bool) error {
			return apply(create,
				func() error { _, err := api.Create(ctx, slice, metav1.CreateOptions{}); return err },
				func() error { _, err := api.Update(ctx, slice, metav1.UpdateOptions{}); return err })
		}, func() error { return api.Delete(ctx, name, del) })
	default: // a node: created, cordoned, not ready, in another zone, deleted
		name := e.pick("node", 5)
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: fmt.Sprint(e.r.Uint32()),
			Labels: map[string]string{"topology.kubernetes.io/zone": e.pick("zone", 3)}}}
		ready := corev1.ConditionTrue
		if e.r.IntN(12) == 0 {
			ready = corev1.ConditionFalse
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(fmt.Sprint(1 + e.r.IntN(2))), corev1.ResourcePods: resource.MustParse("110")}
		if e.r.IntN(2) == 0 {
			n.Status.Images = []corev1.ContainerImage{{Names: []string{e.pick("image", 2) + ":1"}}}
		}
		n.Spec.Unschedulable = e.r.IntN(6) == 0
		api := e.client.CoreV1().Nodes()
		return e.upsertOrDelete("node "+name, func(create bool) error {
			return apply(create,
				func() error { _, err := api.Create(ctx, n, metav1.CreateOptions{}); return err },
				func() error { _, err := api.Update(ctx, n, metav1.UpdateOptions{}); return err })
		}, func() error { return api.Delete(ctx, name, del) })
	}
}

var _ Followable = (*cluster.Watcher)(nil)
