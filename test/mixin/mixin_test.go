// Package mixin tests the monitoring mixin in mixin/ with go-jsonnet and
// promtool: with the default _config it yields exactly the shipped rules
// and dashboards, and with another job selector and cluster label its rules
// still pass promtool's checks and the shipped promtool unit tests, their
// labels renamed to match.
package mixin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/ruletest"
)

// vendorPath is where jsonnet-bundler puts the mixin in a user's project
// (jb install github.com/kube-spread-exporter/kube-spread-exporter/mixin).
const vendorPath = "github.com/kube-spread-exporter/kube-spread-exporter/mixin"

// tool returns the path of a binary that `make tools` builds. A missing
// one fails the test: a mixin nobody evaluated is a guess.
func tool(t *testing.T, name string) string { t.Helper(); return repo.ToolForTest(t, name) }

// vendored copies mixin/ into a vendor directory, as jsonnet-bundler
// installs it, and returns that directory: every evaluation goes through
// the copy, so an import reaching outside mixin/ fails here as it would
// for users.
func vendored(t *testing.T) string {
	t.Helper()
	vendor := filepath.Join(t.TempDir(), "vendor")
	dst := filepath.Join(vendor, filepath.FromSlash(vendorPath))
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(repo.RootForTest(t), "mixin"))); err != nil {
		t.Fatalf("vendor the mixin: %v", err)
	}
	return vendor
}

// evaluate evaluates code, which imports the mixin by its vendored path,
// and decodes the result.
func evaluate(t *testing.T, vendor, code string, result any) {
	t.Helper()
	cmd := exec.Command(tool(t, "jsonnet"), "-J", vendor, "-e", code)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		t.Fatalf("jsonnet -e %q: %v", code, err)
	}
	if err := json.Unmarshal(out, result); err != nil {
		t.Fatalf("decode the output of jsonnet: %v", err)
	}
}

// mixin is the jsonnet expression of the mixin with overrides of _config.
func mixin(config string) string {
	return fmt.Sprintf("((import %q) + { _config+:: %s })", vendorPath+"/mixin.libsonnet", config)
}

// readYAML decodes a YAML file of the repository into generic values, as
// JSON would: the comparisons with jsonnet's output are of values.
func readYAML(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo.RootForTest(t), path))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	// Through JSON, so that numbers and maps have the types jsonnet's
	// output decodes to.
	encoded, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var normalised any
	if err := json.Unmarshal(encoded, &normalised); err != nil {
		t.Fatal(err)
	}
	return normalised
}

// TestDefaultConfigYieldsTheShippedRules: prometheusAlerts is the rule file.
func TestDefaultConfigYieldsTheShippedRules(t *testing.T) {
	var got any
	evaluate(t, vendored(t), mixin("{}")+".prometheusAlerts", &got)
	if want := readYAML(t, "rules/kube-spread.rules.yml"); !reflect.DeepEqual(got, want) {
		t.Errorf("prometheusAlerts with the default _config differs from rules/kube-spread.rules.yml:\n%v\nwant\n%v", got, want)
	}
}

// TestDefaultConfigYieldsTheShippedDashboards: grafanaDashboards holds
// every file of dashboards/, each equal to it.
func TestDefaultConfigYieldsTheShippedDashboards(t *testing.T) {
	var got map[string]any
	evaluate(t, vendored(t), mixin("{}")+".grafanaDashboards", &got)
	root := repo.RootForTest(t)
	files, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, file := range files {
		name := filepath.Base(file)
		names = append(names, name)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("grafanaDashboards[%q] with the default _config differs from dashboards/%s", name, name)
		}
	}
	var gotNames []string
	for name := range got {
		gotNames = append(gotNames, name)
	}
	slices.Sort(gotNames)
	if !slices.Equal(gotNames, names) {
		t.Errorf("grafanaDashboards has %v, dashboards/ has %v", gotNames, names)
	}
}

// other is the override of the tests: a job the shipped selector does not
// match, a selector that matches it, and a cluster label of another name.
var other = ruletest.Relabelling{Job: "kse-prod", JobSelector: `job=~"kse-.+"`, ClusterLabel: "k8s_cluster"}

var otherConfig = fmt.Sprintf("{ jobSelector: %q, clusterLabel: %q }", other.JobSelector, other.ClusterLabel)

// TestOverriddenSelectorAndClusterLabel: with another job selector and
// cluster label, the mixin's rules pass `promtool check rules`, and the
// shipped promtool unit tests pass once their series and expected alerts
// carry that job and label. The same tests fail against the shipped rules,
// so the pass is the overrides' doing.
func TestOverriddenSelectorAndClusterLabel(t *testing.T) {
	dir := t.TempDir()
	var alerts any
	evaluate(t, vendored(t), mixin(otherConfig)+".prometheusAlerts", &alerts)
	// JSON, which promtool reads as the YAML it is.
	data, err := json.MarshalIndent(alerts, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	overridden := filepath.Join(dir, "overridden.rules.yml")
	if err := os.WriteFile(overridden, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ruletest.Check(overridden, filepath.Join(dir, "overridden"), other); err != nil {
		t.Errorf("the mixin with %s: %v", otherConfig, err)
	}
	shipped := filepath.Join(repo.RootForTest(t), "rules", "kube-spread.rules.yml")
	if err := ruletest.Test(shipped, filepath.Join(dir, "shipped"), other); err == nil {
		t.Errorf("the rewritten tests pass against the shipped rules too: they do not test the overrides")
	}
}

// TestEveryRewriteApplies: each rewrite of the promtool tests changes some
// test file, so the override test exercises the job selector in
// expressions and descriptions, and the cluster label.
func TestEveryRewriteApplies(t *testing.T) {
	files, err := ruletest.Files()
	if err != nil {
		t.Fatal(err)
	}
	unused, err := ruletest.Unused(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range unused {
		t.Errorf("the rewrite of %s changes no file of rules/tests/", u)
	}
}
