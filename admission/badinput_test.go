package admission

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func histogramCount(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(m)
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "kube_spread_admission_duration_seconds" {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no kube_spread_admission_duration_seconds")
	return 0
}

// TestBadInput: whatever comes in, a clear error status and never a
// panic; a review the webhook can answer is admitted, in either mode,
// unless it is a change it judges.
func TestBadInput(t *testing.T) {
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "mathoid-1-a", Namespace: "mathoid"}}
	cordonReview := func(mutate ...func(*admissionv1.AdmissionRequest)) []byte {
		return reviewOf(t, node("kubernetes2002"), node("kubernetes2002", cordon), mutate...)
	}
	raw := func(s string) func(*admissionv1.AdmissionRequest) {
		return func(r *admissionv1.AdmissionRequest) { r.Object = runtime.RawExtension{Raw: []byte(s)} }
	}
	// A huge node: its annotations take 5 MiB, below MaxBodyBytes.
	huge := node("kubernetes2002", cordon, annotate("example.org/blob", strings.Repeat("x", 5<<20)))
	tests := []struct {
		name               string
		method, target, ct string
		body               []byte
		status             int
		// errorHas is in the JSON error of a non-200, or in
		// result.message of an admitted review.
		errorHas string
	}{
		{name: "GET", method: "GET", status: 405, errorHas: "method GET not allowed"},
		{name: "other path", target: "/admission/v1/pods", status: 404, errorHas: "no such path /admission/v1/pods"},
		{name: "text body", ct: "text/plain", body: []byte("cordon"), status: 415, errorHas: `content type "text/plain"`},
		{name: "empty body", body: []byte{}, status: 400, errorHas: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "not JSON", body: []byte("{\"apiVersion\": "), status: 400, errorHas: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "JSON of no kind", body: []byte(`{"request": {"uid": "x"}}`), status: 400, errorHas: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "a Node instead of a review", body: mustJSON(t, node("kubernetes2002")), status: 400, errorHas: "body is a /v1, Kind=Node, not an admission.k8s.io/v1 AdmissionReview"},
		{name: "review v1beta1", body: []byte(`{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}`), status: 400, errorHas: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "review without request", body: []byte(`{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}`), status: 400, errorHas: "without a request"},
		{name: "review without uid", body: cordonReview(func(r *admissionv1.AdmissionRequest) { r.UID = "" }), status: 400, errorHas: "without a uid"},
		{name: "review with a wrong type", body: []byte(`{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}`), status: 400, errorHas: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "body too large", body: bytes.Repeat([]byte(" "), MaxBodyBytes+1), status: 413, errorHas: "larger than 8388608 bytes"},

		// Readable reviews the webhook does not judge: admitted, and
		// result.message says why.
		{name: "wrong kind", body: reviewOf(t, pod, pod, func(r *admissionv1.AdmissionRequest) {
			r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
			r.Operation = admissionv1.Create
		}), status: 200, errorHas: "not judged: the webhook judges Nodes, got a v1 Pod"},
		{name: "status subresource", body: cordonReview(func(r *admissionv1.AdmissionRequest) { r.SubResource = "status" }), status: 200, errorHas: "not their status subresource"},
		{name: "delete", body: cordonReview(func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Delete }), status: 200, errorHas: "judges UPDATE, got DELETE"},
		{name: "object is a Pod", body: cordonReview(func(r *admissionv1.AdmissionRequest) { r.Object = runtime.RawExtension{Raw: mustJSON(t, pod)} }), status: 200, errorHas: "object is a /v1, Kind=Pod, not a v1 Node"},
		{name: "object missing", body: cordonReview(func(r *admissionv1.AdmissionRequest) { r.Object = runtime.RawExtension{} }), status: 200, errorHas: "not judged: no object"},
		{name: "oldObject missing", body: reviewOf(t, nil, node("kubernetes2002", cordon)), status: 200, errorHas: "not judged: no oldObject"},
		{name: "object garbage", body: cordonReview(raw(`{"kind": "Node", "apiVersion": "v1", "spec": {"unschedulable": "yes"}}`)), status: 200, errorHas: "object is not a v1 Node"},
		{name: "object and oldObject differ", body: reviewOf(t, node("kubernetes2001"), node("kubernetes2002", cordon)), status: 200, errorHas: "name different nodes"},
		{name: "node without a name", body: reviewOf(t, node(""), node("", cordon)), status: 200, errorHas: "name different nodes"},
		{name: "unprintable name", body: reviewOf(t, node("kubernetes\x002002\u202e"), node("kubernetes\x002002\u202e", cordon)), status: 200},
		{name: "huge node, judged", body: reviewOf(t, node("kubernetes2002"), huge), status: 200},
	}
	for _, mode := range []Mode{ModeWarn, ModeDeny} {
		for _, tc := range tests {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				// Nothing cordoned: the one cordon judged hurts services but
				// leaves replicas, so deny mode admits it too.
				h, metrics := newTestHandler(t, mode, &source{cluster: mathoidDayOne()})
				method, target, ct := tc.method, tc.target, tc.ct
				if method == "" {
					method = "POST"
				}
				if target == "" {
					target = PathNodes
				}
				if ct == "" {
					ct = "application/json"
				}
				x := do(t, h, method, target, ct, tc.body)
				if x.status != tc.status {
					t.Fatalf("status %d, want %d: %.300s", x.status, tc.status, x.raw)
				}
				message := x.error
				if x.review != nil {
					if !x.review.Response.Allowed {
						t.Fatalf("refused: %s", x.text())
					}
					if r := x.review.Response.Result; r != nil {
						message = r.Message
						if r.Code != 400 {
							t.Errorf("result code %d, want 400 for a review not judged", r.Code)
						}
					}
					checkWarningLimits(t, x.review.Response)
				}
				if !strings.Contains(message, tc.errorHas) {
					t.Errorf("error %q does not contain %q", message, tc.errorHas)
				}
				if len(message) > 600 {
					t.Errorf("error of %d bytes: bounded errors repeat little of the request", len(message))
				}
				counted := 0.0
				for _, r := range results {
					counted += testutil.ToFloat64(metrics.requests.WithLabelValues(string(r)))
				}
				if counted != 1 {
					t.Errorf("%v requests counted, want 1", counted)
				}
			})
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// FuzzHandler: any body gets a clear status, never a panic, and in warn
// mode never a refusal.
func FuzzHandler(f *testing.F) {
	f.Add(reviewOf(f, node("kubernetes2001"), node("kubernetes2001", cordon)))
	f.Add(reviewOf(f, node("kubernetes2002"), node("kubernetes2002", taint("node.kubernetes.io/out-of-service", corev1.TaintEffectNoExecute))))
	f.Add(reviewOf(f, node("kubernetes2001", cordon), node("kubernetes2001")))
	f.Add(reviewOf(f, node("kubernetes2003"), node("kubernetes2003", label("maintenance", "batch-3"))))
	f.Add([]byte(`{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "kind": {"version": "v1", "kind": "Node"}, "operation": "UPDATE", "object": {}, "oldObject": null}}`))
	f.Add([]byte("{"))
	h, _ := newTestHandler(f, ModeWarn, &source{cluster: mathoidDayOne("kubernetes2004")})
	f.Fuzz(func(t *testing.T, body []byte) {
		x := post(t, h, body)
		switch x.status {
		case http.StatusOK:
			if !x.review.Response.Allowed {
				t.Fatalf("warn mode refused: %s", x.text())
			}
			checkWarningLimits(t, x.review.Response)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", x.status, x.raw)
		}
	})
}
