package check

import (
	"fmt"
	"math"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
)

// The defaults of the health thresholds are the alert rules' conditions
// with their `for` folded in (rules/kube-spread.rules.yml), so that
// Icinga and Prometheus reach the same verdict on the exporter:
//
//   - KubeSpreadCacheNotSynced: kube_spread_cache_synced == 0 for 10m. A
//     cache that has not synced has not since the exporter started
//     (caches never unsync), so the condition holds for as long as the
//     exporter has run: WARNING after 600 s.
//   - KubeSpreadCacheStale: time() - confirmed > 120 for 3m holds once the
//     last confirmation is more than 120 + 180 = 300 s old.
//   - KubeSpreadListWatchErrors: rate(errors[5m]) > 0 for 15m holds while
//     errors come less than 5m apart, for 15m: the exporter's error streak
//     (cluster.ErrorStreak) has lasted 900 s and its last error is less
//     than 5m old.
//
// rules/health_test.go runs the same states through promtool and Health.
const (
	DefaultWarningNotSynced          = "600"
	DefaultWarningStale              = "300"
	DefaultWarningListWatchErrorsFor = "900"
)

// The alerts the health check mirrors, named in its output.
const (
	AlertCacheNotSynced  = "KubeSpreadCacheNotSynced"
	AlertCacheStale      = "KubeSpreadCacheStale"
	AlertListWatchErrors = "KubeSpreadListWatchErrors"
)

// HealthOptions are the thresholds of the health check, each on seconds
// or a count (nagios range syntax).
type HealthOptions struct {
	// NotSynced applies to the seconds a cache has not synced (0 once
	// every cache has).
	NotSynced nagios.Threshold
	// Stale applies to the seconds since the caches were last confirmed
	// fresh; nothing while they never were, as for the alert.
	Stale nagios.Threshold
	// ListWatchErrorsFor applies to the seconds list/watch errors have
	// kept coming, less than the exporter's window apart (0 when the last
	// error is older than the window).
	ListWatchErrorsFor nagios.Threshold
	// ListWatchErrors applies to the total of failed lists and broken
	// watches since the exporter started.
	ListWatchErrors nagios.Threshold
	// CacheAge applies to the seconds since the most recent event any
	// cache applied. The newest, not the oldest: a quiet resource
	// (replicationcontrollers) may see no event for days, while caches
	// that all stop updating mean broken watches.
	CacheAge nagios.Threshold
}

// HealthFacts is what the health check judges, read from the exporter's
// /api/v1/health or, from an exporter without it, from /metrics.
type HealthFacts struct {
	Version string
	// Now is the exporter's clock when it answered.
	Now time.Time
	// Started is when the exporter started; zero if it does not say
	// (/metrics without process metrics).
	Started time.Time
	// Confirmed is when the caches were last confirmed fresh; zero if
	// never.
	Confirmed time.Time
	// APIServerUp is the exporter's last probe; nil before the first.
	APIServerUp *bool
	Caches      []CacheStatus
	// Streaks is whether the caches' ErrorsSince and LastError are known:
	// /api/v1/health has them, /metrics does not.
	Streaks bool
	// Window is the exporter's list/watch error window (Streaks only).
	Window time.Duration
	// NoAPI says the facts come from /metrics because the check was told
	// to read it only (--no-api), not because the exporter has no API.
	NoAPI bool
}

// HealthFactsFromAPI reads the answer of /api/v1/health.
func HealthFactsFromAPI(h *api.Health) HealthFacts {
	f := HealthFacts{
		Version: h.Version, Now: h.Time, Started: h.Started, APIServerUp: h.APIServerUp,
		Streaks: true, Window: time.Duration(h.ListWatchErrorWindowSeconds * float64(time.Second)),
	}
	if h.Confirmed != nil {
		f.Confirmed = *h.Confirmed
	}
	for _, c := range h.Caches {
		status := CacheStatus{Resource: c.Resource, Synced: c.Synced, ListWatchErrors: float64(c.ListWatchErrors)}
		if c.LastUpdate != nil {
			status.LastUpdate = float64(c.LastUpdate.UnixNano()) / 1e9
		}
		if c.ErrorsSince != nil && c.LastError != nil {
			status.ErrorsSince, status.LastError = *c.ErrorsSince, *c.LastError
		}
		f.Caches = append(f.Caches, status)
	}
	return f
}

