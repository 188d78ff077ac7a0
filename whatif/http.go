package whatif

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Source is what the handler reads: the exporter's cached cluster.
type Source interface {
	// Snapshot returns the cluster as cached; an error while caches sync.
	Snapshot() (*spread.Cluster, error)
	// NodesMatching returns the names of the nodes a label selector
	// matches, or an error for an invalid selector.
	NodesMatching(selector string) ([]string, error)
}

// Generational is a Source whose Generation changes whenever Snapshot's
// content may have (cluster.Watcher): the handler then reuses one snapshot
// and its analysis for every question asked while nothing changed.
type Generational interface {
	Generation() uint64
}

// Paths of the API.
const (
	PathWhatIf = "/api/v1/whatif"
	PathPlan   = "/api/v1/whatif/plan"
)

// Limits on one request, so that no single question costs more than a
// bounded amount of memory and time (docs/whatif.md).
const (
	// MaxNodesPerRequest bounds the distinct node names one request may
	// name (over all its batches); selectors are not counted, they can
	// only match nodes that exist.
	MaxNodesPerRequest = 10000
	// MaxBodyBytes bounds a POST body: 10,000 names of the longest a node
	// may have (253 bytes) fit, with room for JSON.
	MaxBodyBytes = 4 << 20
	// MaxHeaderBytes is what the exporter's HTTP server accepts as request
	// line and headers, so that a GET naming MaxNodesPerRequest long names
	// reaches the handler and gets a JSON answer. Beyond it Go's server
	// answers 431 in plain text before any handler runs.
	MaxHeaderBytes = 4 << 20
	// maxBatches bounds the batches of a plan.
	maxBatches = 1000
)

// Handler serves the what-if API:
//
//	GET  /api/v1/whatif?node=A&node=B          (or node=A,B)
//	GET  /api/v1/whatif?selector=maintenance=batch-3
//	POST /api/v1/whatif       {"nodes": ["A", "B"], "selectors": ["rack=a"]}
//	GET  /api/v1/whatif/plan?batch=A,B&batch=C,D
//	POST /api/v1/whatif/plan  {"batches": [["A", "B"], ["C", "D"]]}
//
// Answers are JSON (see docs/whatif.md). Bad parameters, unknown nodes,
// empty selectors and selectors that match nothing are 400 with
// {"error": "..."}; caches that have not synced are 503: no answer
// pretends to be complete.
//
// At most a few questions are analysed at once (the rest wait for a slot),
// and questions asked while the caches are unchanged share one snapshot
// and one analysis of the cluster as it is: a burst of questions costs a
// bounded amount of memory.
type Handler struct {
	source  Source
	options spread.Options
	logger  *slog.Logger
	// slots bounds the analyses running at once.
	slots chan struct{}

	mu         sync.Mutex
	base       *baseline
	generation uint64
}

// baseline is a snapshot and its analysis, shared by the questions asked
// at one cache generation.
type baseline struct {
	cluster *spread.Cluster
	now     *spread.Report
}

// slotWait is how long a question waits for a free analysis slot before
// it is answered 503: a client that retries is better off than one whose
// connection hangs.
const slotWait = 30 * time.Second

// NewHandler returns the what-if handler; mount it at PathWhatIf and
// PathPlan.
func NewHandler(source Source, options spread.Options, logger *slog.Logger) *Handler {
	return &Handler{source: source, options: options, logger: logger, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

// ServeHTTP answers a what-if or plan request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PathWhatIf && r.URL.Path != PathPlan {
		writeError(w, http.StatusNotFound, "no such API path %s", r.URL.Path)
		return
	}
	var q question
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if err := q.fromQuery(r.URL.Path, r.URL.Query()); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	case http.MethodPost:
		if status, err := q.fromBody(w, r); err != nil {
			writeError(w, status, "%v", err)
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed, use GET or POST", r.Method)
		return
	}
	if err := q.check(r.URL.Path); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}

	timer := time.NewTimer(slotWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-r.Context().Done():
		return
	case <-timer.C:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many what-if questions at once, retry later")
		return
	}
	base, ok := h.baseline(w)
	if !ok {
		return
	}
	if r.URL.Path == PathPlan {
		h.servePlan(w, base, q.batches)
		return
	}
	h.serveWhatIf(w, base, q)
}

// question is what a request asks, from its query or its JSON body.
type question struct {
	Nodes     []string   `json:"nodes"`
	Selectors []string   `json:"selectors"`
	Batches   [][]string `json:"batches"`
	batches   [][]string
}

func (q *question) fromQuery(path string, query url.Values) error {
	if path == PathPlan {
		if err := onlyParams(query, "batch"); err != nil {
			return err
		}
		for _, batch := range query["batch"] {
			q.Batches = append(q.Batches, splitLists([]string{batch}))
		}
		return nil
	}
	if err := onlyParams(query, "node", "selector"); err != nil {
		return err
	}
	q.Nodes = splitLists(query["node"])
	q.Selectors = query["selector"]
	return nil
}

