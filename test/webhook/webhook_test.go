package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/admission"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
)

// The warnings of the mathoid cordons, as kubectl prints them.
var (
	warn2001 = []string{
		"kube-spread-exporter: taking kubernetes2001 out of service (cordoned) hurts 2 services:",
		"mathoid/Deployment/mathoid would be single-homed: 4 ready replicas on 2 nodes in service now, 2 on 1 after (min_nodes 2)",
		"mathoid/Service/mathoid would be single-homed: 4 ready replicas on 2 nodes in service now, 2 on 1 after (min_nodes 2)",
	}
	warn2002After2001 = []string{
		"kube-spread-exporter: taking kubernetes2002 out of service (cordoned) hurts 2 services, with kubernetes2001 out of service already:",
		"mathoid/Deployment/mathoid would have no replica left: 2 ready replicas on 1 node in service now, 0 on 0 after (min_nodes 2)",
		"mathoid/Service/mathoid would have no replica left: 2 ready replicas on 1 node in service now, 0 on 0 after (min_nodes 2)",
	}
)

// TestWebhookOnTheMathoidReplay replays the 2018 incident up to day two
// and cordons through kubectl with the webhook in place: the warnings of
// the cordons that would take mathoid down, none for a node that holds
// nothing of it, the refusal in deny mode and its override, the cordon
// going through when the exporter is stopped or hung, and a drain.
func TestWebhookOnTheMathoidReplay(t *testing.T) {
	ctx := context.Background()
	client := kubernetes.NewForConfigOrDie(cp.Config)
	scenario := &replay.Scenario{Client: client, Logf: t.Logf}
	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("warn", func(t *testing.T) {
		e := startExporter(t, admission.ModeWarn)
		waitForWebhook(t)

		// 2003 holds no mathoid replica since day one: nothing to say.
		r := mustSucceed(t, "cordon", "kubernetes2003")
		if w := r.warnings(); len(w) > 0 || !strings.Contains(r.stdout, "node/kubernetes2003 cordoned") {
			t.Errorf("cordon of kubernetes2003, which holds nothing relevant: want no warning\n%s", r)
		}
		mustSucceed(t, "uncordon", "kubernetes2003")

		r = mustSucceed(t, "cordon", "kubernetes2001")
		if !hasLines(r.warnings(), warn2001) {
			t.Errorf("cordon of kubernetes2001: want the warnings\n%s\ngot\n%s", strings.Join(warn2001, "\n"), r)
		}
		t.Logf("kubectl cordon kubernetes2001:\n%s", r.stderr)
		uncordonAndWait(t, e, "kubernetes2001")

		// The operator of 2018: both at once. The second cordon comes
		// before the watch can have delivered the first.
		r = mustSucceed(t, "cordon", "kubernetes2001", "kubernetes2002")
		if !hasLines(r.warnings(), warn2001) || !hasLines(r.warnings(), warn2002After2001) {
			t.Errorf("kubectl cordon kubernetes2001 kubernetes2002: want the warnings\n%s\n%s\ngot\n%s",
				strings.Join(warn2001, "\n"), strings.Join(warn2002After2001, "\n"), r)
		}
		t.Logf("kubectl cordon kubernetes2001 kubernetes2002:\n%s", r.stderr)
		uncordonAndWait(t, e, "kubernetes2001", "kubernetes2002")

		exporterproc.Eventually(t, e, "the webhook's counts", func(m map[string]*dto.MetricFamily) error {
			warned, _ := exporterproc.Value(m, "kube_spread_admission_requests_total", map[string]string{"result": "warned"})
			safe, _ := exporterproc.Value(m, "kube_spread_admission_requests_total", map[string]string{"result": "safe"})
			if warned < 3 || safe < 1 {
				return fmt.Errorf("warned %v (want at least 3), safe %v (want at least 1)", warned, safe)
			}
			return atMost(m, "kube_spread_admission_requests_total", map[string]string{"result": "denied"}, 0)
		})
	})

	t.Run("deny", func(t *testing.T) {
		e := startExporter(t, admission.ModeDeny)
		waitForWebhook(t)

		// Single-homed is a warning in deny mode too.
		r := mustSucceed(t, "cordon", "kubernetes2001")
		if !hasLines(r.warnings(), warn2001) {
			t.Errorf("deny mode, cordon of kubernetes2001: want the warnings\n%s\ngot\n%s", strings.Join(warn2001, "\n"), r)
		}

		// kubectl cordon prints the refusal and exits 0 all the same
		// (kubectl's RunCordonOrUncordon returns no error): the node's
		// state is what counts. kubectl patch exits 1.
		r = kubectl(t, "cordon", "kubernetes2002")
		refusal := append([]string{"refused by " + warn2002After2001[0]}, warn2002After2001[1:]...)
		refusal = append(refusal, "in an emergency, set the annotation first: kubectl annotate node kubernetes2002 "+admission.OverrideAnnotation+"='<why>'")
		if want := `error: unable to cordon node "kubernetes2002": admission webhook "nodes.kube-spread.io" denied the request: ` + strings.Join(refusal, "\n"); !strings.Contains(r.stderr, want) {
			t.Errorf("deny mode, cordon of kubernetes2002 after 2001: want the refusal\n%s\ngot\n%s", want, r)
		}
		t.Logf("kubectl cordon kubernetes2002 (deny mode):\n%s", r.stderr)
		if r = kubectl(t, "patch", "node", "kubernetes2002", "--type=merge", "-p", `{"spec":{"unschedulable":true}}`); r.exitCode != 1 || !strings.Contains(r.stderr, "denied the request: refused by kube-spread-exporter") {
			t.Errorf("deny mode, kubectl patch of kubernetes2002: want exit 1 with the refusal\n%s", r)
		}
		// kubectl drain goes on to evict after its cordon was refused, as
		// docs/admission.md warns: shown with a server-side dry run, which
		// changes nothing.
		r = kubectl(t, "drain", "kubernetes2002", "--ignore-daemonsets", "--dry-run=server")
		if !strings.Contains(r.stderr, `error: unable to cordon node "kubernetes2002": admission webhook "nodes.kube-spread.io" denied the request`) ||
			!strings.Contains(r.stdout, "evicting pod mathoid/") {
			t.Errorf("deny mode, kubectl drain --dry-run=server of kubernetes2002: want the refusal, then evictions all the same\n%s", r)
		}
		t.Logf("kubectl drain kubernetes2002 --dry-run=server (deny mode):\n%s%s", r.stdout, r.stderr)
		if node, err := client.CoreV1().Nodes().Get(ctx, "kubernetes2002", metav1.GetOptions{}); err != nil || node.Spec.Unschedulable {
			t.Errorf("kubernetes2002 after the refusals: err %v, cordoned %v; want it in service", err, node != nil && node.Spec.Unschedulable)
		}

		r = mustSucceed(t, "annotate", "node", "kubernetes2002", admission.OverrideAnnotation+"=T4711 disk failing, mathoid paged")
		if w := r.warnings(); len(w) > 0 {
			t.Errorf("setting the override annotation warned:\n%s", r)
		}
		r = mustSucceed(t, "cordon", "kubernetes2002")
		override := `admitted by the annotation ` + admission.OverrideAnnotation + `="T4711 disk failing, mathoid paged" on kubernetes2002; remove it when the maintenance is done`
		if !hasLines(r.warnings(), append(warn2002After2001, override)) {
			t.Errorf("deny mode, cordon of kubernetes2002 with the override: want the warnings and\n%s\ngot\n%s", override, r)
		}
		t.Logf("kubectl cordon kubernetes2002 (deny mode, override):\n%s", r.stderr)
		if node, err := client.CoreV1().Nodes().Get(ctx, "kubernetes2002", metav1.GetOptions{}); err != nil || !node.Spec.Unschedulable {
			t.Errorf("kubernetes2002 after the override: err %v; want it cordoned", err)
		}

		exporterproc.Eventually(t, e, "the refusal and the override counted", func(m map[string]*dto.MetricFamily) error {
			return errors.Join(
				exporterproc.Expect(m, "kube_spread_admission_requests_total", map[string]string{"result": "denied"}, 3),
				exporterproc.Expect(m, "kube_spread_admission_requests_total", map[string]string{"result": "overridden"}, 1),
			)
		})
		for _, want := range []string{`msg="refused a change that leaves a service with no replica" component=admission node=kubernetes2002`,
			`msg="admitted by the override annotation a change that leaves a service with no replica" component=admission node=kubernetes2002`} {
			if !strings.Contains(e.Log(), want) {
				t.Errorf("the exporter's log lacks %s", want)
			}
		}
		mustSucceed(t, "annotate", "node", "kubernetes2002", admission.OverrideAnnotation+"-")
		uncordonAndWait(t, e, "kubernetes2001", "kubernetes2002")
	})

	t.Run("exporter stopped", func(t *testing.T) {
		// No exporter listens: the API server's call fails at once and
		// failurePolicy Ignore lets the cordon through, silently. kubectl
		// itself takes a while on a loaded machine: the bound is the
		// timeout plus what a plain kubectl get takes just before.
		overhead := mustSucceed(t, "get", "node", "kubernetes2001").took
		r := mustSucceed(t, "cordon", "kubernetes2001", "kubernetes2002")
		if w := r.warnings(); len(w) > 0 || r.took > timeoutSeconds*time.Second+overhead {
			t.Errorf("with no exporter: want the cordons through within %ds (and kubectl's %s), silently\n%s", timeoutSeconds, overhead, r)
		}
		t.Logf("kubectl cordon kubernetes2001 kubernetes2002 with no exporter: %s (kubectl get: %s)", r.took.Round(time.Millisecond), overhead.Round(time.Millisecond))
		mustSucceed(t, "uncordon", "kubernetes2001", "kubernetes2002")
	})

	t.Run("exporter hung", func(t *testing.T) {
		// Stopped with SIGSTOP, the exporter accepts connections (the
		// kernel does) and never answers: the API server gives up after
		// timeoutSeconds and lets the cordon through.
		e := startExporter(t, admission.ModeDeny)
		waitForWebhook(t)
		if err := syscall.Kill(e.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := syscall.Kill(e.PID(), syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}()
		// Through after the API server waited timeoutSeconds for the
		// webhook, and not much later (kubectl's own time, as above).
		overhead := mustSucceed(t, "get", "node", "kubernetes2001").took
		for _, node := range []string{"kubernetes2001", "kubernetes2002"} {
			r := mustSucceed(t, "cordon", node)
			if w := r.warnings(); len(w) > 0 || r.took < timeoutSeconds*time.Second || r.took > timeoutSeconds*time.Second+overhead+time.Second {
				t.Errorf("with a hung exporter in deny mode: want the cordon of %s through after the %ds timeout (and kubectl's %s), silently\n%s", node, timeoutSeconds, overhead, r)
			}
			t.Logf("kubectl cordon %s with a hung exporter: %s (kubectl get: %s)", node, r.took.Round(time.Millisecond), overhead.Round(time.Millisecond))
		}
		if err := syscall.Kill(e.PID(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		uncordonAndWait(t, e, "kubernetes2001", "kubernetes2002")
	})

	t.Run("drain", func(t *testing.T) {
		startExporter(t, admission.ModeWarn)
		waitForWebhook(t)
		// kubectl drain cordons first: that is when the warning comes.
		r := mustSucceed(t, "drain", "kubernetes2001", "--ignore-daemonsets", "--timeout=90s")
		if !hasLines(r.warnings(), warn2001) || !strings.Contains(r.stdout, "node/kubernetes2001 drained") {
			t.Errorf("kubectl drain kubernetes2001: want the warnings\n%s\ngot\n%s", strings.Join(warn2001, "\n"), r)
		}
		t.Logf("kubectl drain kubernetes2001:\n%s", r.stderr)
	})
}

// waitForWebhook waits until a server-side dry run of the cordon of
// kubernetes2001 draws the webhook's warning: the API server calls the
// exporter, and the exporter's caches hold day one. A dry run changes
// nothing.
func waitForWebhook(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := mustSucceed(t, "cordon", "kubernetes2001", "--dry-run=server")
		if hasLines(r.warnings(), warn2001) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook gave no warning within a minute:\n%s", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uncordonAndWait uncordons the nodes and waits until the exporter's
// caches have them in service again, so that the next step starts from
// day one.
func uncordonAndWait(t *testing.T, e *exporterproc.Exporter, nodes ...string) {
	t.Helper()
	mustSucceed(t, append([]string{"uncordon"}, nodes...)...)
	exporterproc.Eventually(t, e, "nodes back in service", func(m map[string]*dto.MetricFamily) error {
		var errs []error
		for _, n := range nodes {
			errs = append(errs, exporterproc.Expect(m, "kube_spread_node_schedulable", map[string]string{"node": n}, 1))
		}
		return errors.Join(errs...)
	})
}

func atMost(m map[string]*dto.MetricFamily, name string, labels map[string]string, limit float64) error {
	if v, ok := exporterproc.Value(m, name, labels); !ok || v > limit {
		return fmt.Errorf("%s%v = %v (present %t), want at most %v", name, labels, v, ok, limit)
	}
	return nil
}
