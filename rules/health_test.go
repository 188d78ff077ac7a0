package rules

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/check"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
)

// exporterLife is the history of one exporter up to the evaluation, in
// seconds from the start of the test: when it started, whether and when
// its caches synced, when the API server was unreachable and when lists or
// watches failed.
type exporterLife struct {
	name string
	// start is when the exporter started; syncAfter how long its caches
	// took to sync, negative for never.
	start, syncAfter int
	// outages are [from, to) intervals without an API server: no
	// confirmation, and a list/watch error every 15 seconds.
	outages [][2]int
	// errors are more list/watch failures, with the API server up.
	errors []int
}

// evalAt is when promtool evaluates and the check runs: 40 minutes in.
const evalAt = 40 * 60

// Times are offset from the 30s scrape and evaluation grid and the 10s
// probe grid, so that no event ties with a sample.
const (
	scrapeInterval = 30
	probeOffset    = 3
	probeInterval  = 10
)

func (l exporterLife) down(t int) bool {
	for _, o := range l.outages {
		if t >= o[0] && t < o[1] {
			return true
		}
	}
	return false
}

// timeline works out, second by second, what the exporter would publish:
// its error times, and when probes confirmed the caches fresh.
func (l exporterLife) timeline() (errors, confirmations []int) {
	errors = append(errors, l.errors...)
	for _, o := range l.outages {
		for t := o[0] + 7; t < o[1]; t += 15 {
			errors = append(errors, t)
		}
	}
	lastProbe := -1
	for t := l.start + probeOffset; t <= evalAt; t += probeInterval {
		synced := l.syncAfter >= 0 && t >= l.start+l.syncAfter
		failedSince := false
		for _, e := range errors {
			if e > lastProbe && e <= t {
				failedSince = true
			}
		}
		if synced && !l.down(t) && !failedSince && lastProbe >= 0 {
			confirmations = append(confirmations, t)
		}
		lastProbe = t
	}
	return errors, confirmations
}

