package collector

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/jsonapi"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// API serves the JSON API of package api, for checks that need a verdict
// or the exporter's health without downloading and parsing the whole
// exposition: at 150,000 pods /metrics is tens of megabytes, an answer
// about one service a few hundred bytes. It reads the collector's cached
// analysis, the one /metrics writes: no second computation, and the same
// figures whichever a client reads.
type API struct {
	collector *Collector
	started   time.Time
	logger    *slog.Logger
}

// NewAPI returns the handler of api.PathServices and api.PathHealth;
// started is when the exporter began watching.
func NewAPI(c *Collector, started time.Time, logger *slog.Logger) *API {
	return &API{collector: c, started: started, logger: logger}
}

// ServeHTTP answers GET (and HEAD) on the API's paths.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		jsonapi.WriteError(w, http.StatusMethodNotAllowed, "method %s not allowed, use GET", r.Method)
		return
	}
	switch r.URL.Path {
	case api.PathServices:
		a.serveServices(w, r.URL.Query())
	case api.PathHealth:
		a.serveHealth(w, r.URL.Query())
	default:
		jsonapi.WriteError(w, http.StatusNotFound, "no such API path %s", r.URL.Path)
	}
}

// matcher is one anchored regular expression of a query, or the literal it
// amounts to: a check of one service asks for exact names, and comparing
// strings keeps that request cheap in a cluster of 15,000 services.
type matcher struct {
	re      *regexp.Regexp
	literal *string
}

func newMatcher(param, expr string) (matcher, error) {
	// (?s): "." matches a newline too, as the check's filters do, so that
	// ".*" selects every service whatever its name holds.
	re, err := regexp.Compile("(?s)^(?:" + expr + ")$")
	if err != nil {
		return matcher{}, fmt.Errorf("%s %q: %w", param, expr, err)
	}
	if parsed, err := syntax.Parse(expr, syntax.Perl); err == nil {
		if parsed = parsed.Simplify(); parsed.Op == syntax.OpLiteral && parsed.Flags&syntax.FoldCase == 0 {
			literal := string(parsed.Rune)
			return matcher{literal: &literal}, nil
		}
	}
	return matcher{re: re}, nil
}

// candidates returns the services a query can select. For exact names,
// what a check of one service asks, it is the one service found by binary
// search (the report is sorted by namespace, kind and name): scanning
// 30,000 services' names cost 4 ms of CPU per check at full size.
func candidates(services []spread.Figures, namespace, kind, name matcher) []spread.Figures {
	if namespace.literal == nil || kind.literal == nil || name.literal == nil {
		return services
	}
	i, found := slices.BinarySearchFunc(services, [3]string{*namespace.literal, *kind.literal, *name.literal}, func(f spread.Figures, key [3]string) int {
		return cmp.Or(
			strings.Compare(f.Service.Namespace, key[0]),
			strings.Compare(string(f.Service.Kind), key[1]),
			strings.Compare(f.Service.Name, key[2]),
		)
	})
	if !found {
		return nil
	}
	return services[i : i+1]
}

func (m matcher) match(s string) bool {
	switch {
	case m.literal != nil:
		return *m.literal == s
	case m.re != nil:
		return m.re.MatchString(s)
	}
	return true
}

