package chart

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/ruletest"
)

// ruleSpec renders the chart's PrometheusRule with the --set arguments
// and returns its spec.
func ruleSpec(t *testing.T, set ...string) any {
	t.Helper()
	args := []string{"--set", "prometheusRule.enabled=true"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return normalised(t, one(t, objects(t, render(t, args...)), "PrometheusRule")["spec"])
}

// normalised passes v through JSON, so that values decoded from YAML and
// from JSON compare equal.
func normalised(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// shippedRules returns rules/kube-spread.rules.yml, decoded.
func shippedRules(t *testing.T) any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "rules", "kube-spread.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules any
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	return normalised(t, rules)
}

// TestPrometheusRuleIsTheRuleFile: with the default values the chart's
// PrometheusRule holds exactly rules/kube-spread.rules.yml.
func TestPrometheusRuleIsTheRuleFile(t *testing.T) {
	if got, want := ruleSpec(t), shippedRules(t); !reflect.DeepEqual(got, want) {
		t.Errorf("the chart's PrometheusRule differs from rules/kube-spread.rules.yml:\n%v\nwant\n%v", got, want)
	}
}

var other = ruletest.Relabelling{Job: "kse-prod", JobSelector: `job=~"kse-.+"`, ClusterLabel: "k8s_cluster"}

// TestPrometheusRuleWithOtherLabels: with another job selector and
// cluster label the chart's rules pass promtool check rules and the
// shipped promtool tests, rewritten for that job and label.
func TestPrometheusRuleWithOtherLabels(t *testing.T) {
	spec := ruleSpec(t, "prometheusRule.jobSelector="+other.JobSelector, "cluster.label="+other.ClusterLabel)
	dir := t.TempDir()
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(dir, "chart.rules.yml")
	if err := os.WriteFile(rulesFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ruletest.Check(rulesFile, filepath.Join(dir, "tests"), other); err != nil {
		t.Error(err)
	}
}

// TestPrometheusRuleIsTheMixinsRules: the chart and the mixin apply the
// same settings to the same rules alike.
func TestPrometheusRuleIsTheMixinsRules(t *testing.T) {
	const prefix = "https://wiki.example.org/runbooks/kube-spread#"
	got := ruleSpec(t, "prometheusRule.jobSelector="+other.JobSelector, "cluster.label="+other.ClusterLabel,
		"prometheusRule.runbookURLPrefix="+prefix)
	config := fmt.Sprintf("{ jobSelector: %q, clusterLabel: %q, runbookURLPrefix: %q }", other.JobSelector, other.ClusterLabel, prefix)
	code := fmt.Sprintf("((import %q) + { _config+:: %s }).prometheusAlerts",
		filepath.Join(repo.RootForTest(t), "mixin", "mixin.libsonnet"), config)
	out, err := exec.Command(jsonnet(t), "-e", code).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		t.Fatalf("jsonnet: %v", err)
	}
	var want any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the chart's rules with %s differ from the mixin's:\n%v\nwant\n%v", config, got, want)
	}
}

// jsonnet returns the go-jsonnet binary that `make tools` builds.
func jsonnet(t *testing.T) string { t.Helper(); return repo.ToolForTest(t, "jsonnet") }

// TestPrometheusRuleLabelsAndLinks: additionalRuleLabels reach every
// alert without overriding its severity, runbookURLPrefix every link, and
// additionalLabels the object.
func TestPrometheusRuleLabelsAndLinks(t *testing.T) {
	const prefix = "https://wiki.example.org/runbooks/kube-spread#"
	manifests := render(t, "--set", "prometheusRule.enabled=true",
		"--set", "prometheusRule.additionalRuleLabels.team=sre",
		"--set", "prometheusRule.additionalRuleLabels.severity=ticket",
		"--set", "prometheusRule.runbookURLPrefix="+prefix,
		"--set", "prometheusRule.additionalLabels.release=prometheus")
	rule := one(t, objects(t, manifests), "PrometheusRule")
	if got := get(rule, "metadata", "labels", "release"); got != "prometheus" {
		t.Errorf("metadata.labels.release = %v, want prometheus", got)
	}
	var spec struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	data, err := json.Marshal(rule["spec"])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if r.Labels["team"] != "sre" {
				t.Errorf("%s: labels %v, want team=sre added", r.Alert, r.Labels)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q: additionalRuleLabels must not override an alert's own labels", r.Alert, s)
			}
			if want := prefix + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	if alerts == 0 {
		t.Error("no alert in the PrometheusRule")
	}
}
