package dashboards

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/dashboards"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/promserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// interval is the scrape and evaluation interval: short, so that the
// figures reach Prometheus within seconds of the replay.
const interval = 5 * time.Second

// variables are the values the queries are run with: the replay's service,
// and "All" for the cluster, whose label the test's Prometheus does not
// have (as most do not). Grafana's interval variables get what it would
// choose for a short time range at a 5s scrape interval.
var variables = map[string]string{
	"cluster":         ".*",
	"namespace":       replay.Namespace,
	"kind":            "Deployment",
	"name":            replay.Name,
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "5m",
}

var variableReference = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]`)

// substitute fills in the variables of a query, as Grafana does before it
// sends the query. A variable the test does not know is an error: a new
// one needs a value here.
func substitute(expr string) (string, error) {
	var unknown []string
	out := variableReference.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableReference.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		value, ok := variables[name]
		if !ok {
			unknown = append(unknown, name)
		}
		return value
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("variables %v have no value in the test", unknown)
	}
	return out, nil
}

// query is one panel query of a committed dashboard.
type query struct {
	where string // dashboard, panel and refId, for messages
	expr  string // with the variables substituted
}

func panelQueries(t *testing.T, root string) []query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards in dashboards/")
	}
	var queries []query
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		board, err := dashboards.ParseBoard(raw)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, p := range board.Panels {
			for _, target := range p.Targets {
				where := fmt.Sprintf("%s / %s / %s", board.Title, p.Title, target.RefID)
				expr, err := substitute(target.Expr)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				queries = append(queries, query{where: where, expr: expr})
			}
		}
	}
	return queries
}

// TestEveryPanelQueryReturnsData replays the mathoid incident to its day
// two state (every replica on the two cordoned nodes), adds a service that
// is single-homed on a schedulable node (the replay has none, and the
// overview shows such nodes), and runs every panel query of both
// dashboards against a Prometheus that scrapes two exporter replicas. Each must be accepted and return samples;
// the verdict panels must also give the verdicts of that state.
func TestEveryPanelQueryReturnsData(t *testing.T) {
	ctx := context.Background()
	root := repo.RootForTest(t)
	// Two replicas, as deploy/ runs the exporter: every figure below must
	// still be counted once.
	prometheus := startPrometheus(t, startExporter(t), startExporter(t))

	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	scenario := &replay.Scenario{Client: client, Logf: t.Logf}
	for _, step := range []func(context.Context) error{scenario.Setup, scenario.DayOne, scenario.DayTwo} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := createSingleHomed(ctx, client); err != nil {
		t.Fatal(err)
	}

	queries := panelQueries(t, root)
	// Figures the panels must show in this state, besides having data:
	// mathoid's Deployment and Service have no replica on a schedulable
	// node, single-homed has two on kubernetes2003.
	wantValues := map[string]float64{
		"kube-spread / Service / State / A":                3, // no schedulable replica
		"kube-spread / Service / Surviving replicas / A":   0,
		"kube-spread / Service / Surviving replicas / B":   replay.Replicas,
		"kube-spread / Service / Min nodes / A":            2,
		"kube-spread / Service / Node concentration / A":   0.5,
		"kube-spread / Service / Replicas per node / A":    2,
		"kube-spread / Service / Its nodes going away / A": 2,
		// 2003 and 2004 take two replicas each (the spread constraint
		// leaves the cordoned nodes out), and hold no image: pristine.
		"kube-spread / Service / Replicas without room / A":        0,
		"kube-spread / Service / Warm nodes / A":                   0,
		"kube-spread / Overview / No schedulable replica / A":      1, // mathoid's Deployment: kind is Deployment
		"kube-spread / Overview / Single-homed / A":                1,
		"kube-spread / Overview / Below min nodes / A":             0,
		"kube-spread / Overview / OK / A":                          0,
		"kube-spread / Overview / Unschedulable nodes / A":         2,
		"kube-spread / Overview / Services at risk / F":            2, // min nodes of all three
		"kube-spread / Overview / Unschedulable nodes and why / A": 2, // mathoid's pods on each
		"kube-spread / Overview / Sole home of services / A":       1,
	}
	for where := range wantValues {
		if !slices.ContainsFunc(queries, func(q query) bool { return q.where == where }) {
			t.Fatalf("no panel query %s: the test's expectations are out of date", where)
		}
	}

	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	for {
		var problems []string
		for _, q := range queries {
			vector, err := prometheus.Query(ctx, q.expr)
			if err != nil {
				// PromQL errors do not go away by waiting.
				t.Fatalf("%s: %v", q.where, err)
			}
			if len(vector) == 0 {
				problems = append(problems, fmt.Sprintf("%s: no data from %s", q.where, q.expr))
				continue
			}
			// A sample per replica would show each service or node twice.
			for _, sample := range vector {
				if _, ok := sample.Metric["instance"]; ok {
					t.Fatalf("%s: sample %v names an exporter instance: the replicas are not merged", q.where, sample.Metric)
				}
			}
			if want, ok := wantValues[q.where]; ok {
				// Every sample of the query: both mathoid kinds, every node.
				for _, sample := range vector {
					if got := float64(sample.Value); got != want {
						problems = append(problems, fmt.Sprintf("%s: %v = %v, want %v", q.where, sample.Metric, got, want))
					}
				}
			}
		}
		if len(problems) == 0 {
			t.Logf("all %d panel queries returned the expected data %s after the replay", len(queries), time.Since(start).Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s:\n%s", time.Since(start).Round(time.Second), strings.Join(problems, "\n"))
		}
		time.Sleep(time.Second)
	}
}

// createSingleHomed creates the Deployment single-homed in the replay's
// namespace: two replicas, both pinned to kubernetes2003, which is
// schedulable on day two.
func createSingleHomed(ctx context.Context, client kubernetes.Interface) error {
	labels := map[string]string{"app": "single-homed"}
	replicas := int32(2)
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "single-homed"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/hostname": "kubernetes2003"},
					// kwok runs nothing, so the image is never pulled.
					Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/single-homed:1"}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(replay.Namespace).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment single-homed: %w", err)
	}
	return nil
}

// startExporter builds the exporter, runs it against the control plane and
// waits for its caches to sync. Its log is printed if the test failed.
func startExporter(t *testing.T) *exporterproc.Exporter {
	t.Helper()
	return exporterproc.ForTest(t, cp.Kubeconfig)
}

// startPrometheus runs Prometheus scraping the exporters, replicas of one
// job as deploy/ runs them. A missing binary fails the test with
// promserver's message naming `make tools`.
func startPrometheus(t *testing.T, exporters ...*exporterproc.Exporter) *promserver.Server {
	t.Helper()
	seconds := fmt.Sprintf("%ds", int(interval.Seconds()))
	var targets []string
	for _, e := range exporters {
		targets = append(targets, fmt.Sprintf("%q", strings.TrimPrefix(e.URL, "http://")))
	}
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: kube-spread-exporter
    honor_labels: true
    static_configs:
      - targets: [%[2]s]
`, seconds, strings.Join(targets, ", "))
	prometheus, err := promserver.Start(context.Background(), t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := prometheus.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", prometheus.Log())
		}
	})
	return prometheus
}
