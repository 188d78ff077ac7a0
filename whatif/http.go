package whatif

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

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

// Paths of the API.
const (
	PathWhatIf = "/api/v1/whatif"
	PathPlan   = "/api/v1/whatif/plan"
)

// Handler serves the what-if API:
//
//	GET /api/v1/whatif?node=A&node=B          (or node=A,B)
//	GET /api/v1/whatif?selector=maintenance=batch-3
//	GET /api/v1/whatif/plan?batch=A,B&batch=C,D
//
// Answers are JSON (see docs/whatif.md). Bad parameters, unknown nodes and
// selectors that match nothing are 400 with {"error": "..."}; caches that
// have not synced are 503: no answer pretends to be complete.
type Handler struct {
	source  Source
	options spread.Options
	logger  *slog.Logger
}

// NewHandler returns the what-if handler; mount it at PathWhatIf and
// PathPlan.
func NewHandler(source Source, options spread.Options, logger *slog.Logger) *Handler {
	return &Handler{source: source, options: options, logger: logger}
}

// ServeHTTP answers a what-if or plan request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method)
		return
	}
	switch r.URL.Path {
	case PathWhatIf:
		h.serveWhatIf(w, r.URL.Query())
	case PathPlan:
		h.servePlan(w, r.URL.Query())
	default:
		writeError(w, http.StatusNotFound, "no such API path %s", r.URL.Path)
	}
}

func (h *Handler) serveWhatIf(w http.ResponseWriter, query url.Values) {
	if err := onlyParams(query, "node", "selector"); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	cluster, ok := h.snapshot(w)
	if !ok {
		return
	}
	nodes := splitLists(query["node"])
	for _, selector := range query["selector"] {
		matched, err := h.source.NodesMatching(selector)
		if err != nil {
			writeError(w, http.StatusBadRequest, "selector %q: %v", selector, err)
			return
		}
		if len(matched) == 0 {
			writeError(w, http.StatusBadRequest, "selector %q matches no node", selector)
			return
		}
		nodes = append(nodes, matched...)
	}
	answer, err := Ask(cluster, nodes, h.options)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	writeJSON(w, answer)
}

func (h *Handler) servePlan(w http.ResponseWriter, query url.Values) {
	if err := onlyParams(query, "batch"); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var batches [][]string
	for i, batch := range query["batch"] {
		nodes := splitLists([]string{batch})
		if len(nodes) == 0 {
			writeError(w, http.StatusBadRequest, "batch %d is empty", i+1)
			return
		}
		batches = append(batches, nodes)
	}
	if len(batches) == 0 {
		writeError(w, http.StatusBadRequest, "no batch given: use batch=node-a,node-b&batch=node-c")
		return
	}
	cluster, ok := h.snapshot(w)
	if !ok {
		return
	}
	plan, err := AskPlan(cluster, batches, h.options)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", askError(err))
		return
	}
	writeJSON(w, plan)
}

func (h *Handler) snapshot(w http.ResponseWriter) (*spread.Cluster, bool) {
	cluster, err := h.source.Snapshot()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot answer yet: %v", err)
		return nil, false
	}
	return cluster, true
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
		return fmt.Errorf("unknown parameters %s; allowed: %s", strings.Join(unknown, ", "), strings.Join(allowed, ", "))
	}
	return nil
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