// HealthFactsFromMetrics reads what /metrics tells of the exporter's
// health; at is the exporter's clock (the Date header). It fails with
// ErrNotExporter for another exporter's page.
func HealthFactsFromMetrics(families map[string]*dto.MetricFamily, at time.Time) (HealthFacts, error) {
	caches, err := Caches(families)
	if err != nil {
		return HealthFacts{}, err
	}
	f := HealthFacts{Version: exporterVersion(families), Now: at, Caches: caches}
	if v, ok := single(families, metricProcessStart); ok && v > 0 {
		f.Started = unixTime(v)
	}
	if v, ok := single(families, metricCacheConfirmed); ok && v > 0 {
		f.Confirmed = unixTime(v)
	}
	if v, ok := single(families, metricAPIServerUp); ok {
		up := v == 1
		f.APIServerUp = &up
	}
	return f, nil
}

// Health judges the exporter itself as the alert rules do: caches not
// synced, figures not confirmed fresh, list/watch errors that keep
// coming; then the optional thresholds on the error count and the age of
// the last cache update.
func Health(f HealthFacts, opts HealthOptions) *nagios.Result {
	var unsynced []string
	var errorsTotal float64
	newest := 0.0
	errorsFor := 0.0
	var details []string
	for _, c := range f.Caches {
		line := c.Resource + ": "
		if c.Synced {
			line += "synced"
		} else {
			line += "NOT synced"
			unsynced = append(unsynced, c.Resource)
		}
		line += fmt.Sprintf(", %s list/watch errors", formatCount(c.ListWatchErrors))
		if f.Streaks && !c.LastError.IsZero() {
			line += fmt.Sprintf(" (this streak since %s ago, last %s ago)", since(f.Now, c.ErrorsSince), since(f.Now, c.LastError))
			if f.Now.Sub(c.LastError) < f.Window {
				errorsFor = math.Max(errorsFor, seconds(f.Now.Sub(c.ErrorsSince)))
			}
		}
		if c.LastUpdate > 0 {
			line += fmt.Sprintf(", last update %s ago", since(f.Now, unixTime(c.LastUpdate)))
			newest = math.Max(newest, c.LastUpdate)
		} else {
			line += ", no update yet"
		}
		errorsTotal += c.ListWatchErrors
		details = append(details, line)
	}

	var states []nagios.State
	var firing []string // the alerts whose condition holds, for the first line
	judge := func(t nagios.Threshold, v float64, alert string) nagios.State {
		s := t.State(v)
		states = append(states, s)
		if s != nagios.OK && alert != "" {
			firing = append(firing, alert)
		}
		return s
	}

	var parts []string
	synced := fmt.Sprintf("%d of %d caches synced", len(f.Caches)-len(unsynced), len(f.Caches))
	notSyncedFor := 0.0
	if len(unsynced) > 0 {
		// Without a start time the duration is unknown: counted as
		// long, since an exporter that never syncs is the case to catch.
		notSyncedFor = math.Inf(1)
		synced += " (not synced: " + strings.Join(unsynced, ", ")
		if !f.Started.IsZero() {
			notSyncedFor = seconds(f.Now.Sub(f.Started))
			synced += fmt.Sprintf(", for %s", roundSeconds(notSyncedFor))
		} else {
			synced += ", since an unknown time"
		}
		synced += ")"
	}
	if judge(opts.NotSynced, notSyncedFor, AlertCacheNotSynced) != nagios.OK {
		synced += " " + AlertCacheNotSynced
	}
	parts = append(parts, synced)

	staleFor := math.NaN()
	switch {
	case f.Confirmed.IsZero():
		// As the alert: no confirmation yet is no series, nothing fires.
		parts = append(parts, "not confirmed fresh yet")
	default:
		staleFor = seconds(f.Now.Sub(f.Confirmed))
		text := fmt.Sprintf("confirmed fresh %s ago", roundSeconds(staleFor))
		if judge(opts.Stale, staleFor, AlertCacheStale) != nagios.OK {
			text += " " + AlertCacheStale
		}
		parts = append(parts, text)
	}
	if f.APIServerUp != nil && !*f.APIServerUp {
		parts = append(parts, "API server unreachable")
	}

	errorsText := fmt.Sprintf("%s list/watch errors", formatCount(errorsTotal))
	judge(opts.ListWatchErrors, errorsTotal, "")
	if f.Streaks {
		if errorsFor > 0 {
			errorsText += fmt.Sprintf(", failing for %s", roundSeconds(errorsFor))
		}
		if judge(opts.ListWatchErrorsFor, errorsFor, AlertListWatchErrors) != nagios.OK {
			errorsText += " " + AlertListWatchErrors
		}
	} else {
		why := "the exporter serves no " + api.PathHealth
		if f.NoAPI {
			why = "--no-api reads /metrics only"
		}
		details = append(details, "list/watch error streaks: /metrics does not tell them, so "+AlertListWatchErrors+" is not judged ("+why+")")
	}
	parts = append(parts, errorsText)

	cacheAge := math.Inf(1) // no update at all is older than any threshold
	if newest > 0 {
		cacheAge = math.Max(0, seconds(f.Now.Sub(unixTime(newest))))
	}
	judge(opts.CacheAge, cacheAge, "")

	name := "kube-spread-exporter"
	if f.Version != "" {
		name += " " + f.Version
	}
	result := &nagios.Result{
		State:   nagios.Worst(states...),
		Summary: name + ": " + strings.Join(parts, ", "),
		Details: details,
		Perfdata: []nagios.Perfdata{
			{Label: "caches_synced", Value: float64(len(f.Caches) - len(unsynced)), Min: nagios.Float(0), Max: nagios.Float(float64(len(f.Caches)))},
			secondsPerfdata("not_synced_for", notSyncedFor, opts.NotSynced),
		},
	}
	if !math.IsNaN(staleFor) {
		result.Perfdata = append(result.Perfdata, secondsPerfdata("confirmed_age", staleFor, opts.Stale))
	}
	result.Perfdata = append(result.Perfdata, nagios.Perfdata{Label: "list_watch_errors", Value: errorsTotal, UOM: "c", Warning: opts.ListWatchErrors.Warning, Critical: opts.ListWatchErrors.Critical, Min: nagios.Float(0)})
	if f.Streaks {
		result.Perfdata = append(result.Perfdata, secondsPerfdata("list_watch_errors_for", errorsFor, opts.ListWatchErrorsFor))
	}
	if newest > 0 {
		result.Perfdata = append(result.Perfdata, secondsPerfdata("cache_update_age", cacheAge, opts.CacheAge))
	}
	if len(firing) > 0 {
		result.Details = append([]string{"firing as the alert rules would: " + strings.Join(firing, ", ") + " (docs/runbooks.md)"}, result.Details...)
	}
	return result
}

