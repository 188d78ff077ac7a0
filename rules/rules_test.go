package rules

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// ruleFileContent is the part of a Prometheus rule file the tests read.
type ruleFileContent struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// promtool returns the promtool built by `make tools`. A missing promtool
// fails the test: rules nobody has run through promtool are guesses.
func promtool(t *testing.T) string { t.Helper(); return repo.ToolForTest(t, "promtool") }

func alertRules(t *testing.T) []rule {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(root(t), RuleFile))
	if err != nil {
		t.Fatal(err)
	}
	var file ruleFileContent
	if err := yaml.Unmarshal(content, &file); err != nil {
		t.Fatalf("parse %s: %v", RuleFile, err)
	}
	var alerts []rule
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r)
			}
		}
	}
	return alerts
}

func TestPromtool(t *testing.T) {
	dir := root(t)
	tests, err := filepath.Glob(filepath.Join(dir, "rules", "tests", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) == 0 {
		t.Fatal("no promtool tests in rules/tests/*.yml")
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", RuleFile}},
		{"test rules", append([]string{"test", "rules"}, tests...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(promtool(t), tc.args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

// The PrometheusRule is generated; CI must catch a rule file edited without
// regenerating it.
func TestPrometheusRuleUpToDate(t *testing.T) {
	dir := root(t)
	want, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, PrometheusRuleFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with %s: run `go run ./rules/generate` and commit the result", PrometheusRuleFile, RuleFile)
	}
}

// The generator must carry the rules unchanged: the PrometheusRule's spec,
// read back, equals the rule file.
func TestPrometheusRuleSpecIsTheRuleFile(t *testing.T) {
	dir := root(t)
	source, err := os.ReadFile(filepath.Join(dir, RuleFile))
	if err != nil {
		t.Fatal(err)
	}
	generated, err := PrometheusRule(source)
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := yaml.Unmarshal(source, &want); err != nil {
		t.Fatal(err)
	}
	var object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       any    `yaml:"spec"`
	}
	if err := yaml.Unmarshal(generated, &object); err != nil {
		t.Fatal(err)
	}
	if object.APIVersion != "monitoring.coreos.com/v1" || object.Kind != "PrometheusRule" {
		t.Errorf("apiVersion, kind = %s, %s; want monitoring.coreos.com/v1, PrometheusRule", object.APIVersion, object.Kind)
	}
	if !reflect.DeepEqual(object.Spec, want) {
		t.Errorf("spec differs from the rule file:\n%v\nwant\n%v", object.Spec, want)
	}
}

func TestPrometheusRuleRejects(t *testing.T) {
	for _, tc := range []struct{ name, input string }{
		{"not YAML", "groups: [\n"},
		{"a list at the top", "- name: x\n"},
		{"no groups", "rules: []\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := PrometheusRule([]byte(tc.input)); err == nil {
				t.Errorf("PrometheusRule(%q) succeeded, want an error", tc.input)
			}
		})
	}
}

// The check plugin reports spread.Findings; the rules must fire the same
// alert names at the same severities.
func TestServiceAlertsAreTheFindings(t *testing.T) {
	severities := make(map[string]string)
	for _, r := range alertRules(t) {
		severities[r.Alert] = r.Labels["severity"]
	}
	for _, tc := range []struct {
		alert    string
		severity spread.Severity
	}{
		{spread.AlertNoReplicaSurvivesMaintenance, spread.SeverityCritical},
		{spread.AlertMaintenanceBelowMinNodes, spread.SeverityCritical},
		{spread.AlertSingleHomed, spread.SeverityWarning},
		{spread.AlertBelowMinNodes, spread.SeverityWarning},
		{spread.AlertSingleTopologyDomain, spread.SeverityWarning},
	} {
		got, ok := severities[tc.alert]
		if !ok {
			t.Errorf("%s: no such alert in %s", tc.alert, RuleFile)
			continue
		}
		if got != string(tc.severity) {
			t.Errorf("%s: severity %q, want %q", tc.alert, got, tc.severity)
		}
	}
}

// gitHubAnchor is the anchor GitHub gives a Markdown heading: lower case,
// punctuation other than - and _ dropped, spaces turned into -.
func gitHubAnchor(heading string) string {
	heading = strings.ToLower(strings.TrimSpace(heading))
	heading = regexp.MustCompile(`[^\p{L}\p{N}\- _]`).ReplaceAllString(heading, "")
	return strings.ReplaceAll(heading, " ", "-")
}

// Every alert is something a responder can act on: a severity, a static
// summary, a templated description, and a runbook section that exists.
func TestAlertsAreDocumented(t *testing.T) {
	runbooks, err := os.ReadFile(filepath.Join(root(t), "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := make(map[string]bool)
	for _, m := range regexp.MustCompile(`(?m)^#{1,6} (.+)$`).FindAllStringSubmatch(string(runbooks), -1) {
		anchors[gitHubAnchor(m[1])] = true
	}
	const runbookBase = "https://github.com/kube-spread-exporter/kube-spread-exporter/blob/main/docs/runbooks.md#"
	for _, r := range alertRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("severity %q, want critical, warning or info", r.Labels["severity"])
			}
			for name, value := range r.Labels {
				if strings.Contains(value, "$value") || strings.Contains(value, "{{") {
					t.Errorf("label %s = %q is templated: every new value would make a new alert", name, value)
				}
			}
			if s := r.Annotations["summary"]; s == "" || strings.Contains(s, "{{") {
				t.Errorf("summary %q: want a static sentence", s)
			}
			// An absent() alert has no labels to name: its description is
			// the only one allowed to be static.
			absent := strings.HasPrefix(strings.TrimSpace(r.Expr), "absent(")
			if d := r.Annotations["description"]; d == "" || !absent && !strings.Contains(d, "{{") {
				t.Errorf("description %q: want a template naming what fires", d)
			}
			url := r.Annotations["runbook_url"]
			if want := runbookBase + strings.ToLower(r.Alert); url != want {
				t.Errorf("runbook_url %q, want %q", url, want)
			}
			if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("docs/runbooks.md has no heading %q", r.Alert)
			}
		})
	}
}

func Example_gitHubAnchor() {
	fmt.Println(gitHubAnchor("KubeSpreadSingleHomed"), gitHubAnchor("What to do, now"))
	// Output: kubespreadsinglehomed what-to-do-now
}