func (a *API) serveServices(w http.ResponseWriter, query url.Values) {
	if err := jsonapi.OnlyParams(query, api.ParamNamespace, api.ParamKind, api.ParamName, api.ParamVerdict, api.ParamSeverity); err != nil {
		jsonapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var namespace, kind, name matcher
	for _, p := range []struct {
		param string
		dst   *matcher
	}{{api.ParamNamespace, &namespace}, {api.ParamKind, &kind}, {api.ParamName, &name}} {
		values := query[p.param]
		if len(values) > 1 {
			jsonapi.WriteError(w, http.StatusBadRequest, "%s given %d times; join alternatives with |", p.param, len(values))
			return
		}
		if len(values) == 1 {
			m, err := newMatcher(p.param, values[0])
			if err != nil {
				jsonapi.WriteError(w, http.StatusBadRequest, "%v", err)
				return
			}
			*p.dst = m
		}
	}
	verdicts := jsonapi.SplitLists(query[api.ParamVerdict])
	for _, v := range verdicts {
		if !slices.Contains([]string{string(spread.VerdictOK), string(spread.VerdictBelowMinNodes), string(spread.VerdictSingleHomed), string(spread.VerdictNoReplicasLeft)}, v) {
			jsonapi.WriteError(w, http.StatusBadRequest, "verdict %q: want ok, below_min_nodes, single_homed or no_replicas_left", v)
			return
		}
	}
	severities := jsonapi.SplitLists(query[api.ParamSeverity])
	for _, s := range severities {
		if !slices.Contains([]string{string(spread.SeverityCritical), string(spread.SeverityWarning), string(api.SeverityNone)}, s) {
			jsonapi.WriteError(w, http.StatusBadRequest, "severity %q: want critical, warning or none", s)
			return
		}
	}

	s := a.collector.analysis()
	if s == nil {
		a.notSynced(w)
		return
	}
	schedulableNodes := s.schedulableNodes()
	var findings []spread.Finding
	answer := api.Services{Services: []api.Service{}}
	selectable := candidates(s.report.Services, namespace, kind, name)
	for i := range selectable {
		f := &selectable[i]
		svc := f.Service
		if !namespace.match(svc.Namespace) || !kind.match(string(svc.Kind)) || !name.match(svc.Name) {
			continue
		}
		// Only the selected services' findings are worked out: a check of
		// one service costs a scan of names, not the findings of 30,000.
		findings = s.report.AppendFindings(findings[:0], f, schedulableNodes)
		severity := worstSeverity(findings)
		answer.Selected.Services++
		answer.Selected.ReplicasReady += f.ReplicasReady
		answer.Selected.ReplicasSchedulable += f.ReplicasSchedulable
		switch severity {
		case spread.SeverityCritical:
			answer.Selected.Critical++
		case spread.SeverityWarning:
			answer.Selected.Warning++
		}
		if len(verdicts) > 0 && !slices.Contains(verdicts, string(f.Verdict())) ||
			len(severities) > 0 && !slices.Contains(severities, string(severity)) {
			continue
		}
		answer.Services = append(answer.Services, apiService(f, findings, severity))
	}
	jsonapi.WriteJSON(w, answer, "")
}

// schedulableNodes counts the report's schedulable nodes once per analysis.
func (s *scrape) schedulableNodes() int {
	s.schedulableOnce.Do(func() { s.schedulable = s.report.SchedulableNodes() })
	return s.schedulable
}

func worstSeverity(findings []spread.Finding) spread.Severity {
	worst := api.SeverityNone
	for _, f := range findings {
		if f.Severity == spread.SeverityCritical {
			return spread.SeverityCritical
		}
		worst = f.Severity
	}
	return worst
}

func apiService(f *spread.Figures, findings []spread.Finding, severity spread.Severity) api.Service {
	out := api.Service{
		Namespace: f.Service.Namespace, Kind: f.Service.Kind, Name: f.Service.Name,
		Verdict: f.Verdict(), Severity: severity,
		ReplicasReady: f.ReplicasReady, ReplicasSchedulable: f.ReplicasSchedulable,
		Nodes: f.Nodes, SchedulableNodes: f.SchedulableNodes, MinNodes: f.MinNodes,
		Findings: make([]api.Finding, len(findings)),
	}
	if f.Service.DesiredReplicas >= 0 {
		desired := f.Service.DesiredReplicas
		out.ReplicasDesired = &desired
	}
	if len(f.NodeReplicas) == 1 {
		out.Node = f.NodeReplicas[0].Node
	}
	for i, finding := range findings {
		out.Findings[i] = api.Finding{Alert: finding.Alert, Severity: finding.Severity, TopologyKey: finding.TopologyKey}
	}
	return out
}

func (a *API) serveHealth(w http.ResponseWriter, query url.Values) {
	if err := jsonapi.OnlyParams(query); err != nil {
		jsonapi.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	source := a.collector.source
	answer := api.Health{
		Version:                     version.Version,
		Time:                        time.Now(),
		Started:                     a.started,
		ListWatchErrorWindowSeconds: cluster.ListWatchErrorWindow.Seconds(),
		Caches:                      []api.Cache{},
	}
	freshness := source.Freshness()
	if freshness.Probed {
		up := freshness.APIServerUp
		answer.APIServerUp = &up
	}
	answer.Confirmed = api.TimeOrNil(freshness.Confirmed)
	for _, s := range source.Status() {
		answer.Caches = append(answer.Caches, api.Cache{
			Resource: s.Resource, Synced: s.Synced, ListWatchErrors: s.ListWatchErrors,
			LastUpdate:  api.TimeOrNil(s.LastUpdate),
			ErrorsSince: api.TimeOrNil(s.ErrorsSince), LastError: api.TimeOrNil(s.LastError),
		})
	}
	slices.SortFunc(answer.Caches, func(a, b api.Cache) int { return strings.Compare(a.Resource, b.Resource) })
	jsonapi.WriteJSON(w, answer, "")
}

// notSynced answers 503, as /readyz does, naming the caches: until they
// have synced there is no analysis, and an empty list would read as safe.
func (a *API) notSynced(w http.ResponseWriter) {
	var waiting []string
	for _, s := range a.collector.source.Status() {
		if !s.Synced {
			waiting = append(waiting, s.Resource)
		}
	}
	jsonapi.WriteError(w, http.StatusServiceUnavailable, "informer caches not synced: %s", strings.Join(waiting, ", "))
}
