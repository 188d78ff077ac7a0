package rules

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// TestRulesAgreeWithFindings runs the rules through promtool on the cluster
// states of spread/findings_test.go (TestFindings) and expects exactly the
// alerts spread.(*Report).Findings returns for them: what the check plugin
// reports and what the rules page for are the same.
//
// The expected alerts are not written here: they come from Findings. The
// series are the figures of spread.Analyze, named as the collector names
// them (docs/metrics.md), held for 15m so that every `for` has elapsed.
// Annotations are left out of this comparison (the rules are loaded without
// them); rules/tests/*.yml pins them down.
//
// The table repeats the rows of spread/findings_test.go, with their names,
// because a _test.go table cannot be imported; keep the two in step.
func TestRulesAgreeWithFindings(t *testing.T) {
	// Four nodes in two zones, as in spread/findings_test.go.
	cluster := func(cordoned ...string) map[string]*spread.Node {
		nodes := map[string]*spread.Node{
			"n1": {Name: "n1", Domains: []string{"a"}}, "n2": {Name: "n2", Domains: []string{"b"}},
			"n3": {Name: "n3", Domains: []string{"a"}}, "n4": {Name: "n4", Domains: []string{"b"}},
		}
		for _, name := range cordoned {
			nodes[name].Unschedulable = []spread.Reason{spread.ReasonCordoned}
		}
		return nodes
	}
	deployment := func(desired, minNodes int, on ...string) *spread.Service {
		replicas := make([]spread.Replica, 0, len(on))
		for _, node := range on {
			replicas = append(replicas, spread.Replica{Node: node, Ready: true})
		}
		return &spread.Service{Namespace: "ns", Kind: spread.KindDeployment, Name: "svc", DesiredReplicas: desired, MinNodes: minNodes, Replicas: replicas}
	}
	cases := []struct {
		name    string
		nodes   map[string]*spread.Node
		service *spread.Service
		// findings is how many findings the row of findings_test.go
		// expects: a guard against a mistyped copy of the row.
		findings int
	}{
		{"spread over four nodes", cluster(), deployment(4, 0, "n1", "n2", "n3", "n4"), 0},
		{"mathoid day one, min_nodes 2: two nodes are enough", cluster(), deployment(4, 0, "n1", "n1", "n2", "n2"), 0},
		{"mathoid day one, min_nodes 3", cluster(), deployment(4, 3, "n1", "n1", "n2", "n2"), 1},
		{"mathoid day one, min_nodes 3, cluster too small to do better", cluster("n3", "n4"), deployment(4, 3, "n1", "n1", "n2", "n2"), 0},
		{"mathoid day two: no replica survives", cluster("n1", "n2"), deployment(4, 0, "n1", "n1", "n2", "n2"), 1},
		{"sequential reimage cordons one of two nodes", cluster("n1"), deployment(4, 0, "n1", "n1", "n2", "n2"), 1},
		{"single-homed now", cluster(), deployment(3, 0, "n1", "n1", "n1"), 2},
		{"single-homed on a cordoned node", cluster("n1"), deployment(3, 0, "n1", "n1", "n1"), 3},
		{"single-homed was the steady state: not caused by maintenance", cluster("n2"), deployment(3, 0, "n1", "n1", "n1"), 2},
		{"two nodes, one zone", cluster(), deployment(2, 0, "n1", "n3"), 1},
		{"one zone while the other zone is cordoned", cluster("n2", "n4"), deployment(2, 0, "n1", "n3"), 0},
		{"not enough ready replicas to spread is an availability problem, not spread", cluster(), deployment(3, 3, "n1", "n2"), 0},
		{"one desired replica never pages", cluster("n1"), deployment(1, 0, "n1"), 0},
		{"min-nodes 1 never pages", cluster("n1"), deployment(3, 1, "n1", "n1", "n1"), 0},
		{"nothing ready: other monitoring pages", cluster("n1"), deployment(3, 0), 0},
	}
	alertNames := []string{
		spread.AlertNoReplicaSurvivesMaintenance, spread.AlertMaintenanceBelowMinNodes,
		spread.AlertSingleHomed, spread.AlertBelowMinNodes, spread.AlertSingleTopologyDomain,
	}

	var groups []map[string]any
	for _, tc := range cases {
		c := &spread.Cluster{TopologyKeys: []string{"zone"}, Nodes: tc.nodes, Services: []*spread.Service{tc.service}}
		report := spread.Analyze(c, spread.Options{DefaultMinNodes: 2})
		findings := report.Findings()
		if len(findings) != tc.findings {
			t.Fatalf("%s: Findings returned %d findings, the row expects %d: the copy of the row differs from spread/findings_test.go", tc.name, len(findings), tc.findings)
		}
		expected := make(map[string][]map[string]any)
		for _, f := range findings {
			labels := map[string]string{
				"severity": string(f.Severity), "namespace": f.Figures.Service.Namespace,
				"kind": string(f.Figures.Service.Kind), "name": f.Figures.Service.Name,
				// The service alerts merge the exporter's replicas:
				// instance is aggregated away, job stays.
				"job": "kube-spread-exporter",
			}
			if f.TopologyKey != "" {
				labels["topology_key"] = f.TopologyKey
			}
			expected[f.Alert] = append(expected[f.Alert], map[string]any{"exp_labels": labels})
		}
		var ruleTests []map[string]any
		for _, alert := range alertNames {
			ruleTests = append(ruleTests, map[string]any{"eval_time": "15m", "alertname": alert, "exp_alerts": expected[alert]})
		}
		groups = append(groups, map[string]any{
			"name":             tc.name,
			"interval":         "30s",
			"input_series":     series(report),
			"alert_rule_test":  ruleTests,
			"external_labels":  map[string]string{},
			"promql_expr_test": []any{},
		})
	}

	dir := t.TempDir()
	rulesWithoutAnnotations(t, filepath.Join(dir, "rules.yml"))
	testFile := map[string]any{"rule_files": []string{"rules.yml"}, "evaluation_interval": "30s", "tests": groups}
	content, err := yaml.Marshal(testFile)
	if err != nil {
		t.Fatal(err)
	}
	testPath := filepath.Join(dir, "findings_test.yml")
	if err := os.WriteFile(testPath, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool(t), "test", "rules", testPath).CombinedOutput()
	if err != nil {
		t.Fatalf("the rules and spread.Findings disagree (promtool test rules: %v):\n%s", err, out)
	}
}

