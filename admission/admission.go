// Package admission is the exporter's validating admission webhook for
// Node updates. The one moment every operator and every tool passes
// through is the write to the API server: `kubectl cordon`, `kubectl
// drain`, a maintenance taint or label. When such a write takes a node
// out of service, the API server asks the webhook, which runs the what-if
// of package whatif for that node (the nodes already out of service count
// as gone, as in GET /api/v1/whatif) and answers with warnings naming each
// service the change hurts; kubectl prints them ("Warning: ...").
//
// In deny mode a change that leaves a service with no replica is refused,
// unless the node carries the override annotation. Nothing else is ever
// refused: requests the webhook does not judge, changes that take no node
// out of service, and every case where it cannot judge (caches not synced,
// out of time) are allowed, as the shipped failurePolicy Ignore allows
// them when the exporter does not answer at all.
package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/jsonapi"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// PathNodes is where the API server sends AdmissionReviews of Node updates.
const PathNodes = "/admission/v1/nodes"

// OverrideAnnotation on a node lets deny mode admit a change that takes it
// out of service however many services it hurts: for emergencies (a node
// failing, a security reimage). Its value is the reason, logged with the
// change; an empty value is no override. The warnings are still given.
const OverrideAnnotation = "kube-spread.io/admission-override"

// Mode says what the webhook does with a change that hurts services.
type Mode string

const (
	// ModeWarn admits every change, with warnings.
	ModeWarn Mode = "warn"
	// ModeDeny refuses a change that leaves a service with no replica,
	// unless the node carries OverrideAnnotation; it warns about the rest.
	ModeDeny Mode = "deny"
)

// Modes are the values of --admission.mode.
var Modes = []string{string(ModeWarn), string(ModeDeny)}

// MaxBodyBytes bounds an AdmissionReview: it carries the node twice (object
// and oldObject), and the API server stores no object above 1.5 MiB (etcd's
// default request limit); 8 MiB leaves room for JSON being larger than
// the stored protobuf.
const MaxBodyBytes = 8 << 20

// Rules says why a Node object is out of service, by the rules of the
// exporter's caches (cluster.Watcher).
type Rules interface {
	UnschedulableReasons(node *corev1.Node) []spread.Reason
}

// NodeVersions is what Rules with caches of their own also tell
// (cluster.Watcher): the resourceVersion of a node they hold, false when
// they hold none or cannot say. With it, a node admitted out of service is
// counted as gone only until the caches have seen that change or a later
// one; without it, for pendingFor.
type NodeVersions interface {
	NodeResourceVersion(name string) (string, bool)
}

// WhatIf answers the what-if question (whatif.Handler).
type WhatIf interface {
	AskNodes(ctx context.Context, nodes, gone []string) (*whatif.Answer, error)
}

// Options configure the handler.
type Options struct {
	// Mode is ModeWarn when empty.
	Mode Mode
	// Logger receives refusals, overrides and requests it cannot read;
	// nil discards them.
	Logger *slog.Logger
	// Metrics counts the requests; nil counts nothing.
	Metrics *Metrics
}

// Handler serves PathNodes.
type Handler struct {
	rules   Rules
	whatIf  WhatIf
	mode    Mode
	logger  *slog.Logger
	metrics *Metrics
	pending pendingChanges
	// versions is rules' NodeVersions, nil when it has none.
	versions NodeVersions
	// now is time.Now, but in tests.
	now func() time.Time
}