// fromBody reads a POST's JSON body; it returns the status to answer with
// its error.
func (q *question) fromBody(w http.ResponseWriter, r *http.Request) (int, error) {
	if r.URL.RawQuery != "" {
		return http.StatusBadRequest, errors.New("a POST takes its question from the JSON body only, not from the query")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if media, _, err := mime.ParseMediaType(ct); err != nil || media != "application/json" {
			return http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: send the question as application/json", ct)
		}
	}
	decoder := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(q); err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes: ask about at most %d nodes per request", MaxBodyBytes, MaxNodesPerRequest)
		}
		return http.StatusBadRequest, fmt.Errorf("body is not a what-if question: %w", err)
	}
	if decoder.More() {
		return http.StatusBadRequest, errors.New("body holds more than one JSON value")
	}
	if r.URL.Path == PathPlan && (q.Nodes != nil || q.Selectors != nil) {
		return http.StatusBadRequest, errors.New(`a plan takes "batches" only`)
	}
	if r.URL.Path == PathWhatIf && q.Batches != nil {
		return http.StatusBadRequest, errors.New(`"batches" belong to ` + PathPlan)
	}
	q.Nodes = splitLists(q.Nodes)
	for i, batch := range q.Batches {
		q.Batches[i] = splitLists(batch)
	}
	return 0, nil
}

// check applies the rules every question follows however it was asked.
func (q *question) check(path string) error {
	names := len(q.Nodes)
	if path == PathPlan {
		if len(q.Batches) == 0 {
			return errors.New("no batch given: use batch=node-a,node-b&batch=node-c")
		}
		if len(q.Batches) > maxBatches {
			return fmt.Errorf("%d batches: at most %d per plan", len(q.Batches), maxBatches)
		}
		for i, batch := range q.Batches {
			if len(batch) == 0 {
				return fmt.Errorf("batch %d is empty", i+1)
			}
			names += len(batch)
		}
		q.batches = q.Batches
	}
	for _, selector := range q.Selectors {
		if strings.TrimSpace(selector) == "" {
			// labels.Parse("") selects everything: an unset variable in a
			// guard would ask about the whole cluster.
			return errors.New("empty selector: it would select every node; name the nodes or give a selector")
		}
	}
	if names > MaxNodesPerRequest {
		return fmt.Errorf("%d node names: at most %d per request; split the question", names, MaxNodesPerRequest)
	}
	return nil
}

func (h *Handler) serveWhatIf(w http.ResponseWriter, base *baseline, q question) {
	nodes := q.Nodes
	for _, selector := range q.Selectors {
		matched, err := h.source.NodesMatching(selector)
		if err != nil {
			writeError(w, http.StatusBadRequest, "selector %q: %v", shorten(selector), err)
			return
		}
		if len(matched) == 0 {
			writeError(w, http.StatusBadRequest, "selector %q matches no node", shorten(selector))
			return
		}
		nodes = append(nodes, matched...)
	}
	answer, err := ask(base.cluster, base.now, nodes, h.options)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	writeJSON(w, answer)
}

func (h *Handler) servePlan(w http.ResponseWriter, base *baseline, batches [][]string) {
	plan, err := askPlan(base.cluster, base.now, batches, h.options)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	writeJSON(w, plan)
}

// baseline returns the cached cluster and its analysis, taken anew when
// the source's generation changed (or always, for a source without one).
func (h *Handler) baseline(w http.ResponseWriter) (*baseline, bool) {
	gen, generational := h.source.(Generational)
	h.mu.Lock()
	defer h.mu.Unlock()
	var generation uint64
	if generational {
		// Read before the snapshot: a change after it bumps the generation
		// again, so the next question cannot reuse a stale snapshot.
		generation = gen.Generation()
		if h.base != nil && generation == h.generation {
			return h.base, true
		}
	}
	cluster, err := h.source.Snapshot()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot answer yet: %v", err)
		return nil, false
	}
	base := &baseline{cluster: cluster, now: spread.Analyze(cluster, h.options)}
	if generational {
		h.base, h.generation = base, generation
	}
	return base, true
}

// askError words the errors of Ask for the API's users.
func askError(err error) error {
	if errors.Is(err, spread.ErrNoNodes) {
		return errors.New("no node given: use node=NAME (repeatable) or selector=LABEL-SELECTOR")
	}
	return err
}

// onlyParams rejects unknown query parameters: a misspelt "nodes=" must not
// silently ask about nothing.
func onlyParams(query url.Values, allowed ...string) error {
	var unknown []string
	for name := range query {
		if !slices.Contains(allowed, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		named := unknown
		if len(named) > maxNamed {
			named = append(slices.Clip(named[:maxNamed]), fmt.Sprintf("and %d more", len(unknown)-maxNamed))
		}
		for i := range named {
			named[i] = shorten(named[i])
		}
		return fmt.Errorf("unknown parameters %s; allowed: %s", strings.Join(named, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

// maxNamed and maxEcho bound what an error repeats of the request: an
// error line must stay short however large the request was.
const (
	maxNamed = 10
	maxEcho  = 200
)

// shorten cuts a value an error repeats to maxEcho bytes, on a rune
// boundary, saying how much was left out.
func shorten(value string) string {
	if len(value) <= maxEcho {
		return value
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(value[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d more bytes)", value[:cut], len(value)-cut)
}

// splitLists flattens comma-separated values, dropping empty items.
func splitLists(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", "  ")
	_ = encoder.Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}
