// Package api is the exporter's small JSON API for checks: the paths, the
// query parameters and the answers of /api/v1/services and /api/v1/health
// (docs/api.md). The exporter serves them from the same cached analysis as
// /metrics (collector/api.go); check_kube_spread reads them instead of the
// whole exposition when the exporter offers them.
//
// It imports nothing but the analysis, so that the check does not carry
// client-go or the Prometheus client: its size and memory are paid on
// every check run.
package api

import (
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Paths of the API.
const (
	PathServices = "/api/v1/services"
	PathHealth   = "/api/v1/health"
)

// Query parameters of PathServices. Namespace, kind and name are anchored
// RE2 regular expressions, as the exporter's --namespaces.include and the
// check's flags; an absent one selects all. Verdict and severity are
// repeatable (or comma-separated) lists of values; absent, every service
// is listed.
const (
	ParamNamespace = "namespace"
	ParamKind      = "kind"
	ParamName      = "name"
	// ParamVerdict lists services with one of these spread.Verdict values.
	ParamVerdict = "verdict"
	// ParamSeverity lists services whose worst finding has one of these
	// severities: critical, warning, or SeverityNone for no finding.
	ParamSeverity = "severity"
)

// SeverityNone is the severity of a service without findings.
const SeverityNone spread.Severity = "none"

// Services is the answer of PathServices.
type Services struct {
	// Selected sums up every service that namespace, kind and name
	// select, before verdict and severity narrow the list: a check of
	// every service needs the totals, not every service.
	Selected Totals `json:"selected"`
	// Services are the listed services, sorted by namespace, kind, name.
	Services []Service `json:"services"`
}

// Totals are the counts over the selected services.
type Totals struct {
	Services int `json:"services"`
	// Critical and Warning count services by their worst finding.
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
	// ReplicasReady and ReplicasSchedulable are sums; a Service and its
	// Deployment both count.
	ReplicasReady       int `json:"replicas_ready"`
	ReplicasSchedulable int `json:"replicas_schedulable"`
}

// Service is the figures and findings of one service (docs/metrics.md
// has the meaning of each figure).
type Service struct {
	Namespace string      `json:"namespace"`
	Kind      spread.Kind `json:"kind"`
	Name      string      `json:"name"`
	// Verdict is spread.(*Figures).Verdict: what maintenance leaves.
	Verdict spread.Verdict `json:"verdict"`
	// Severity is the worst severity of Findings, SeverityNone without.
	Severity spread.Severity `json:"severity"`
	// ReplicasDesired is absent for a Kubernetes Service.
	ReplicasDesired     *int `json:"replicas_desired,omitempty"`
	ReplicasReady       int  `json:"replicas_ready"`
	ReplicasSchedulable int  `json:"replicas_schedulable"`
	Nodes               int  `json:"nodes"`
	SchedulableNodes    int  `json:"schedulable_nodes"`
	MinNodes            int  `json:"min_nodes"`
	// Node is the one node holding every ready replica, when there is
	// exactly one: what a single-homed service's message names.
	Node string `json:"node,omitempty"`
	// Findings are the alert conditions that hold for the service
	// (spread.(*Report).Findings), in the order Findings returns them.
	Findings []Finding `json:"findings"`
}

// Finding is one alert condition that holds for a service.
type Finding struct {
	Alert    string          `json:"alert"`
	Severity spread.Severity `json:"severity"`
	// TopologyKey is set for KubeSpreadSingleTopologyDomain.
	TopologyKey string `json:"topology_key,omitempty"`
}

// Health is the answer of PathHealth: the facts behind the exporter's
// alerts (KubeSpreadCacheNotSynced, KubeSpreadCacheStale,
// KubeSpreadListWatchErrors), with the history a single scrape of
// /metrics lacks: since when each condition holds.
type Health struct {
	// Version is the exporter's version.
	Version string `json:"version"`
	// Time is the exporter's clock when it answered: every age is
	// measured against it, not against the clock of the monitoring host.
	Time time.Time `json:"time"`
	// Started is when the exporter started watching. A cache that has
	// not synced has not synced since then: caches never unsync.
	Started time.Time `json:"started"`
	// APIServerUp is the last probe of the API server's /readyz; absent
	// before the first probe.
	APIServerUp *bool `json:"api_server_up,omitempty"`
	// Confirmed is when the caches were last confirmed fresh (the
	// kube_spread_cache_confirmed_timestamp_seconds of the metrics);
	// absent if never.
	Confirmed *time.Time `json:"confirmed,omitempty"`
	// ListWatchErrorWindowSeconds is the pause after which a new streak
	// of list/watch errors begins: the rate window of the alert.
	ListWatchErrorWindowSeconds float64 `json:"list_watch_error_window_seconds"`
	// Caches are the informer caches, sorted by resource.
	Caches []Cache `json:"caches"`
}

// Cache is the health of one informer cache.
type Cache struct {
	Resource        string `json:"resource"`
	Synced          bool   `json:"synced"`
	ListWatchErrors uint64 `json:"list_watch_errors"`
	// LastUpdate is when the cache last applied an event.
	LastUpdate *time.Time `json:"last_update,omitempty"`
	// ErrorsSince and LastError are the current streak of list/watch
	// errors: errors less than the window apart, the first and the last.
	ErrorsSince *time.Time `json:"list_watch_errors_since,omitempty"`
	LastError   *time.Time `json:"last_list_watch_error,omitempty"`
}

// Error is the body of every answer that is not 200.
type Error struct {
	Error string `json:"error"`
}

// TimeOrNil returns a pointer to t, nil for the zero time, for the
// optional times of the answers.
func TimeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
