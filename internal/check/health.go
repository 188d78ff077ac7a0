package check

import (
	"fmt"
	"math"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
)

// HealthOptions are the optional thresholds of the health check.
type HealthOptions struct {
	// ListWatchErrors applies to the total of failed lists and broken
	// watches since the exporter started.
	ListWatchErrors nagios.Threshold
	// CacheAge applies to the seconds since the most recent event any
	// cache applied. The newest, not the oldest: a quiet resource
	// (replicationcontrollers) may see no event for days, while caches
	// that all stop updating mean broken watches.
	CacheAge nagios.Threshold
}

// Health judges the exporter itself: its caches synced, its list/watch
// errors, how long since its caches last changed. at is the exporter's
// clock at the scrape.
func Health(families map[string]*dto.MetricFamily, at time.Time, opts HealthOptions) *nagios.Result {
	caches, err := Caches(families)
	if err != nil {
		return nagios.UnknownResult(err)
	}
	var unsynced []string
	var errorsTotal float64
	newest := 0.0
	var details []string
	for _, c := range caches {
		line := c.Resource + ": "
		if c.Synced {
			line += "synced"
		} else {
			line += "NOT synced"
			unsynced = append(unsynced, c.Resource)
		}
		line += fmt.Sprintf(", %s list/watch errors", formatCount(c.ListWatchErrors))
		if c.LastUpdate > 0 {
			line += fmt.Sprintf(", last update %s ago", age(at, c.LastUpdate))
			newest = math.Max(newest, c.LastUpdate)
		} else {
			line += ", no update yet"
		}
		errorsTotal += c.ListWatchErrors
		details = append(details, line)
	}

	// No update at all counts as infinitely old, so an age threshold
	// catches an exporter that never saw an event.
	cacheAge := math.Inf(1)
	if newest > 0 {
		cacheAge = math.Max(0, float64(at.UnixNano())/1e9-newest)
	}
	states := []nagios.State{
		opts.ListWatchErrors.State(errorsTotal),
		opts.CacheAge.State(cacheAge),
	}
	if len(unsynced) > 0 {
		// No figures are published until every cache has synced: the
		// check of the services is blind, which is this check's business.
		states = append(states, nagios.Critical)
	}

	summary := fmt.Sprintf("%s: %d of %d caches synced", exporterName(families), len(caches)-len(unsynced), len(caches))
	if len(unsynced) > 0 {
		summary += " (not synced: " + strings.Join(unsynced, ", ") + ")"
	}
	summary += fmt.Sprintf(", %s list/watch errors", formatCount(errorsTotal))
	if newest > 0 {
		summary += fmt.Sprintf(", last cache update %s ago", age(at, newest))
	} else {
		summary += ", no cache update yet"
	}

	result := &nagios.Result{
		State:   nagios.Worst(states...),
		Summary: summary,
		Perfdata: []nagios.Perfdata{
			{Label: "caches_synced", Value: float64(len(caches) - len(unsynced)), Min: nagios.Float(0), Max: nagios.Float(float64(len(caches)))},
			{Label: "list_watch_errors", Value: errorsTotal, UOM: "c", Warning: opts.ListWatchErrors.Warning, Critical: opts.ListWatchErrors.Critical, Min: nagios.Float(0)},
		},
		Details: details,
	}
	if newest > 0 {
		result.Perfdata = append(result.Perfdata, nagios.Perfdata{Label: "cache_update_age", Value: math.Round(cacheAge*1000) / 1000, UOM: "s", Warning: opts.CacheAge.Warning, Critical: opts.CacheAge.Critical, Min: nagios.Float(0)})
	}
	return result
}

// exporterName is "kube-spread-exporter VERSION" from the build info.
func exporterName(families map[string]*dto.MetricFamily) string {
	for _, m := range families[metricBuildInfo].GetMetric() {
		if v, ok := label(m, "version"); ok && v != "" {
			return "kube-spread-exporter " + v
		}
	}
	return "kube-spread-exporter"
}

func age(at time.Time, unixSeconds float64) string {
	d := at.Sub(time.Unix(0, int64(unixSeconds*1e9))).Round(time.Second)
	if d < 0 {
		// The exporter's clock and its Date header differ by a fraction
		// of a second: an update "in the future" is now.
		d = 0
	}
	return d.String()
}

func formatCount(v float64) string { return fmt.Sprintf("%.0f", v) }