// TestHealthAgreesWithRules runs exporter histories through promtool (the
// alert rules on the series the exporter would have published, scraped
// every 30s) and through check.Health (the facts /api/v1/health gives at
// the end), and expects the same alerts from both: Icinga and Prometheus
// reach the same verdict on the exporter's own health.
//
// The check sees time continuously, Prometheus every 30s; the histories
// keep a minute or more away from every threshold, where the two could
// differ by a scrape or an evaluation interval.
func TestHealthAgreesWithRules(t *testing.T) {
	const m = 60
	lives := []exporterLife{
		{name: "healthy for 40m, an error 30m ago", start: 0, syncAfter: 5, errors: []int{10*m + 7}},
		{name: "caches not synced for 9m: pending", start: evalAt - 9*m, syncAfter: -1, outages: [][2]int{{evalAt - 9*m, evalAt + 1}}},
		{name: "caches not synced for 12m", start: evalAt - 12*m, syncAfter: -1, outages: [][2]int{{evalAt - 12*m, evalAt + 1}}},
		{name: "API server down for 4m", start: 0, syncAfter: 5, outages: [][2]int{{evalAt - 4*m, evalAt + 1}}},
		{name: "API server down for 6m: stale", start: 0, syncAfter: 5, outages: [][2]int{{evalAt - 6*m, evalAt + 1}}},
		{name: "API server down for 20m: stale and errors", start: 0, syncAfter: 5, outages: [][2]int{{evalAt - 20*m, evalAt + 1}}},
		{name: "API server down for 20m, back 2m ago: errors still", start: 0, syncAfter: 5, outages: [][2]int{{evalAt - 22*m, evalAt - 2*m}}},
		{name: "API server down for 20m, back 7m ago: resolved", start: 0, syncAfter: 5, outages: [][2]int{{evalAt - 27*m, evalAt - 7*m}}},
		{name: "an error every 4m for 24m", start: 0, syncAfter: 5, errors: []int{evalAt - 24*m + 7, evalAt - 20*m + 7, evalAt - 16*m + 7, evalAt - 12*m + 7, evalAt - 8*m + 7, evalAt - 4*m + 7}},
		{name: "an error every 6m for 30m", start: 0, syncAfter: 5, errors: []int{evalAt - 30*m + 7, evalAt - 24*m + 7, evalAt - 18*m + 7, evalAt - 12*m + 7, evalAt - 6*m + 7}},
	}
	alerts := []string{check.AlertCacheNotSynced, check.AlertCacheStale, check.AlertListWatchErrors}
	var opts check.HealthOptions
	opts.NotSynced, _ = nagios.ParseThreshold(check.DefaultWarningNotSynced, "")
	opts.Stale, _ = nagios.ParseThreshold(check.DefaultWarningStale, "")
	opts.ListWatchErrorsFor, _ = nagios.ParseThreshold(check.DefaultWarningListWatchErrorsFor, "")

	target := map[string]string{"job": "kube-spread-exporter", "instance": "10.0.0.1:10217"}
	var groups []map[string]any
	firedSomewhere := map[string]bool{}
	for _, life := range lives {
		errorTimes, confirmations := life.timeline()

		// The check: the facts the exporter's API gives at evalAt.
		at := func(s int) time.Time { return time.Unix(int64(s), 0) }
		var streak cluster.ErrorStreak
		errorCount := 0
		for _, e := range errorTimes {
			if e <= evalAt {
				streak.Record(at(e))
				errorCount++
			}
		}
		since, last := streak.Streak()
		facts := check.HealthFacts{
			Now: at(evalAt), Started: at(life.start), Streaks: true, Window: cluster.ListWatchErrorWindow,
			Caches: []check.CacheStatus{{Resource: "pods", Synced: life.syncAfter >= 0 && evalAt >= life.start+life.syncAfter,
				ListWatchErrors: float64(errorCount), ErrorsSince: since, LastError: last}},
		}
		if len(confirmations) > 0 {
			facts.Confirmed = at(confirmations[len(confirmations)-1])
		}
		summary := check.Health(facts, opts).Summary
		expected := map[string][]map[string]any{}
		for _, alert := range alerts {
			if !strings.Contains(summary, alert) {
				continue
			}
			firedSomewhere[alert] = true
			labels := map[string]string{"severity": "warning", "job": target["job"], "instance": target["instance"]}
			if alert != check.AlertCacheStale {
				labels["resource"] = "pods"
			}
			expected[alert] = append(expected[alert], map[string]any{"exp_labels": labels})
		}

		// The rules: what the exporter published, scraped every 30s.
		var synced, confirmed, errorsTotal []string
		for s := 0; s <= evalAt; s += scrapeInterval {
			if s < life.start {
				synced, confirmed, errorsTotal = append(synced, "_"), append(confirmed, "_"), append(errorsTotal, "_")
				continue
			}
			syncedNow := life.syncAfter >= 0 && s >= life.start+life.syncAfter
			synced = append(synced, map[bool]string{true: "1", false: "0"}[syncedNow])
			lastConfirmation := "_"
			for _, c := range confirmations {
				if c <= s {
					lastConfirmation = fmt.Sprint(c)
				}
			}
			confirmed = append(confirmed, lastConfirmation)
			n := 0
			for _, e := range errorTimes {
				if e <= s {
					n++
				}
			}
			errorsTotal = append(errorsTotal, fmt.Sprint(n))
		}
		labels := fmt.Sprintf(`job=%q,instance=%q`, target["job"], target["instance"])
		var tests []map[string]any
		for _, alert := range alerts {
			tests = append(tests, map[string]any{"eval_time": fmt.Sprintf("%ds", evalAt), "alertname": alert, "exp_alerts": expected[alert]})
		}
		groups = append(groups, map[string]any{
			"name":     life.name,
			"interval": fmt.Sprintf("%ds", scrapeInterval),
			"input_series": []map[string]string{
				{"series": fmt.Sprintf(`kube_spread_cache_synced{resource="pods",%s}`, labels), "values": strings.Join(synced, " ")},
				{"series": fmt.Sprintf(`kube_spread_cache_confirmed_timestamp_seconds{%s}`, labels), "values": strings.Join(confirmed, " ")},
				{"series": fmt.Sprintf(`kube_spread_list_watch_errors_total{resource="pods",%s}`, labels), "values": strings.Join(errorsTotal, " ")},
			},
			"alert_rule_test":  tests,
			"external_labels":  map[string]string{},
			"promql_expr_test": []any{},
		})
		t.Logf("%s: check says %q", life.name, summary)
	}
	// A comparison in which nothing fires proves nothing.
	for _, alert := range alerts {
		if !firedSomewhere[alert] {
			t.Errorf("no history makes %s fire: the table does not test it", alert)
		}
	}

	dir := t.TempDir()
	rulesWithoutAnnotations(t, filepath.Join(dir, "rules.yml"))
	content, err := yaml.Marshal(map[string]any{"rule_files": []string{"rules.yml"}, "evaluation_interval": "30s", "tests": groups})
	if err != nil {
		t.Fatal(err)
	}
	testPath := filepath.Join(dir, "health_test.yml")
	if err := os.WriteFile(testPath, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool(t), "test", "rules", testPath).CombinedOutput()
	if err != nil {
		t.Fatalf("the rules and the health check disagree (promtool test rules: %v):\n%s", err, out)
	}
}
