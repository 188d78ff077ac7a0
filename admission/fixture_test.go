package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// The cluster of the tests is the mathoid cluster after day one: every
// mathoid replica on kubernetes2001 and 2002, as the caches hold it, with
// the placement model's input. Each node has room for 10 pods of 1 CPU.

var mathoidNodes = []string{"kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"}

// clusterBuilder builds a spread.Cluster with its placement input.
type clusterBuilder struct {
	c     *spread.Cluster
	index map[string]int32
}

func newClusterBuilder(nodes ...string) *clusterBuilder {
	b := &clusterBuilder{
		c:     &spread.Cluster{TopologyKeys: []string{"topology.kubernetes.io/zone"}, Nodes: map[string]*spread.Node{}, Placement: &placement.Cluster{}},
		index: map[string]int32{},
	}
	for i, name := range nodes {
		b.c.Nodes[name] = &spread.Node{Name: name, Domains: []string{fmt.Sprintf("row-%c", 'a'+i%2)}}
		b.c.Placement.Nodes = append(b.c.Placement.Nodes, placement.Node{
			Name:        name,
			Labels:      placement.Labels{{Key: "kubernetes.io/hostname", Value: name}},
			Allocatable: placement.Resources{MilliCPU: 10000, Memory: 64 << 30, Pods: 110},
		})
		b.index[name] = int32(i)
	}
	return b
}

// deployment adds a Deployment with one ready pod on each named node, of
// milliCPU each; withService adds the Service in front of it too.
func (b *clusterBuilder) deployment(namespace, name string, minNodes int, milliCPU int64, withService bool, on ...string) *clusterBuilder {
	t := &placement.Template{
		Namespace: namespace, Owner: "ReplicaSet/" + name + "-1", Labels: placement.Labels{{Key: "app", Value: name}},
		Requests:      placement.Resources{MilliCPU: milliCPU, Memory: 1 << 30, Pods: 1},
		ScoreMilliCPU: milliCPU, ScoreMemory: 1 << 30, Recreated: true,
	}
	var replicas []spread.Replica
	for i, node := range on {
		b.c.Placement.Pods = append(b.c.Placement.Pods, placement.Pod{Template: t, Name: fmt.Sprintf("%s-1-%d", name, i), Node: b.index[node], Ready: true})
		replicas = append(replicas, spread.Replica{Node: node, Ready: true, Pod: int32(len(b.c.Placement.Pods))})
	}
	b.c.Services = append(b.c.Services, &spread.Service{Namespace: namespace, Kind: spread.KindDeployment, Name: name, DesiredReplicas: len(on), MinNodes: minNodes, Replicas: replicas})
	if withService {
		b.c.Services = append(b.c.Services, &spread.Service{Namespace: namespace, Kind: spread.KindService, Name: name, DesiredReplicas: -1, MinNodes: minNodes, Replicas: replicas})
	}
	return b
}

func (b *clusterBuilder) out(reason spread.Reason, nodes ...string) *clusterBuilder {
	for _, n := range nodes {
		b.c.Nodes[n].Unschedulable = append(b.c.Nodes[n].Unschedulable, reason)
	}
	return b
}

// mathoidDayOne is the cluster of the replay after day one; the named
// nodes are cordoned in the caches.
func mathoidDayOne(cordoned ...string) *spread.Cluster {
	return newClusterBuilder(mathoidNodes...).
		deployment("mathoid", "mathoid", 0, 1000, true, "kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002").
		deployment("wiki", "spread", 0, 1000, false, mathoidNodes...).
		// One replica needs one node: losing it is expected.
		deployment("wiki", "solo", 0, 1000, false, "kubernetes2001").
		out(spread.ReasonCordoned, cordoned...).c
}

// source is the exporter's cache as the what-if reads it: a cluster the
// test may change between requests, or an error while caches sync.
type source struct {
	mu      sync.Mutex
	cluster *spread.Cluster
	err     error
}

func (s *source) Snapshot() (*spread.Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cluster, s.err
}

func (s *source) NodesMatching(string) ([]string, error) { return nil, nil }

func (s *source) set(c *spread.Cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cluster = c
}