// NewHandler returns the webhook's handler; mount it at PathNodes.
func NewHandler(rules Rules, whatIf WhatIf, opts Options) *Handler {
	h := &Handler{rules: rules, whatIf: whatIf, mode: opts.Mode, logger: opts.Logger, metrics: opts.Metrics, now: time.Now}
	h.versions, _ = rules.(NodeVersions)
	if h.mode == "" {
		h.mode = ModeWarn
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	return h
}

// result is what became of one request; the values are the label values
// of kube_spread_admission_requests_total.
type result string

const (
	// resultInvalid: not a readable AdmissionReview of a Node update
	// (answered 4xx, or allowed with the reason in result.message).
	resultInvalid result = "invalid"
	// resultUnchanged: a Node update that takes no node out of service.
	resultUnchanged result = "unchanged"
	// resultSafe: it takes a node out of service and hurts no service.
	resultSafe result = "safe"
	// resultWarned: admitted with warnings.
	resultWarned result = "warned"
	// resultDenied: refused (deny mode).
	resultDenied result = "denied"
	// resultOverridden: deny mode would refuse it; the override
	// annotation admitted it, with warnings.
	resultOverridden result = "overridden"
	// resultNotJudged: it takes a node out of service but the what-if
	// could not answer; admitted with a warning saying so.
	resultNotJudged result = "not_judged"
)

var results = []result{resultInvalid, resultUnchanged, resultSafe, resultWarned, resultDenied, resultOverridden, resultNotJudged}

// judged reports whether the request ran the what-if: the requests whose
// latency is observed.
func (r result) judged() bool { return r != resultInvalid && r != resultUnchanged }

// ServeHTTP answers an AdmissionReview. Bodies that are no readable
// admission.k8s.io/v1 AdmissionReview with a request get a 4xx and a JSON
// error: there is no UID to answer for. Everything else gets a 200 with
// the review's response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	review, status, err := readReview(w, r)
	if err != nil {
		h.logger.Warn("admission request not readable", "remote", r.RemoteAddr, "status", status, "err", jsonapi.Shorten(err.Error()))
		h.metrics.observe(resultInvalid, 0)
		jsonapi.WriteError(w, status, "%v", err)
		return
	}
	response, res := h.judge(r.Context(), review.Request, budget(r.URL.Query().Get("timeout")))
	out := &admissionv1.AdmissionReview{Response: response}
	body, err := runtime.Encode(responseEncoder, out)
	if err != nil {
		// Only a bug gets here; the API server then applies the
		// failurePolicy, Ignore as shipped.
		h.logger.Error("encode the admission response", "err", err)
		h.metrics.observe(resultInvalid, 0)
		jsonapi.WriteError(w, http.StatusInternalServerError, "encode the response: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	h.metrics.observe(res, time.Since(began))
}

var (
	scheme = newScheme()
	codecs = serializer.NewCodecFactory(scheme)
	// responseEncoder writes JSON with apiVersion and kind set, which
	// the API server checks.
	responseEncoder = codecs.EncoderForVersion(jsonSerializer(), admissionv1.SchemeGroupVersion)
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(admissionv1.AddToScheme(s))
	utilruntime.Must(corev1.AddToScheme(s))
	return s
}

func jsonSerializer() runtime.Encoder {
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		panic("admission: no JSON serializer")
	}
	return info.Serializer
}

// readReview reads the request's AdmissionReview; on error it returns the
// HTTP status to answer with.
func readReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, int, error) {
	if r.URL.Path != PathNodes {
		return nil, http.StatusNotFound, fmt.Errorf("no such path %s: the webhook serves %s", jsonapi.Shorten(r.URL.Path), PathNodes)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: the API server POSTs AdmissionReviews", jsonapi.Shorten(r.Method))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if media, _, err := mime.ParseMediaType(ct); err != nil || media != runtime.ContentTypeJSON {
			return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: an AdmissionReview is application/json", jsonapi.Shorten(ct))
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes: no AdmissionReview of a Node is that large", MaxBodyBytes)
	} else if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read the body: %w", err)
	}
	obj, gvk, err := codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("body is not an admission.k8s.io/v1 AdmissionReview: %s", jsonapi.Shorten(err.Error()))
	}
	review, ok := obj.(*admissionv1.AdmissionReview)
	if !ok {
		return nil, http.StatusBadRequest, fmt.Errorf("body is a %s, not an admission.k8s.io/v1 AdmissionReview", jsonapi.Shorten(gvk.String()))
	}
	if review.Request == nil {
		return nil, http.StatusBadRequest, errors.New("AdmissionReview without a request")
	}
	if review.Request.UID == "" {
		return nil, http.StatusBadRequest, errors.New("AdmissionReview request without a uid: the response could not name it")
	}
	return review, 0, nil
}

// Timing: the API server passes the webhook's timeoutSeconds as the
// timeout parameter of its call and gives up after it, applying the
// failurePolicy. The judgement must end before, so that a slow what-if
// still reaches the operator as "could not judge in time".
const (
	// defaultTimeout is the API's default timeoutSeconds, for a caller
	// that sends no timeout.
	defaultTimeout = 10 * time.Second
	// maxTimeout is the API's largest timeoutSeconds.
	maxTimeout = 30 * time.Second
	// answerMargin is kept for writing the answer and its trip back.
	answerMargin = 500 * time.Millisecond
)

// budget is how long a judgement may take, given the timeout parameter.
func budget(timeout string) time.Duration {
	d, err := time.ParseDuration(timeout)
	if err != nil || d <= 0 {
		d = defaultTimeout
	}
	d = min(d, maxTimeout)
	return max(d-answerMargin, d/2)
}

