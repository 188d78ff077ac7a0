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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/jsonapi"
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
	PathWhatIf   = "/api/v1/whatif"
	PathPlan     = "/api/v1/whatif/plan"
	PathCampaign = "/api/v1/whatif/campaign"
)

// Limits on one request, so that no single question costs more than a
// bounded amount of memory and time (docs/whatif.md).
const (
	// MaxNodesPerRequest bounds the distinct node names one request may
	// name (over all its batches); selectors are not counted, they can
	// only match nodes that exist.
	MaxNodesPerRequest = 10000
	// MaxBodyBytes bounds a POST body: 10,000 names of the longest a node
	// may have (253 bytes) fit, with room for JSON. A GET's query is bound
	// by the HTTP server's limit on request headers, 1 MiB, past which Go
	// answers 431 in plain text before any handler runs: large questions
	// are POSTed.
	MaxBodyBytes = 4 << 20
	// maxBatches bounds the batches of a plan.
	maxBatches = 1000
	// maxCampaignBatches bounds the batches of a campaign: each is a
	// placement simulation, and each remedy tried simulates them all
	// again.
	maxCampaignBatches = 100
	// maxRemedyBatchesAsked bounds the remedy search a question may ask
	// for: some 9 s at 150,000 pods, 45 ms a batch.
	maxRemedyBatchesAsked = 200
)

// Handler serves the what-if API:
//
//	GET  /api/v1/whatif?node=A&node=B          (or node=A,B)
//	GET  /api/v1/whatif?selector=maintenance=batch-3
//	POST /api/v1/whatif       {"nodes": ["A", "B"], "selectors": ["rack=a"]}
//	GET  /api/v1/whatif/plan?batch=A,B&batch=C,D
//	POST /api/v1/whatif/plan  {"batches": [["A", "B"], ["C", "D"]]}
//	GET  /api/v1/whatif/campaign?batch=A,B&batch=C,D&nodes_return=false&remedy_batches=40
//	POST /api/v1/whatif/campaign {"batches": [["A", "B"]], "nodes_return": false, "remedy_batches": 40}
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
	// used is when a question last took base; expiry, while base is
	// kept, checks it (see expire).
	used   time.Time
	expiry *time.Timer

	// judging is AskNodes' snapshot; maxStaleness is MaxStaleness, and
	// now time.Now, but in tests.
	judging      judgingBaseline
	maxStaleness time.Duration
	now          func() time.Time
}

// A kept baseline is checked every baselineCheck, and dropped once the
// caches changed (no question can use it any more) or after baselineIdle
// without a question. At 150,000 pods it holds some 60 MB (the snapshot
// with every pod in the placement model's form, its analysis and their
// indexes), which an exporter that answered one question would otherwise
// keep until the next, however long that is.
const (
	baselineCheck = 10 * time.Second
	baselineIdle  = 2 * time.Minute
)

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

// NewHandler returns the what-if handler; mount it at PathWhatIf,
// PathPlan and PathCampaign.
func NewHandler(source Source, options spread.Options, logger *slog.Logger) *Handler {
	return &Handler{
		source: source, options: options, logger: logger, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		maxStaleness: MaxStaleness, now: time.Now,
	}
}