// maintenanceSelector is the --node.maintenance-selector of the tests.
const maintenanceSelector = "maintenance=batch-3"

// rules are the exporter's rules: a cluster.Watcher, never started, with
// the default maintenance taints and the tests' selector.
func rules(t testing.TB) Rules {
	t.Helper()
	selector, err := labels.Parse(maintenanceSelector)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cluster.New(fake.NewClientset(), cluster.Config{MaintenanceTaints: cluster.DefaultMaintenanceTaints, MaintenanceSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// newTestHandler returns the webhook on the real what-if and rules, over
// src, and its metrics.
func newTestHandler(t testing.TB, mode Mode, src *source) (*Handler, *Metrics) {
	t.Helper()
	metrics := NewMetrics()
	whatIf := whatif.NewHandler(src, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	return NewHandler(rules(t), whatIf, Options{Mode: mode, Metrics: metrics}), metrics
}

// node is a Ready node of the replay, as the API server sends it.
func node(name string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			ResourceVersion: "4711",
			Labels:          map[string]string{"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "codfw-row-a"},
		},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func cordon(n *corev1.Node) { n.Spec.Unschedulable = true }

func annotate(key, value string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[key] = value
	}
}

func label(key, value string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Labels[key] = value }
}

func taint(key string, effect corev1.TaintEffect) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect}) }
}

// reviewOf is an AdmissionReview of a Node UPDATE from old to node, as
// the API server sends it; mutate changes the request.
func reviewOf(t testing.TB, old, node runtime.Object, mutate ...func(*admissionv1.AdmissionRequest)) []byte {
	t.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		body, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: body}
	}
	name := ""
	if m, ok := node.(metav1.Object); ok {
		name = m.GetName()
	}
	req := &admissionv1.AdmissionRequest{
		UID:         types.UID("705ab4f5-6393-11e8-b7cc-42010a800002"),
		Kind:        metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
		Resource:    metav1.GroupVersionResource{Version: "v1", Resource: "nodes"},
		Name:        name,
		Operation:   admissionv1.Update,
		UserInfo:    authenticationv1.UserInfo{Username: "akosiaris"},
		Object:      raw(node),
		OldObject:   raw(old),
		DryRun:      new(bool),
		RequestKind: &metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
	}
	for _, m := range mutate {
		m(req)
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// exchange is one request to the webhook and what came back.
type exchange struct {
	status int
	// review is the decoded answer of a 200, error the JSON error of
	// anything else.
	review *admissionv1.AdmissionReview
	error  string
	raw    string
}

func post(t testing.TB, h http.Handler, body []byte) exchange {
	t.Helper()
	return do(t, h, http.MethodPost, PathNodes+"?timeout=3s", "application/json", body)
}

func do(t testing.TB, h http.Handler, method, target, contentType string, body []byte) exchange {
	t.Helper()
	req := httptest.NewRequestWithContext(context.Background(), method, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	x := exchange{status: rec.Code, raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q, want application/json", method, target, ct)
	}
	if rec.Code != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: status %d with a body that is no JSON error: %q", method, target, rec.Code, rec.Body)
		}
		x.error = e.Error
		return x
	}
	x.review = &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(rec.Body.Bytes(), x.review); err != nil {
		t.Fatalf("%s %s: answer is no JSON AdmissionReview: %v\n%s", method, target, err, rec.Body)
	}
	if x.review.APIVersion != "admission.k8s.io/v1" || x.review.Kind != "AdmissionReview" || x.review.Response == nil || x.review.Request != nil {
		t.Fatalf("%s %s: answer is no AdmissionReview v1 with a response only (the API server checks): %s", method, target, rec.Body)
	}
	return x
}

// text is the answer as a person reads it: the golden files hold it.
func (x exchange) text() string {
	if x.review == nil {
		return fmt.Sprintf("status: %d\nerror: %s\n", x.status, x.error)
	}
	r := x.review.Response
	var b strings.Builder
	fmt.Fprintf(&b, "allowed: %t\n", r.Allowed)
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	if r.Result != nil {
		fmt.Fprintf(&b, "result: %d %s\n%s\n", r.Result.Code, r.Result.Reason, r.Result.Message)
	}
	return b.String()
}