// judge answers one review's request.
func (h *Handler) judge(ctx context.Context, req *admissionv1.AdmissionRequest, budget time.Duration) (*admissionv1.AdmissionResponse, result) {
	allow := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	node, old, err := nodesOf(req)
	if err != nil {
		// Allowed: the webhook never refuses what it does not judge.
		h.logger.Warn("admission request not judged", "kind", jsonapi.Shorten(kindString(req.Kind)), "operation", jsonapi.Shorten(string(req.Operation)), "err", err)
		allow.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest,
			Message: "not judged: " + err.Error()}
		return allow, resultInvalid
	}
	dryRun := req.DryRun != nil && *req.DryRun
	// What a request names goes to the log bounded: the API server sends
	// valid names, anyone else who reaches the port may send anything.
	logNode, logUser := jsonapi.Shorten(node.Name), jsonapi.Shorten(req.UserInfo.Username)
	wasOut := h.rules.UnschedulableReasons(old)
	change := maintenanceReasons(h.rules.UnschedulableReasons(node))
	if len(wasOut) > 0 || len(change) == 0 {
		if len(change) == 0 && !dryRun {
			// Back in service (an uncordon): no longer pending.
			h.pending.forget(node.Name)
		}
		return allow, resultUnchanged
	}

	// The node's versions from before this change: the caches holding
	// another have seen it (or a later one) and say what the node is.
	before := [2]string{old.ResourceVersion, h.cachedVersion(node.Name)}
	admitted := func(res result) (*admissionv1.AdmissionResponse, result) {
		if !dryRun {
			h.pending.add(node.Name, before, h.now())
		}
		return allow, res
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	answer, err := h.ask(ctx, node.Name, h.pending.others(node.Name, h.now(), h.cachedVersion))
	if err != nil {
		h.logger.Warn("could not judge taking a node out of service; admitted", "node", logNode, "user", logUser, "err", err)
		allow.Warnings = []string{notJudged(node.Name, change, err)}
		// Admitted all the same: the next change is judged with it.
		return admitted(resultNotJudged)
	}
	r := newReport(node.Name, change, answer)
	if len(r.hurt) == 0 {
		return admitted(resultSafe)
	}
	allow.Warnings = r.warnings()
	if h.mode != ModeDeny || !r.leavesNoReplica() {
		h.logger.Info("warned of a change that hurts services", "node", logNode, "user", logUser, "dry_run", dryRun, "services", r.serviceList())
		return admitted(resultWarned)
	}
	if reason, ok := overrideReason(node); ok {
		allow.Warnings = append(allow.Warnings, overridden(node.Name, reason))
		h.logger.Warn("admitted by the override annotation a change that leaves a service with no replica",
			"node", logNode, "user", logUser, "dry_run", dryRun, "reason", jsonapi.Shorten(reason), "services", r.serviceList())
		return admitted(resultOverridden)
	}
	h.logger.Warn("refused a change that leaves a service with no replica",
		"node", logNode, "user", logUser, "dry_run", dryRun, "services", r.serviceList())
	return &admissionv1.AdmissionResponse{
		UID: req.UID, Allowed: false,
		Result: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: r.denial()},
	}, resultDenied
}

// nodesOf returns the node as it would be and as it was, or says why the
// request is not one the webhook judges.
func nodesOf(req *admissionv1.AdmissionRequest) (node, old *corev1.Node, err error) {
	want := metav1.GroupVersionKind{Version: "v1", Kind: "Node"}
	switch {
	case req.Kind != want:
		return nil, nil, fmt.Errorf("the webhook judges Nodes, got a %s", jsonapi.Shorten(kindString(req.Kind)))
	case req.SubResource != "":
		return nil, nil, fmt.Errorf("the webhook judges Nodes, not their %s subresource", jsonapi.Shorten(req.SubResource))
	case req.Operation != admissionv1.Update:
		return nil, nil, fmt.Errorf("the webhook judges UPDATE, got %s", jsonapi.Shorten(string(req.Operation)))
	}
	if node, err = decodeNode("object", req.Object); err != nil {
		return nil, nil, err
	}
	if old, err = decodeNode("oldObject", req.OldObject); err != nil {
		return nil, nil, err
	}
	if node.Name == "" || node.Name != old.Name {
		return nil, nil, fmt.Errorf("object and oldObject name different nodes (%q, %q)", jsonapi.Shorten(node.Name), jsonapi.Shorten(old.Name))
	}
	return node, old, nil
}

func kindString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + " " + k.Kind
	}
	return k.Group + "/" + k.Version + " " + k.Kind
}

func decodeNode(field string, raw runtime.RawExtension) (*corev1.Node, error) {
	if len(raw.Raw) == 0 {
		return nil, fmt.Errorf("no %s", field)
	}
	obj, gvk, err := codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s is not a v1 Node: %s", field, jsonapi.Shorten(err.Error()))
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, fmt.Errorf("%s is a %s, not a v1 Node", field, jsonapi.Shorten(gvk.String()))
	}
	return node, nil
}