func secondsPerfdata(label string, v float64, t nagios.Threshold) nagios.Perfdata {
	return nagios.Perfdata{Label: label, Value: math.Round(v*1000) / 1000, UOM: "s", Warning: t.Warning, Critical: t.Critical, Min: nagios.Float(0)}
}

// exporterVersion is the version label of the build info, if any.
func exporterVersion(families map[string]*dto.MetricFamily) string {
	for _, m := range families[metricBuildInfo].GetMetric() {
		if v, ok := label(m, "version"); ok && v != "" {
			return v
		}
	}
	return ""
}

// single is the value of a family of one unlabelled sample.
func single(families map[string]*dto.MetricFamily, name string) (float64, bool) {
	metrics := families[name].GetMetric()
	if len(metrics) != 1 {
		return 0, false
	}
	v, err := finite(name, metrics[0])
	return v, err == nil
}

func unixTime(seconds float64) time.Time { return time.Unix(0, int64(seconds*1e9)) }

func seconds(d time.Duration) float64 { return math.Max(0, d.Seconds()) }

// since is how long ago t was, in whole seconds; a time "in the future"
// (the exporter's clock and its Date header differ by a fraction of a
// second) is now.
func since(now, t time.Time) string { return roundSeconds(seconds(now.Sub(t))) }

func roundSeconds(s float64) string {
	return (time.Duration(math.Round(s)) * time.Second).String()
}

func formatCount(v float64) string { return fmt.Sprintf("%.0f", v) }