// ServeHTTP answers a what-if or plan request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PathWhatIf && r.URL.Path != PathPlan && r.URL.Path != PathCampaign {
		jsonapi.WriteError(w, http.StatusNotFound, "no such API path %s", jsonapi.Shorten(r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		jsonapi.WriteError(w, http.StatusMethodNotAllowed, "method %s not allowed, use GET or POST", r.Method)
		return
	}
	// The slot is taken before the question is parsed: parsing 10,000
	// names is most of what a large question costs.
	timer := time.NewTimer(slotWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-r.Context().Done():
		return
	case <-timer.C:
		w.Header().Set("Retry-After", "5")
		jsonapi.WriteError(w, http.StatusServiceUnavailable, "too many what-if questions at once, retry later")
		return
	}
	var q question
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if err := q.fromQuery(r.URL.Path, r.URL.Query()); err != nil {
			jsonapi.WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
	default:
		if status, err := q.fromBody(w, r); err != nil {
			jsonapi.WriteError(w, status, "%v", err)
			return
		}
	}
	if err := q.check(r.URL.Path); err != nil {
		jsonapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}

	base, err := h.baseline()
	if err != nil {
		jsonapi.WriteError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	switch r.URL.Path {
	case PathPlan:
		h.servePlan(w, base, q.batches)
		return
	case PathCampaign:
		h.serveCampaign(w, base, q)
		return
	}
	h.serveWhatIf(w, base, q)
}

// question is what a request asks, from its query or its JSON body.
type question struct {
	Nodes     []string   `json:"nodes"`
	Selectors []string   `json:"selectors"`
	Batches   [][]string `json:"batches"`
	// NodesReturn is a campaign's: nil means true, nodes come back.
	NodesReturn *bool `json:"nodes_return"`
	// RemedyBatches is a campaign's bound on its remedy search, in
	// batches simulated: nil means the default (remedyBudget).
	RemedyBatches *int `json:"remedy_batches"`
	batches       [][]string
}

// takesBatches: the path's question is ordered batches.
func takesBatches(path string) bool { return path == PathPlan || path == PathCampaign }

func (q *question) fromQuery(path string, query url.Values) error {
	if takesBatches(path) {
		params := []string{"batch"}
		if path == PathCampaign {
			params = append(params, "nodes_return", "remedy_batches")
		}
		if err := jsonapi.OnlyParams(query, params...); err != nil {
			return err
		}
		for _, batch := range query["batch"] {
			q.Batches = append(q.Batches, jsonapi.SplitLists([]string{batch}))
		}
		if values, ok := query["nodes_return"]; ok {
			if len(values) != 1 || values[0] != "true" && values[0] != "false" {
				return errors.New("nodes_return must be given once, true or false")
			}
			back := values[0] == "true"
			q.NodesReturn = &back
		}
		if values, ok := query["remedy_batches"]; ok {
			n, err := strconv.Atoi(values[0])
			if len(values) != 1 || err != nil {
				return fmt.Errorf("remedy_batches must be given once, a whole number from 0 to %d", maxRemedyBatchesAsked)
			}
			q.RemedyBatches = &n
		}
		return nil
	}
	if err := jsonapi.OnlyParams(query, "node", "selector"); err != nil {
		return err
	}
	q.Nodes = jsonapi.SplitLists(query["node"])
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
		// The decoder quotes what it choked on (an unknown field's name).
		return http.StatusBadRequest, fmt.Errorf("body is not a what-if question: %s", jsonapi.Shorten(err.Error()))
	}
	if decoder.More() {
		return http.StatusBadRequest, errors.New("body holds more than one JSON value")
	}
	if r.URL.Path == PathPlan && (q.Nodes != nil || q.Selectors != nil || q.NodesReturn != nil || q.RemedyBatches != nil) {
		return http.StatusBadRequest, errors.New(`a plan takes "batches" only`)
	}
	if r.URL.Path == PathCampaign && (q.Nodes != nil || q.Selectors != nil) {
		return http.StatusBadRequest, errors.New(`a campaign takes "batches", "nodes_return" and "remedy_batches" only`)
	}
	if r.URL.Path == PathWhatIf && (q.Batches != nil || q.NodesReturn != nil || q.RemedyBatches != nil) {
		return http.StatusBadRequest, errors.New(`"batches" belong to ` + PathPlan + " or " + PathCampaign)
	}
	q.Nodes = jsonapi.SplitLists(q.Nodes)
	for i, batch := range q.Batches {
		q.Batches[i] = jsonapi.SplitLists(batch)
	}
	return 0, nil
}