// maintenanceReasons keeps the reasons an operator or a tool sets through
// a Node update: cordon, maintenance taint, maintenance label. NotReady
// comes through the status subresource and deletion through DELETE, which
// the webhook is not called for.
func maintenanceReasons(reasons []spread.Reason) []spread.Reason {
	return slices.DeleteFunc(slices.Clone(reasons), func(r spread.Reason) bool {
		return r != spread.ReasonCordoned && r != spread.ReasonMaintenanceTaint && r != spread.ReasonMaintenanceLabel
	})
}

// errOutOfTime: the what-if did not answer within the budget.
var errOutOfTime = errors.New("no answer in time")

// ask runs the what-if for node, giving up when ctx ends. The what-if
// runs on its own goroutine so that an answer too late for the API server
// still leaves in time to say so; it then finishes in its analysis slot. A
// panic there is turned into an error: the webhook fails open, it must not
// take the exporter down.
func (h *Handler) ask(ctx context.Context, node string, gone []string) (*whatif.Answer, error) {
	type reply struct {
		answer *whatif.Answer
		err    error
	}
	done := make(chan reply, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- reply{err: fmt.Errorf("what-if failed: %v", p)}
			}
		}()
		answer, err := h.whatIf.AskNodes(ctx, []string{node}, gone)
		done <- reply{answer, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, whatif.ErrBusy) && ctx.Err() != nil {
			return nil, errOutOfTime
		}
		return r.answer, r.err
	case <-ctx.Done():
		return nil, errOutOfTime
	}
}

// cachedVersion returns the resourceVersion of the node the caches hold,
// "" when they hold none or cannot say.
func (h *Handler) cachedVersion(name string) string {
	if h.versions == nil {
		return ""
	}
	v, _ := h.versions.NodeResourceVersion(name)
	return v
}

// overrideReason returns the value of the override annotation, and
// whether it overrides (a reason is given).
func overrideReason(node *corev1.Node) (string, bool) {
	reason := node.Annotations[OverrideAnnotation]
	return reason, strings.TrimSpace(reason) != ""
}

// pendingChanges remembers the nodes this exporter admitted out of service
// a moment ago. The watch delivers a change to the caches in milliseconds,
// but a tool that takes nodes out one after the other (`kubectl cordon A
// B`, a drain loop) sends the next change sooner: judged without the first,
// the second cordon of the mathoid pair would read as single-homed, not as
// the outage it is. The what-if counts pending nodes as gone until the
// caches have seen the change (they hold a version of the node from after
// it) or an uncordon passes through this exporter, and for pendingFor at
// most. An uncordon through the other exporter replica reaches these
// caches as a later version of the node, so it ends the memory too. A
// change refused after the webhook admitted it (by another webhook, say)
// never reaches the caches: it is counted for pendingFor. The what-if
// judges on a snapshot up to whatif.MaxStaleness old, well inside
// pendingFor, and brings the nodes of that snapshot up to date.
type pendingChanges struct {
	mu    sync.Mutex
	nodes map[string]pendingNode
}

// pendingNode is one node admitted out of service.
type pendingNode struct {
	until time.Time
	// before are the node's resourceVersions from before the change: the
	// one the change replaced, and the one the caches held when it was
	// admitted ("" when they held none). The caches hold the first until
	// the change arrives, or the second while they lag behind.
	before [2]string
}

const (
	pendingFor = 10 * time.Second
	// maxPending bounds the memory a burst of admissions can take; a
	// burst that size is pending for pendingFor only.
	maxPending = 10000
)

func (p *pendingChanges) add(node string, before [2]string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if p.nodes == nil {
		p.nodes = make(map[string]pendingNode)
	}
	if len(p.nodes) < maxPending {
		p.nodes[node] = pendingNode{until: now.Add(pendingFor), before: before}
	}
}

func (p *pendingChanges) forget(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.nodes, node)
}

// others returns the pending nodes other than node, sorted. It forgets
// those the caches have seen change since: version returns the
// resourceVersion of a node the caches hold ("" when none).
func (p *pendingChanges) others(node string, now time.Time, version func(string) string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	var names []string
	for name, pending := range p.nodes {
		if v := version(name); v != "" && v != pending.before[0] && v != pending.before[1] {
			delete(p.nodes, name)
			continue
		}
		if name != node {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (p *pendingChanges) expire(now time.Time) {
	for name, pending := range p.nodes {
		if !now.Before(pending.until) {
			delete(p.nodes, name)
		}
	}
}