// series renders the report as promtool input series, one value held for
// 15m, with the names and labels of docs/metrics.md plus the target labels.
func series(report *spread.Report) []map[string]string {
	const target = `job="kube-spread-exporter",instance="10.0.0.1:8080"`
	var out []map[string]string
	add := func(name, labels string, value float64) {
		out = append(out, map[string]string{
			"series": fmt.Sprintf("%s{%s,%s}", name, labels, target),
			"values": fmt.Sprintf("%gx31", value),
		})
	}
	for _, f := range report.Services {
		s := f.Service
		labels := fmt.Sprintf(`namespace=%q,kind=%q,name=%q`, s.Namespace, s.Kind, s.Name)
		add("kube_spread_replicas_ready", labels, float64(f.ReplicasReady))
		add("kube_spread_replicas_schedulable", labels, float64(f.ReplicasSchedulable))
		add("kube_spread_nodes", labels, float64(f.Nodes))
		add("kube_spread_schedulable_nodes", labels, float64(f.SchedulableNodes))
		add("kube_spread_min_nodes", labels, float64(f.MinNodes))
		for _, d := range f.Domains {
			add("kube_spread_topology_domains", fmt.Sprintf("%s,topology_key=%q", labels, d.Key), float64(d.All))
			add("kube_spread_schedulable_topology_domains", fmt.Sprintf("%s,topology_key=%q", labels, d.Key), float64(d.Schedulable))
		}
	}
	for _, d := range report.Domains {
		add("kube_spread_cluster_topology_domains", fmt.Sprintf("topology_key=%q", d.Key), float64(d.All))
		add("kube_spread_cluster_schedulable_topology_domains", fmt.Sprintf("topology_key=%q", d.Key), float64(d.Schedulable))
	}
	for _, n := range report.Nodes {
		value := 0.0
		if n.Node.Schedulable() {
			value = 1
		}
		add("kube_spread_node_schedulable", fmt.Sprintf("node=%q", n.Node.Name), value)
	}
	slices.SortFunc(out, func(a, b map[string]string) int { return strings.Compare(a["series"], b["series"]) })
	return out
}

// rulesWithoutAnnotations writes the rule file with every annotation
// removed, so that promtool compares labels only.
func rulesWithoutAnnotations(t *testing.T, path string) {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(root(t), RuleFile))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(content, &file); err != nil {
		t.Fatal(err)
	}
	groups, _ := file["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			delete(r.(map[string]any), "annotations")
		}
	}
	stripped, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, stripped, 0o644); err != nil {
		t.Fatal(err)
	}
}
