package dashboards

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// renderedBoards renders the dashboards and reads them back, by file name.
func renderedBoards(t *testing.T) map[string]*Board {
	t.Helper()
	files, err := Render(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	boards := map[string]*Board{}
	for _, f := range files {
		b, err := ParseBoard(f.JSON)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		boards[f.Name] = b
	}
	if len(boards) != 2 {
		t.Fatalf("rendered %d dashboards, want the overview and the service dashboard", len(boards))
	}
	return boards
}

// TestCommittedDashboardsAreGenerated fails when the JSON files in this
// directory differ from what the code renders: CI catches a dashboard
// edited by hand, or code changed without regenerating.
func TestCommittedDashboardsAreGenerated(t *testing.T) {
	files, err := Render(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var rendered []string
	for _, f := range files {
		rendered = append(rendered, f.Name)
		committed, err := os.ReadFile(f.Name)
		if err != nil {
			t.Errorf("%v: run `go run ./dashboards/generate` and commit the result", err)
			continue
		}
		if !bytes.Equal(committed, f.JSON) {
			t.Errorf("%s differs from what the code renders (%d bytes committed, %d rendered): run `go run ./dashboards/generate` and commit the result",
				f.Name, len(committed), len(f.JSON))
		}
	}
	onDisk, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rendered)
	if !slices.Equal(onDisk, rendered) {
		t.Errorf("JSON files in dashboards/: %v, want exactly the generated %v", onDisk, rendered)
	}
}

// TestPanelsAreComplete pins the conventions every panel follows: a title,
// a description, a unit, and the data source of the datasource variable
// (a uid would only exist in the Grafana the dashboard was made in).
func TestPanelsAreComplete(t *testing.T) {
	for name, b := range renderedBoards(t) {
		if len(b.Panels) == 0 {
			t.Errorf("%s: no panels", name)
		}
		for i, p := range b.Panels {
			where := fmt.Sprintf("%s: panel %d %q", name, i, p.Title)
			if p.Title == "" {
				t.Errorf("%s: no title", where)
			}
			if p.Description == "" {
				t.Errorf("%s: no description", where)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: no unit (fieldConfig.defaults.unit)", where)
			}
			if p.Datasource == nil || *p.Datasource != (DatasourceRef{Type: "prometheus", UID: "${datasource}"}) {
				t.Errorf("%s: datasource %+v, want prometheus ${datasource}", where, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", where)
			}
			for _, target := range p.Targets {
				if strings.TrimSpace(target.Expr) == "" {
					t.Errorf("%s: query %s is empty", where, target.RefID)
				}
				// A query without a datasource uses the panel's.
				if target.Datasource != nil && target.Datasource.UID != "${datasource}" {
					t.Errorf("%s: query %s has datasource %+v, want the panel's", where, target.RefID, target.Datasource)
				}
			}
		}
		for _, v := range b.Templating.List {
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
				t.Errorf("%s: variable %s has datasource %+v, want ${datasource}", name, v.Name, v.Datasource)
			}
		}
	}
}

// variableReference matches $name, ${name}, ${name:format} and [[name]].
var variableReference = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]`)

// referencedVariables lists the variables text refers to, Grafana's
// built-ins ($__rate_interval, ${__data.fields.x}) left out.
func referencedVariables(text string) []string {
	var names []string
	for _, m := range variableReference.FindAllStringSubmatch(text, -1) {
		name := m[1] + m[2] + m[3]
		if !strings.HasPrefix(name, "__") {
			names = append(names, name)
		}
	}
	return names
}

// TestVariablesAreUsed fails on a variable nothing depends on: a selector
// that does nothing misleads whoever changes it. Uses count in panel
// queries and data sources, links and other variables' queries.
func TestVariablesAreUsed(t *testing.T) {
	want := map[string][]string{
		OverviewUID + ".json": {"datasource", "cluster", "namespace", "kind"},
		ServiceUID + ".json":  {"datasource", "cluster", "namespace", "kind", "name"},
	}
	for name, b := range renderedBoards(t) {
		var defined []string
		used := map[string]bool{}
		for _, v := range b.Templating.List {
			defined = append(defined, v.Name)
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				for _, r := range referencedVariables(q) {
					used[r] = true
				}
			}
		}
		for _, p := range b.Panels {
			texts := []string{p.Datasource.UID}
			for _, target := range p.Targets {
				texts = append(texts, target.Expr)
			}
			for _, l := range p.FieldConfig.Defaults.Links {
				texts = append(texts, l.URL)
			}
			for _, text := range texts {
				for _, r := range referencedVariables(text) {
					used[r] = true
				}
			}
		}
		if !slices.Equal(defined, want[name]) {
			t.Errorf("%s: variables %v, want %v", name, defined, want[name])
		}
		for _, v := range defined {
			if !used[v] {
				t.Errorf("%s: variable %s is used by no query, data source or link", name, v)
			}
		}
		for r := range used {
			if !slices.Contains(defined, r) {
				t.Errorf("%s: $%s is used but not defined", name, r)
			}
		}
	}
}

// Overview's data link must carry the row's service to the service
// dashboard, under the variable names that dashboard defines.
func TestOverviewLinksToServiceDashboard(t *testing.T) {
	b := renderedBoards(t)[OverviewUID+".json"]
	var urls []string
	for _, p := range b.Panels {
		for _, l := range p.FieldConfig.Defaults.Links {
			urls = append(urls, l.URL)
		}
	}
	if len(urls) != 1 {
		t.Fatalf("data links %v, want one (services at risk)", urls)
	}
	for _, part := range []string{"/d/" + ServiceUID + "/", "${datasource:queryparam}", "${cluster:queryparam}",
		"var-namespace=${__data.fields.namespace}", "var-kind=${__data.fields.kind}", "var-name=${__data.fields.name}"} {
		if !strings.Contains(urls[0], part) {
			t.Errorf("data link %q lacks %q", urls[0], part)
		}
	}
}

// allowedUndocumented are metrics the dashboards may use that the exporter
// does not publish: Prometheus's own.
var allowedUndocumented = map[string]bool{"up": true}

// documentedMetrics reads the metric names in the tables of docs/metrics.md.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(kube_spread_\\w+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		names[m[1]] = true
	}
	if len(names) < 10 {
		t.Fatalf("found %d metrics in docs/metrics.md's tables, want them all: did the table format change?", len(names))
	}
	return names
}

var (
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	braces        = regexp.MustCompile(`\{[^}]*\}`)
	brackets      = regexp.MustCompile(`\[[^\]]*\]`)
	grouping      = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	labelValues   = regexp.MustCompile(`label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)`)
	identifier    = regexp.MustCompile(`[A-Za-z_:][\w:]*`)
	keywords      = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames lists the metric names a PromQL expression (or a Grafana
// label_values query) selects. It is a small lexer, not a parser: label
// matchers, ranges and grouping labels are cut out first, then every
// identifier that is not a function call or a keyword is a metric.
func metricNames(expr string) []string {
	expr = stringLiteral.ReplaceAllString(expr, `""`)
	expr = braces.ReplaceAllString(expr, "")
	expr = brackets.ReplaceAllString(expr, "")
	expr = grouping.ReplaceAllString(expr, "")
	expr = labelValues.ReplaceAllString(expr, "$1")
	var names []string
	for _, loc := range identifier.FindAllStringIndex(expr, -1) {
		word := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if keywords[strings.ToLower(word)] || strings.HasPrefix(rest, "(") {
			continue
		}
		if loc[0] > 0 && (expr[loc[0]-1] == '$' || expr[loc[0]-1] == '.' || (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9')) {
			continue
		}
		if !slices.Contains(names, word) {
			names = append(names, word)
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	tests := []struct{ expr string }{
		{`count(kube_spread_nodes{cluster=~"$cluster", name="a or b"} == 1) or vector(0)`},
		{`sum by (node, job) (rate(kube_spread_list_watch_errors_total[$__rate_interval])) * on (node) group_left (reason) up`},
		{`label_values(kube_spread_min_nodes{namespace="$namespace"}, kind)`},
		{`(a > 0 and b == 1e3) unless c`},
	}
	want := [][]string{
		{"kube_spread_nodes"},
		{"kube_spread_list_watch_errors_total", "up"},
		{"kube_spread_min_nodes"},
		{"a", "b", "c"},
	}
	for i, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, want[i]) {
			t.Errorf("metricNames(%q) = %v, want %v", tt.expr, got, want[i])
		}
	}
}

// TestQueriesUseDocumentedMetrics fails on a query of a metric the
// exporter does not publish (docs/metrics.md is checked against the
// collector by collector/docs_test.go): a typo or a renamed metric would
// otherwise show as an empty panel only in a real Grafana.
func TestQueriesUseDocumentedMetrics(t *testing.T) {
	documented := documentedMetrics(t)
	for name, b := range renderedBoards(t) {
		check := func(where, expr string) {
			metrics := metricNames(expr)
			if len(metrics) == 0 {
				t.Errorf("%s: %s: no metric found in %q", name, where, expr)
			}
			for _, m := range metrics {
				if !documented[m] && !allowedUndocumented[m] {
					t.Errorf("%s: %s: metric %s is not documented in docs/metrics.md", name, where, m)
				}
			}
		}
		for _, p := range b.Panels {
			for _, target := range p.Targets {
				check("panel "+p.Title+" query "+target.RefID, target.Expr)
			}
		}
		for _, v := range b.Templating.List {
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				check("variable "+v.Name, q)
			}
		}
	}
}

// TestClusterLabelOption: the cluster variable and every matcher follow
// the configured label, for Prometheus setups that call it otherwise.
func TestClusterLabelOption(t *testing.T) {
	files, err := Render(Options{ClusterLabel: "k8s_cluster"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		text := string(f.JSON)
		if strings.Contains(text, `\"cluster\"`) || strings.Contains(text, ` cluster=~`) || strings.Contains(text, `{cluster=~`) {
			t.Errorf("%s: still matches on the label cluster", f.Name)
		}
		if !strings.Contains(text, `k8s_cluster=~\"$cluster\"`) || !strings.Contains(text, `label_values(kube_spread_build_info, k8s_cluster)`) {
			t.Errorf("%s: does not use the label k8s_cluster", f.Name)
		}
	}
}
