package admission

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name.txt.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./admission/ -update)", err)
	}
	if got != string(want) {
		t.Errorf("answer differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestJudge pins the whole answer (golden files) for each kind of Node
// update, in both modes.
func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		// cluster is what the caches hold.
		cluster  *spread.Cluster
		old, new *corev1.Node
		result   result
	}{
		{name: "cordon-2001-warns-single-homed", cluster: mathoidDayOne(),
			old: node("kubernetes2001"), new: node("kubernetes2001", cordon), result: resultWarned},
		{name: "cordon-2002-after-2001-warns-no-replica-left", cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2002"), new: node("kubernetes2002", cordon), result: resultWarned},
		{name: "cordon-2003-holds-nothing-relevant", cluster: mathoidDayOne(),
			old: node("kubernetes2003"), new: node("kubernetes2003", cordon), result: resultSafe},
		{name: "maintenance-taint-warns", cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2002"), new: node("kubernetes2002", taint("node.kubernetes.io/out-of-service", corev1.TaintEffectNoExecute)), result: resultWarned},
		{name: "maintenance-label-warns", cluster: mathoidDayOne(),
			old: node("kubernetes2001"), new: node("kubernetes2001", label("maintenance", "batch-3")), result: resultWarned},

		// Updates that take no node out of service: never judged.
		{name: "other-label-unchanged", cluster: mathoidDayOne(),
			old: node("kubernetes2001"), new: node("kubernetes2001", label("maintenance", "batch-4")), result: resultUnchanged},
		{name: "prefer-no-schedule-taint-unchanged", cluster: mathoidDayOne(),
			old: node("kubernetes2001"), new: node("kubernetes2001", taint("node.kubernetes.io/unschedulable", corev1.TaintEffectPreferNoSchedule)), result: resultUnchanged},
		{name: "uncordon-unchanged", cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2001", cordon), new: node("kubernetes2001"), result: resultUnchanged},
		// The node lifecycle controller taints a cordoned node: it was out
		// of service already.
		{name: "taint-of-a-cordoned-node-unchanged", cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2001", cordon), new: node("kubernetes2001", cordon, taint("node.kubernetes.io/unschedulable", corev1.TaintEffectNoSchedule)), result: resultUnchanged},
		// Cordoning a broken node is what operators should do, in deny
		// mode too: NotReady, it was out of service already.
		{name: "cordon-of-a-not-ready-node-unchanged", mode: ModeDeny, cluster: mathoidDayOne(),
			old: node("kubernetes2002", notReady), new: node("kubernetes2002", notReady, cordon), result: resultUnchanged},

		// Deny mode refuses only what leaves a service with no replica.
		{name: "deny-mode-cordon-2001-warns", mode: ModeDeny, cluster: mathoidDayOne(),
			old: node("kubernetes2001"), new: node("kubernetes2001", cordon), result: resultWarned},
		{name: "deny-mode-cordon-2002-refused", mode: ModeDeny, cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2002"), new: node("kubernetes2002", cordon), result: resultDenied},
		{name: "deny-mode-cordon-2002-overridden", mode: ModeDeny, cluster: mathoidDayOne("kubernetes2001"),
			old:    node("kubernetes2002", annotate(OverrideAnnotation, "T4711: disk failing, mathoid paged")),
			new:    node("kubernetes2002", annotate(OverrideAnnotation, "T4711: disk failing, mathoid paged"), cordon),
			result: resultOverridden},
		{name: "deny-mode-empty-override-refused", mode: ModeDeny, cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2002"), new: node("kubernetes2002", annotate(OverrideAnnotation, " "), cordon), result: resultDenied},
		// The annotation and the cordon in one update (kubectl patch).
		{name: "deny-mode-override-with-the-cordon", mode: ModeDeny, cluster: mathoidDayOne("kubernetes2001"),
			old: node("kubernetes2002"), new: node("kubernetes2002", annotate(OverrideAnnotation, "reimage T200"), cordon), result: resultOverridden},

		// A displaced replica that fits nowhere is the what-if API's
		// placement answer; the webhook judges the spread only (its
		// snapshot has no placement input), and 2 of 3 replicas on 2
		// nodes is no spread problem.
		{name: "no-room-is-not-judged", mode: ModeDeny,
			cluster: newClusterBuilder("a", "b", "c").deployment("batch", "heavy", 0, 6000, false, "a", "b", "c").c,
			old:     node("c"), new: node("c", cordon), result: resultSafe},
		{name: "many-services", cluster: manyServices(25),
			old: node("kubernetes2001"), new: node("kubernetes2001", cordon), result: resultWarned},
		{name: "many-nodes-out", cluster: mathoidDayOne("kubernetes2003", "kubernetes2004", "kubernetes2001"),
			old: node("kubernetes2002"), new: node("kubernetes2002", cordon), result: resultWarned},
		{name: "long-names", cluster: newClusterBuilder("node-"+strings.Repeat("n", 240)).
			deployment(strings.Repeat("s", 63), strings.Repeat("d", 250), 0, 1000, false, "node-"+strings.Repeat("n", 240), "node-"+strings.Repeat("n", 240)).c,
			old: node("node-" + strings.Repeat("n", 240)), new: node("node-"+strings.Repeat("n", 240), cordon), result: resultWarned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if mode == "" {
				mode = ModeWarn
			}
			h, metrics := newTestHandler(t, mode, &source{cluster: tc.cluster})
			x := post(t, h, reviewOf(t, tc.old, tc.new))
			if x.status != 200 {
				t.Fatalf("status %d: %s", x.status, x.raw)
			}
			golden(t, tc.name, x.text())
			if got := testutil.ToFloat64(metrics.requests.WithLabelValues(string(tc.result))); got != 1 {
				t.Errorf("kube_spread_admission_requests_total{result=%q} = %v, want 1", tc.result, got)
			}
			if x.review.Response.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" {
				t.Errorf("response uid %q, want the request's", x.review.Response.UID)
			}
			checkWarningLimits(t, x.review.Response)
			if (tc.result == resultDenied) == x.review.Response.Allowed {
				t.Errorf("result %s, allowed %t", tc.result, x.review.Response.Allowed)
			}
		})
	}
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }

// manyServices is a cluster where cordoning kubernetes2001 hurts n
// services: each has two replicas on 2001 and one on 2002.
func manyServices(n int) *spread.Cluster {
	b := newClusterBuilder(mathoidNodes...)
	for i := range n {
		b.deployment("wiki", "svc-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 0, 100, false, "kubernetes2001", "kubernetes2002")
	}
	return b.c
}

// checkWarningLimits: what the API server passes on without truncating
// (k8s.io/apiserver's warning recorder): lines of at most 256 runes, 4,096
// in all; printable.
func checkWarningLimits(t *testing.T, r *admissionv1.AdmissionResponse) {
	t.Helper()
	total := 0
	for _, w := range r.Warnings {
		runes := utf8.RuneCountInString(w)
		total += runes
		if runes > 256 {
			t.Errorf("warning of %d runes, more than 256: %q", runes, w)
		}
		if printable(w) != w {
			t.Errorf("warning with unprintable runes: %q", w)
		}
	}
	if total > 4096 {
		t.Errorf("warnings of %d runes in all, more than 4096", total)
	}
	if len(r.Warnings) > maxServiceLines+3 {
		t.Errorf("%d warnings, want at most %d", len(r.Warnings), maxServiceLines+3)
	}
}

// TestPendingChanges: `kubectl cordon kubernetes2001 kubernetes2002` sends
// the second cordon before the watch delivered the first; the webhook
// counts the node it admitted a moment ago as gone. A dry run, a refusal
// or an uncordon leaves nothing pending, and pending changes expire.
func TestPendingChanges(t *testing.T) {
	cordon2001 := reviewOf(t, node("kubernetes2001"), node("kubernetes2001", cordon))
	cordon2002 := reviewOf(t, node("kubernetes2002"), node("kubernetes2002", cordon))
	uncordon2001 := reviewOf(t, node("kubernetes2001", cordon), node("kubernetes2001"))
	uncordon2002 := reviewOf(t, node("kubernetes2002", cordon), node("kubernetes2002"))
	dryRun := reviewOf(t, node("kubernetes2001"), node("kubernetes2001", cordon), func(r *admissionv1.AdmissionRequest) { r.DryRun = new(true) })

	src := &source{cluster: mathoidDayOne()}
	h, _ := newTestHandler(t, ModeWarn, src)
	now := time.Unix(1530700000, 0)
	h.now = func() time.Time { return now }
	steps := []step{
		{"dry run of the 2001 cordon", dryRun, "single_homed", nil},
		{"2002 after a dry run of 2001: nothing pending", cordon2002, "single_homed", nil},
		{"uncordon 2002", uncordon2002, "ok: ", nil},
		{"cordon 2001", cordon2001, "single_homed", nil},
		{"2002 before the watch delivered 2001", cordon2002, "no_replicas_left", nil},
		{"uncordon 2002 again", uncordon2002, "ok: ", nil},
		{"uncordon 2001", uncordon2001, "ok: ", nil},
		{"2002 after 2001's uncordon: nothing pending", cordon2002, "single_homed", nil},
		{"uncordon 2002 a third time", uncordon2002, "ok: ", nil},
		{"cordon 2001 again", cordon2001, "single_homed", func() { now = now.Add(pendingFor) }},
		{"2002 once the pending cordon expired", cordon2002, "single_homed", func() { src.set(mathoidDayOne("kubernetes2001")) }},
		{"2002 once the caches hold 2001's cordon", cordon2002, "no_replicas_left", nil},
	}
	runSteps(t, h, steps)

	// Deny mode: a refused cordon is not pending.
	src = &source{cluster: mathoidDayOne("kubernetes2001")}
	h, _ = newTestHandler(t, ModeDeny, src)
	if x := post(t, h, cordon2002); x.review.Response.Allowed {
		t.Fatalf("deny mode admitted 2002 with 2001 cordoned:\n%s", x.text())
	}
	src.set(mathoidDayOne())
	if x := post(t, h, cordon2001); mathoidVerdict(x) != "single_homed" {
		t.Errorf("2001 after the refused 2002: %s, want single_homed (nothing pending)", mathoidVerdict(x))
	}
}

// step is one request of a sequence: what it is, the review, what the
// answer must say of mathoid, and a change of the time or the caches
// after it (nil for none).
type step struct {
	what   string
	review []byte
	want   string
	then   func()
}

// runSteps posts each step's review to h in turn.
func runSteps(t *testing.T, h *Handler, steps []step) {
	t.Helper()
	for _, step := range steps {
		x := post(t, h, step.review)
		if got := mathoidVerdict(x); got != step.want {
			t.Errorf("%s: %s, want %s", step.what, got, step.want)
		}
		if step.then != nil {
			step.then()
		}
	}
}

// mathoidVerdict is what an answer says of mathoid/Deployment/mathoid.
func mathoidVerdict(x exchange) string {
	w := strings.Join(x.review.Response.Warnings, "\n")
	if x.review.Response.Result != nil {
		w += x.review.Response.Result.Message
	}
	switch {
	case strings.Contains(w, "mathoid/Deployment/mathoid would have no replica left"):
		return "no_replicas_left"
	case strings.Contains(w, "mathoid/Deployment/mathoid would be single-homed"):
		return "single_homed"
	}
	return "ok: " + w
}

// versionedRules are rules whose caches hold each node at the version the
// test sets, as cluster.Watcher's do.
type versionedRules struct {
	Rules
	mu       sync.Mutex
	versions map[string]string
}

func (r *versionedRules) NodeResourceVersion(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.versions[name]
	return v, ok
}

func (r *versionedRules) set(name, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions[name] = version
}

// TestPendingEndsWhenTheCachesMoveOn: a node admitted out of service is
// counted as gone until the caches hold a version of it from after the
// change; from then on they say what it is. Through two exporter replicas
// the uncordon may pass through the other one: this one must not refuse
// the next cordon for a node back in service. Caches that lag behind
// the change's old version keep the memory.
func TestPendingEndsWhenTheCachesMoveOn(t *testing.T) {
	// The API server sends the node at version 4711 before the change.
	cordon2001 := reviewOf(t, node("kubernetes2001"), node("kubernetes2001", cordon))
	cordon2002 := reviewOf(t, node("kubernetes2002"), node("kubernetes2002", cordon))
	uncordon2002 := reviewOf(t, node("kubernetes2002", cordon), node("kubernetes2002"))
	src := &source{cluster: mathoidDayOne()}
	r := &versionedRules{Rules: rules(t), versions: map[string]string{"kubernetes2001": "4711"}}
	h := NewHandler(r, whatif.NewHandler(src, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler)), Options{Mode: ModeDeny})
	steps := []step{
		{"cordon 2001", cordon2001, "single_homed", nil},
		{"2002 before the caches hold 2001's cordon", cordon2002, "no_replicas_left", func() {
			// Cordoned and uncordoned (through the other replica) since.
			r.set("kubernetes2001", "4713")
		}},
		{"2002 once the caches hold 2001 back in service", cordon2002, "single_homed", nil},
		{"uncordon 2002", uncordon2002, "ok: ", func() { r.set("kubernetes2001", "4700") }},
		{"cordon 2001 on caches behind its old version", cordon2001, "single_homed", nil},
		{"2002 while the caches are behind 2001's old version", cordon2002, "no_replicas_left", func() { r.set("kubernetes2001", "4711") }},
		{"2002 once the caches hold 2001's old version", cordon2002, "no_replicas_left", func() {
			r.set("kubernetes2001", "4712")
			src.set(mathoidDayOne("kubernetes2001"))
		}},
		{"2002 once the caches hold 2001's cordon", cordon2002, "no_replicas_left", func() {
			r.set("kubernetes2001", "4713")
			src.set(mathoidDayOne())
		}},
		{"2002 once the caches hold 2001's uncordon", cordon2002, "single_homed", nil},
	}
	runSteps(t, h, steps)
}

// TestNotJudgedIsPending: a cordon admitted without a judgement (caches
// not synced) is remembered like any admitted one: the next cordon is
// judged with it.
func TestNotJudgedIsPending(t *testing.T) {
	src := &source{err: errors.New("informer caches have not synced yet")}
	h, metrics := newTestHandler(t, ModeWarn, src)
	post(t, h, reviewOf(t, node("kubernetes2001"), node("kubernetes2001", cordon)))
	if got := testutil.ToFloat64(metrics.requests.WithLabelValues(string(resultNotJudged))); got != 1 {
		t.Fatalf("not_judged counted %v times, want 1", got)
	}
	src.mu.Lock()
	src.cluster, src.err = mathoidDayOne(), nil
	src.mu.Unlock()
	if x := post(t, h, reviewOf(t, node("kubernetes2002"), node("kubernetes2002", cordon))); mathoidVerdict(x) != "no_replicas_left" {
		t.Errorf("2002 after the cordon of 2001 not judged: %s, want no_replicas_left", mathoidVerdict(x))
	}
}

// TestNotJudged: when the what-if cannot answer, the change is admitted,
// in deny mode too, with one warning saying no check took place.
// TestStalenessWithinPending: the what-if may judge on a snapshot up to
// whatif.MaxStaleness old; a node this webhook admitted out of service
// must stay pending at least that long after the watch delivered it, or
// a cordon in between would judge without it.
func TestStalenessWithinPending(t *testing.T) {
	// Seconds for the watch to deliver a change, on a loaded API server.
	const watchDelay = 5 * time.Second
	if whatif.MaxStaleness+watchDelay > pendingFor {
		t.Errorf("whatif.MaxStaleness %s + a watch delay of %s > pendingFor %s", whatif.MaxStaleness, watchDelay, pendingFor)
	}
}

func TestNotJudged(t *testing.T) {
	cordon2002 := func(t *testing.T) []byte {
		return reviewOf(t, node("kubernetes2002"), node("kubernetes2002", cordon))
	}
	tests := []struct {
		name   string
		whatIf WhatIf
		// timeout is the API server's timeout parameter.
		timeout string
		want    string
	}{
		{name: "caches not synced", whatIf: whatif.NewHandler(&source{err: errors.New("informer caches have not synced yet")}, spread.Options{DefaultMinNodes: 2}, nil),
			want: "kube-spread-exporter could not judge taking kubernetes2002 out of service (cordoned): cannot answer yet: informer caches have not synced yet; check its services before draining it"},
		{name: "node not cached yet", whatIf: whatif.NewHandler(&source{cluster: newClusterBuilder("kubernetes2001").c}, spread.Options{DefaultMinNodes: 2}, nil),
			want: "kube-spread-exporter could not judge taking kubernetes2002 out of service (cordoned): unknown nodes: kubernetes2002; check its services before draining it"},
		{name: "out of time", whatIf: stuck{}, timeout: "1s",
			want: "kube-spread-exporter could not judge taking kubernetes2002 out of service (cordoned): no answer in time; check its services before draining it"},
		{name: "what-if panics", whatIf: panicking{},
			want: "kube-spread-exporter could not judge taking kubernetes2002 out of service (cordoned): what-if failed: index out of range; check its services before draining it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			metrics := NewMetrics()
			h := NewHandler(rules(t), tc.whatIf, Options{Mode: ModeDeny, Metrics: metrics})
			began := time.Now()
			x := do(t, h, "POST", PathNodes+"?timeout="+tc.timeout, "application/json", cordon2002(t))
			if x.status != 200 || !x.review.Response.Allowed {
				t.Fatalf("not admitted: %s", x.raw)
			}
			if got := strings.Join(x.review.Response.Warnings, "\n"); got != tc.want {
				t.Errorf("warnings\n%s\nwant\n%s", got, tc.want)
			}
			if got := testutil.ToFloat64(metrics.requests.WithLabelValues(string(resultNotJudged))); got != 1 {
				t.Errorf("not_judged counted %v times, want 1", got)
			}
			// Answered before the API server gives up (1s here).
			if tc.timeout == "1s" {
				if took := time.Since(began); took > 900*time.Millisecond || took < budget("1s") {
					t.Errorf("answered after %s, want after the %s budget and well before the 1s timeout", took, budget("1s"))
				}
			}
		})
	}
}

type stuck struct{}

func (stuck) AskNodes(ctx context.Context, _, _ []string) (*whatif.Answer, error) {
	<-ctx.Done()
	// Late, as a what-if still running when the budget ends.
	time.Sleep(50 * time.Millisecond)
	return nil, ctx.Err()
}

type panicking struct{}

func (panicking) AskNodes(context.Context, []string, []string) (*whatif.Answer, error) {
	panic("index out of range")
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		timeout string
		want    time.Duration
	}{
		{"3s", 2500 * time.Millisecond},
		{"1s", 500 * time.Millisecond},
		{"", 9500 * time.Millisecond},
		{"junk", 9500 * time.Millisecond},
		{"-5s", 9500 * time.Millisecond},
		{"1h", 29500 * time.Millisecond},
		{"600ms", 300 * time.Millisecond},
	} {
		if got := budget(tc.timeout); got != tc.want {
			t.Errorf("budget(%q) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}

// TestMetrics pins the exposition of the self-metrics after a few
// requests: every result has a series from the start.
func TestMetrics(t *testing.T) {
	h, metrics := newTestHandler(t, ModeDeny, &source{cluster: mathoidDayOne("kubernetes2001")})
	post(t, h, reviewOf(t, node("kubernetes2002"), node("kubernetes2002", cordon)))
	post(t, h, reviewOf(t, node("kubernetes2003"), node("kubernetes2003", cordon)))
	post(t, h, reviewOf(t, node("kubernetes2003"), node("kubernetes2003", label("team", "search"))))
	post(t, h, []byte("{"))
	want := `# HELP kube_spread_admission_requests_total Admission requests received by the webhook, by result: invalid, unchanged, safe, warned, denied, overridden, not_judged.
# TYPE kube_spread_admission_requests_total counter
kube_spread_admission_requests_total{result="denied"} 1
kube_spread_admission_requests_total{result="invalid"} 1
kube_spread_admission_requests_total{result="not_judged"} 0
kube_spread_admission_requests_total{result="overridden"} 0
kube_spread_admission_requests_total{result="safe"} 1
kube_spread_admission_requests_total{result="unchanged"} 1
kube_spread_admission_requests_total{result="warned"} 0
`
	if err := testutil.CollectAndCompare(metrics, strings.NewReader(want), "kube_spread_admission_requests_total"); err != nil {
		t.Error(err)
	}
	// The two judged requests, not the others.
	if got := testutil.CollectAndCount(metrics, "kube_spread_admission_duration_seconds"); got != 1 {
		t.Errorf("%d duration series, want 1", got)
	}
	if got := histogramCount(t, metrics); got != 2 {
		t.Errorf("duration observed %d times, want 2 (the judged requests)", got)
	}
}