// check applies the rules every question follows however it was asked.
func (q *question) check(path string) error {
	names := len(q.Nodes)
	if takesBatches(path) {
		if len(q.Batches) == 0 {
			return errors.New("no batch given: use batch=node-a,node-b&batch=node-c")
		}
		// A campaign's own, lower bound first: a campaign of more batches
		// than a plan may have is told the campaign's.
		if path == PathCampaign && len(q.Batches) > maxCampaignBatches {
			return fmt.Errorf("%d batches: at most %d per campaign", len(q.Batches), maxCampaignBatches)
		}
		if len(q.Batches) > maxBatches {
			return fmt.Errorf("%d batches: at most %d per plan", len(q.Batches), maxBatches)
		}
		if b := q.RemedyBatches; b != nil && (*b < 0 || *b > maxRemedyBatchesAsked) {
			return fmt.Errorf("remedy_batches %d: a whole number from 0 to %d", *b, maxRemedyBatchesAsked)
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
			// The parser's message quotes the offending value in full.
			jsonapi.WriteError(w, http.StatusBadRequest, "selector %q: %s", jsonapi.Shorten(selector), jsonapi.Shorten(err.Error()))
			return
		}
		if len(matched) == 0 {
			jsonapi.WriteError(w, http.StatusBadRequest, "selector %q matches no node", jsonapi.Shorten(selector))
			return
		}
		nodes = append(nodes, matched...)
	}
	answer, err := ask(base.cluster, base.now, nodes, h.options)
	if err != nil {
		jsonapi.WriteError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	jsonapi.WriteJSON(w, answer, "  ")
}

func (h *Handler) servePlan(w http.ResponseWriter, base *baseline, batches [][]string) {
	plan, err := askPlan(base.cluster, base.now, batches, h.options)
	if err != nil {
		jsonapi.WriteError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	jsonapi.WriteJSON(w, plan, "  ")
}

func (h *Handler) serveCampaign(w http.ResponseWriter, base *baseline, q question) {
	nodesReturn := q.NodesReturn == nil || *q.NodesReturn
	remedyBatches := defaultRemedyBatches
	if q.RemedyBatches != nil {
		remedyBatches = *q.RemedyBatches
	}
	campaign, err := askCampaign(base.cluster, base.now, q.batches, nodesReturn, remedyBatches, h.options)
	if errors.Is(err, spread.ErrNoPlacement) {
		jsonapi.WriteError(w, http.StatusServiceUnavailable, "cannot answer a campaign: %v", err)
		return
	}
	if err != nil {
		jsonapi.WriteError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	jsonapi.WriteJSON(w, campaign, "  ")
}

// baseline returns the cached cluster and its analysis, taken anew when
// the source's generation changed (or always, for a source without one).
// Its error says the question cannot be answered yet.
func (h *Handler) baseline() (*baseline, error) {
	gen, generational := h.source.(Generational)
	h.mu.Lock()
	defer h.mu.Unlock()
	var generation uint64
	if generational {
		// Read before the snapshot: a change after it bumps the generation
		// again, so the next question cannot reuse a stale snapshot.
		generation = gen.Generation()
		if h.base != nil && generation == h.generation {
			h.used = time.Now()
			return h.base, nil
		}
		// Stale: drop it before taking the next, so that the garbage
		// collector never finds two of them live (some 60 MB each at
		// 150,000 pods) and sizes the heap for both. A question still
		// answering from it keeps it as long as it needs.
		h.base = nil
	}
	cluster, err := h.source.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("cannot answer yet: %w", err)
	}
	base := &baseline{cluster: cluster, now: spread.Analyze(cluster, h.options)}
	if cluster.Placement != nil {
		// Every question until the next change shares this snapshot:
		// index it once rather than walk its pods per question.
		cluster.Placement.Prepare()
	}
	if generational {
		h.base, h.generation, h.used = base, generation, time.Now()
		if h.expiry == nil {
			h.expiry = time.AfterFunc(baselineCheck, h.expire)
		}
	}
	return base, nil
}

// expire drops the kept baseline once it is stale or idle (see
// baselineCheck), else checks again later.
func (h *Handler) expire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	gen, _ := h.source.(Generational)
	if h.base == nil || gen == nil || gen.Generation() != h.generation || time.Since(h.used) >= baselineIdle {
		h.base, h.expiry = nil, nil
		return
	}
	h.expiry.Reset(baselineCheck)
}

// askError words the errors of Ask for the API's users.
func askError(err error) error {
	if errors.Is(err, spread.ErrNoNodes) {
		return errors.New("no node given: use node=NAME (repeatable) or selector=LABEL-SELECTOR")
	}
	return err
}
