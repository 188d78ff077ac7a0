package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// TestMathoidReplay replays the 2018-07-04 incident and checks that the
// exporter shows the danger after day two's cordon, while all four pods
// still run: replicas_ready stays 4, replicas_schedulable drops to 0.
func TestMathoidReplay(t *testing.T) {
	ctx := context.Background()
	e := startExporter(t)
	scenario := &replay.Scenario{Client: client(t), Logf: t.Logf}
	deployment := map[string]string{"namespace": replay.Namespace, "kind": "Deployment", "name": replay.Name}
	service := map[string]string{"namespace": replay.Namespace, "kind": "Service", "name": replay.Name}
	figures := func(labels map[string]string, ready, schedulable, nodes, schedulableNodes, ratio float64) func(map[string]*dto.MetricFamily) error {
		return func(m map[string]*dto.MetricFamily) error {
			return errors.Join(
				expect(m, "kube_spread_replicas_ready", labels, ready),
				expect(m, "kube_spread_replicas_schedulable", labels, schedulable),
				expect(m, "kube_spread_nodes", labels, nodes),
				expect(m, "kube_spread_schedulable_nodes", labels, schedulableNodes),
				expect(m, "kube_spread_node_concentration_ratio", labels, ratio),
				expect(m, "kube_spread_min_nodes", labels, 2),
			)
		}
	}

	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	// The default scheduler spreads the four replicas over the four nodes.
	eventually(t, e, "setup: one replica per node", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			figures(deployment, 4, 4, 4, 4, 0.25)(m),
			figures(service, 4, 4, 4, 4, 0.25)(m),
			expect(m, "kube_spread_replicas_desired", deployment, 4),
			expect(m, "kube_spread_topology_domains", map[string]string{"name": replay.Name, "kind": "Service", "topology_key": "topology.kubernetes.io/zone"}, 2),
		)
	})

	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "day one: every replica on 2001 and 2002, all nodes schedulable again", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			figures(deployment, 4, 4, 2, 2, 0.5)(m),
			figures(service, 4, 4, 2, 2, 0.5)(m),
			expect(m, "kube_spread_node_replicas", map[string]string{"kind": "Deployment", "name": replay.Name, "node": "kubernetes2001"}, 2),
			expect(m, "kube_spread_node_replicas", map[string]string{"kind": "Deployment", "name": replay.Name, "node": "kubernetes2002"}, 2),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "kubernetes2003"}, 1),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "kubernetes2004"}, 1),
		)
	})

	askWhatIf(t, e)

	if err := scenario.DayTwo(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "day two: four ready replicas, none on a node that survives", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			figures(deployment, 4, 0, 2, 0, 0.5)(m),
			figures(service, 4, 0, 2, 0, 0.5)(m),
			expect(m, "kube_spread_schedulable_topology_domains", map[string]string{"kind": "Deployment", "name": replay.Name}, 0),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "kubernetes2001"}, 0),
			expect(m, "kube_spread_node_unschedulable_reason", map[string]string{"node": "kubernetes2002", "reason": "cordoned"}, 1),
		)
	})

	guardRefusesCordonedBatch(t, e)
}

// guardRefusesCordonedBatch asks, after day two's cordon, about the nodes
// that are already cordoned, as cordon-first tooling does (kubectl drain
// cordons before anything else): the README's guard, run as written, and
// the check must refuse them; a node holding no mathoid replica passes.
func guardRefusesCordonedBatch(t *testing.T, e *exporterproc.Exporter) {
	t.Helper()
	ctx := context.Background()
	guard := filepath.Join(t.TempDir(), "guard.sh")
	if err := os.WriteFile(guard, []byte(readmeGuard(t)), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"sh", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's guard needs %s: run \"make system-deps\"", tool)
		}
	}
	runGuard := func(nodes ...string) (int, string) {
		cmd := exec.CommandContext(ctx, guard, nodes...)
		cmd.Env = append(os.Environ(), "KUBE_SPREAD_EXPORTER="+e.URL)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		return exitCode(t, cmd.Run()), stderr.String()
	}
	if code, stderr := runGuard("kubernetes2001", "kubernetes2002"); code != 1 ||
		!strings.Contains(stderr, "refusing to take down kubernetes2001 kubernetes2002: no_replicas_left") ||
		!strings.Contains(stderr, "mathoid/Deployment/mathoid: 0 ready replicas left after: no_replicas_left") {
		t.Errorf("README guard on the cordoned batch {2001, 2002}: exit %d, stderr:\n%s\nwant exit 1 naming mathoid", code, stderr)
	}
	// 2003 holds no mathoid replica: taking it down changes nothing, and
	// mathoid's trouble on the cordoned nodes must not block it for ever.
	if code, stderr := runGuard("kubernetes2003"); code != 0 || !strings.Contains(stderr, "note: some service is no_replicas_left") {
		t.Errorf("README guard on {2003}: exit %d, stderr:\n%s\nwant exit 0 with a note on the trouble elsewhere", code, stderr)
	}
	if code, _ := runGuard("kubernetes2O01"); code != 3 {
		t.Errorf("README guard on a misspelt node: exit %d, want 3", code)
	}

	checkBinary := exporterproc.BuildForTest(t, "check_kube_spread")
	out, err := exec.CommandContext(ctx, checkBinary, "--url="+e.URL+"/metrics", "whatif", "--node=kubernetes2001", "--node=kubernetes2002").Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 || !strings.HasPrefix(string(out), "CRITICAL - taking down kubernetes2001, kubernetes2002 hurts 2 services: mathoid/Deployment/mathoid would have no replica left") {
		t.Errorf("check_kube_spread whatif on the cordoned batch: err %v, output:\n%s\nwant CRITICAL (exit 2) naming mathoid", err, out)
	}
}

