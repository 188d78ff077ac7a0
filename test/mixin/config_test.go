package mixin

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/dashboards"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// alertsOf returns the alerts of a prometheusAlerts, by name.
func alertsOf(t *testing.T, vendor, config string) map[string]alertRule {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	evaluate(t, vendor, mixin(config)+".prometheusAlerts", &file)
	alerts := map[string]alertRule{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = r
		}
	}
	if len(alerts) == 0 {
		t.Fatal("prometheusAlerts has no alerts")
	}
	return alerts
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// TestConfigReachesTheAlerts: each setting of _config changes what it
// should, in every alert, and nothing else.
func TestConfigReachesTheAlerts(t *testing.T) {
	vendor := vendored(t)
	shipped := alertsOf(t, vendor, "{}")
	for _, tc := range []struct {
		name   string
		config string
		// want returns the alert as the config should leave it.
		want func(alertRule) alertRule
	}{
		{
			name:   "runbook URL prefix",
			config: `{ runbookURLPrefix: 'https://wiki.example.org/runbooks/kube-spread#' }`,
			want: func(a alertRule) alertRule {
				a.Annotations = clone(a.Annotations)
				a.Annotations["runbook_url"] = "https://wiki.example.org/runbooks/kube-spread#" + strings.ToLower(a.Alert)
				return a
			},
		},
		{
			name:   "severity of one alert",
			config: `{ severities+: { KubeSpreadSingleHomed: 'info' } }`,
			want: func(a alertRule) alertRule {
				if a.Alert == "KubeSpreadSingleHomed" {
					a.Labels = clone(a.Labels)
					a.Labels["severity"] = "info"
				}
				return a
			},
		},
		{
			name:   "every severity renamed",
			config: `{ severities: std.mapWithKey(function(_, s) if s == 'critical' then 'page' else s, super.severities) }`,
			want: func(a alertRule) alertRule {
				if a.Labels["severity"] == "critical" {
					a.Labels = clone(a.Labels)
					a.Labels["severity"] = "page"
				}
				return a
			},
		},
		{
			name:   "for durations, and the descriptions naming them",
			config: `{ forDurations+: { KubeSpreadExporterDown: '10m', KubeSpreadExporterBlind: '1h', KubeSpreadSingleHomed: '30m' } }`,
			want: func(a alertRule) alertRule {
				a.Annotations = clone(a.Annotations)
				switch a.Alert {
				case "KubeSpreadExporterDown":
					a.For = "10m"
					a.Annotations["description"] = strings.Replace(a.Annotations["description"], "down for 5 minutes", "down for 10 minutes", 1)
				case "KubeSpreadExporterBlind":
					a.For = "1h"
					a.Annotations["description"] = strings.Replace(a.Annotations["description"], "For 5 minutes", "For 1 hour", 1)
				case "KubeSpreadSingleHomed":
					a.For = "30m"
				}
				return a
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := alertsOf(t, vendor, tc.config)
			for name, alert := range shipped {
				want := tc.want(alert)
				if !reflect.DeepEqual(got[name], want) {
					t.Errorf("%s:\n%+v\nwant\n%+v", name, got[name], want)
				}
			}
		})
	}
}

func clone(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// TestConfigMistakesFail: a setting that would silently do nothing, or
// make a broken rule or dashboard, stops the evaluation with a message.
func TestConfigMistakesFail(t *testing.T) {
	vendor := vendored(t)
	for _, tc := range []struct {
		name, config, field, want string
	}{
		{"misspelt alert in severities", `{ severities+: { KubeSpreadSingleHome: 'info' } }`, "prometheusAlerts", "_config.severities names no alert of the mixin: KubeSpreadSingleHome"},
		{"misspelt alert in forDurations", `{ forDurations+: { KubeSpreadExporterGone: '1m' } }`, "prometheusAlerts", "_config.forDurations names no alert of the mixin: KubeSpreadExporterGone"},
		{"cluster label not a label name, alerts", `{ clusterLabel: 'k8s-cluster' }`, "prometheusAlerts", `_config.clusterLabel "k8s-cluster" is not a label name`},
		{"cluster label not a label name, dashboards", `{ clusterLabel: 'k8s-cluster' }`, "grafanaDashboards", `_config.clusterLabel "k8s-cluster" is not a label name`},
		{"empty job selector", `{ jobSelector: '' }`, "prometheusAlerts", "_config.jobSelector is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tool(t, "jsonnet"), "-J", vendor, "-e", mixin(tc.config)+"."+tc.field)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("jsonnet: %v, want it to fail\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("jsonnet failed with\n%s\nwant the message %q", out, tc.want)
			}
		})
	}
}

// TestDashboardsFollowTheClusterLabel: the mixin's dashboards for another
// cluster label are what `go run ./dashboards/generate -cluster-label=...`
// writes for it.
func TestDashboardsFollowTheClusterLabel(t *testing.T) {
	var got map[string]any
	evaluate(t, vendored(t), mixin(otherConfig)+".grafanaDashboards", &got)
	files, err := dashboards.Render(dashboards.Options{ClusterLabel: other.ClusterLabel})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		var want any
		if err := json.Unmarshal(f.JSON, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[f.Name], want) {
			t.Errorf("grafanaDashboards[%q] with clusterLabel %s differs from the dashboard rendered for it", f.Name, other.ClusterLabel)
		}
	}
}

// TestJsonnetFormatted: the mixin's files are as jsonnetfmt writes them.
func TestJsonnetFormatted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repo.RootForTest(t), "mixin", "*.libsonnet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no mixin/*.libsonnet (%v)", err)
	}
	out, err := exec.Command(tool(t, "jsonnetfmt"), append([]string{"--test"}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("jsonnetfmt --test: %v; run `.cache/bin/jsonnetfmt -i mixin/*.libsonnet`:\n%s", err, out)
	}
}