// readmeGuard returns the reimage guard script of the README, so the test
// runs what users copy.
func readmeGuard(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, found := strings.Cut(string(readme), "```sh\n#!/bin/sh\n# Refuse a batch")
	script, _, closed := strings.Cut(after, "```")
	if !found || !closed {
		t.Fatal("README.md has no guard script (a sh block starting with \"# Refuse a batch\")")
	}
	return "#!/bin/sh\n# Refuse a batch" + script
}

// askWhatIf asks the preflight question of day two before its cordon, as
// reimage tooling should have in 2018, and checks that asking changes
// nothing in the cluster.
func askWhatIf(t *testing.T, e *exporterproc.Exporter) {
	t.Helper()
	ctx := context.Background()
	ask := func(query string) whatif.Answer {
		t.Helper()
		status, body, err := e.Get(ctx, whatif.PathWhatIf+"?"+query)
		if err != nil || status != http.StatusOK {
			t.Fatalf("what-if %s: status %d, err %v, body %s", query, status, err, body)
		}
		var answer whatif.Answer
		if err := json.Unmarshal([]byte(body), &answer); err != nil {
			t.Fatalf("what-if %s: %v: %s", query, err, body)
		}
		return answer
	}
	verdicts := func(a whatif.Answer) map[string]spread.Verdict {
		v := map[string]spread.Verdict{}
		for _, s := range a.Services {
			if s.Namespace == replay.Namespace {
				v[string(s.Kind)] = s.Verdict
			}
		}
		return v
	}

	parallel := ask("node=kubernetes2001&node=kubernetes2002")
	if parallel.Verdict != spread.VerdictNoReplicasLeft {
		t.Errorf("what-if 2001+2002: verdict %s, want %s", parallel.Verdict, spread.VerdictNoReplicasLeft)
	}
	if got, want := verdicts(parallel), map[string]spread.Verdict{"Deployment": spread.VerdictNoReplicasLeft, "Service": spread.VerdictNoReplicasLeft}; !reflect.DeepEqual(got, want) {
		t.Errorf("what-if 2001+2002: mathoid verdicts %v, want %v", got, want)
	}
	// 2001 and 2003 leave two replicas on 2002: single-homed, a warning
	// with the default min_nodes of 2, not a lost service.
	other := ask("node=kubernetes2001,kubernetes2003")
	if got, want := verdicts(other), map[string]spread.Verdict{"Deployment": spread.VerdictSingleHomed, "Service": spread.VerdictSingleHomed}; !reflect.DeepEqual(got, want) {
		t.Errorf("what-if 2001+2003: mathoid verdicts %v, want %v", got, want)
	}
	if status, body, _ := e.Get(ctx, whatif.PathWhatIf+"?node=kubernetes2O01"); status != http.StatusBadRequest || !strings.Contains(body, "unknown nodes: kubernetes2O01") {
		t.Errorf("what-if for a misspelt node: status %d, body %s", status, body)
	}

	// The same question through the check plugin, as a reimage script or
	// NRPE would ask it: exit 2 naming mathoid, exit 1 for the other batch.
	checkBinary := exporterproc.BuildForTest(t, "check_kube_spread")
	for _, tc := range []struct {
		nodes     []string
		exitCode  int
		firstLine string
	}{
		{[]string{"kubernetes2001", "kubernetes2002"}, 2, "CRITICAL - taking down kubernetes2001, kubernetes2002 hurts 2 services: mathoid/Deployment/mathoid would have no replica left, mathoid/Service/mathoid would have no replica left | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0"},
		{[]string{"kubernetes2001", "kubernetes2003"}, 1, "WARNING - taking down kubernetes2001, kubernetes2003 hurts 2 services: mathoid/Deployment/mathoid would be single-homed, mathoid/Service/mathoid would be single-homed | 'no_replicas_left'=0;;;0 'no_room'=0;;;0 'single_homed'=2;;;0 'below_min_nodes'=0;;;0"},
	} {
		args := []string{"--url=" + e.URL + "/metrics", "whatif"}
		for _, n := range tc.nodes {
			args = append(args, "--node="+n)
		}
		out, err := exec.CommandContext(ctx, checkBinary, args...).Output()
		code := exitCode(t, err)
		first, _, _ := strings.Cut(string(out), "\n")
		if code != tc.exitCode || first != tc.firstLine {
			t.Errorf("check_kube_spread whatif %v: exit %d, first line\n%s\nwant exit %d,\n%s", tc.nodes, code, first, tc.exitCode, tc.firstLine)
		}
	}

	nodes, err := client(t).CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if slices.Contains(replay.Nodes, n.Name) && n.Spec.Unschedulable {
			t.Errorf("node %s is cordoned after what-if questions: asking must change nothing", n.Name)
		}
	}
}
