package icinga

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
)

// The hosts of the daemon test: what an admin writes, one per situation.
const testHosts = `
object Host "k8s" {
  check_command = "dummy"
  vars.kube_spread_url = "%[1]s"
  vars.kube_spread_services_namespace = "mathoid"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
/* Host-level overrides reach only the check they belong to. */
object Host "k8s-overrides" {
  check_command = "dummy"
  vars.kube_spread_url = "%[1]s"
  vars.kube_spread_services_namespace = "mathoid"
  vars.kube_spread_services_critical = "2"
  vars.kube_spread_health_warning_stale = "30"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
object Host "k8s-unsynced" {
  check_command = "dummy"
  vars.kube_spread_url = "%[2]s"
  vars.kube_spread_health_warning_not_synced = "5"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
object Host "k8s-gone" {
  check_command = "dummy"
  vars.kube_spread_url = "%[3]s"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
/* A URL where the exporter answers 404: health UNKNOWN, not down. */
object Host "k8s-wrong-url" {
  check_command = "dummy"
  vars.kube_spread_url = "%[4]s"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
object Host "no-url" {
  check_command = "dummy"
  address = "127.0.0.1"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
`

// want is what one Icinga service must show: its state, the start of its
// output (or all of it), and perfdata values.
type want struct {
	host, service string
	state         int
	output        string
	// prefix compares only the start of the output: health outputs
	// hold ages that tick.
	prefix   bool
	perfdata map[string]float64
}

// TestMathoidReplay replays the 2018-07-04 incident on the control plane
// and reads every state as the monitoring systems do: a real Icinga 2
// daemon (Debian's configuration plus the shipped files, checks forced and
// read through its REST API) and a real NRPE daemon through check_nrpe,
// protocol v4 and -2, both against real exporters: one healthy, one whose
// caches never sync, and an address where none listens.
func TestMathoidReplay(t *testing.T) {
	ctx := context.Background()
	e := startExporter(t)
	url := e.URL + "/metrics"
	unsynced := startUnsyncedExporter(t)
	goneURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", freePort(t))
	hungURL := hungExporter(t)

	wrongURL := e.URL + "/no/such/metrics"
	icinga := install(t, fmt.Sprintf(testHosts, url, unsynced.URL+"/metrics", goneURL, wrongURL))
	api := icinga.start(t)
	nrpe := startNRPE(t, map[string]string{"": url, "unsynced": unsynced.URL + "/metrics", "gone": goneURL, "hung": hungURL})

	scenario := &replay.Scenario{Client: client(t), Logf: t.Logf}
	services := []string{"services", "--url", url, "--namespace", replay.Namespace}
	deployment := []string{"service", "--url", url, "--namespace", replay.Namespace, "--kind", "Deployment", "--name", replay.Name}

	// Independent of the replay: a host without URL, an exporter that
	// never syncs, one that is gone.
	for _, name := range api.services(t, "no-url") {
		// Debian's ping4 applies to a host with an address; ours must not.
		if strings.HasPrefix(name, "kube-spread") {
			t.Errorf("the host without kube_spread_url has the service %s", name)
		}
	}
	expectIcinga(t, api,
		want{host: "k8s-unsynced", service: "kube-spread-health", state: 1, prefix: true,
			output: "WARNING - kube-spread-exporter: 0 of 9 caches synced (not synced: ", perfdata: map[string]float64{"caches_synced": 0}},
		want{host: "k8s-unsynced", service: "kube-spread-k8s-mathoid", state: 3, prefix: true,
			output: "UNKNOWN - exporter caches not synced yet, no figures published (waiting for "},
		want{host: "k8s-gone", service: "kube-spread-health", state: 2,
			output: "CRITICAL - exporter down: get " + strings.TrimSuffix(goneURL, "/metrics") + "/api/v1/health: dial tcp " + strings.TrimSuffix(strings.TrimPrefix(goneURL, "http://"), "/metrics") + ": connect: connection refused"},
	)
	// The Dependency: with the health check CRITICAL, the service checks
	// are unreachable, so they neither run on schedule nor notify. (A
	// forced check still runs, and records that.)
	if r := api.force(t, "k8s-gone", "kube-spread-k8s-mathoid"); r.Reachable {
		t.Errorf("k8s-gone!kube-spread-k8s-mathoid is reachable while the health check it depends on is CRITICAL: %+v", r)
	}
	// UNKNOWN (the exporter cannot be asked: a wrong URL here, bad
	// credentials or TLS alike) holds the service checks too, which would
	// each fail the same way: the health check notifies, once
	// (docs/check.md's notification example includes Unknown).
	expectIcinga(t, api, want{host: "k8s-wrong-url", service: "kube-spread-health", state: 3, prefix: true,
		output: "UNKNOWN - get " + wrongURL + ": HTTP 404 Not Found"})
	if r := api.force(t, "k8s-wrong-url", "kube-spread-k8s-mathoid"); r.Reachable {
		t.Errorf("k8s-wrong-url!kube-spread-k8s-mathoid is reachable while the health check it depends on is UNKNOWN: %+v", r)
	}
	if r := api.result(t, "k8s-unsynced", "kube-spread-health"); !strings.Contains(r.Output, "KubeSpreadCacheNotSynced") {
		t.Errorf("k8s-unsynced health does not name KubeSpreadCacheNotSynced:\n%s", r.Output)
	}
	// Through NRPE the shipped defaults apply: 10 minutes, as the alert.
	nrpe.expectWith(t, "kube_spread_health_unsynced", 0, "OK - kube-spread-exporter: 0 of 9 caches synced (not synced: ", "'not_synced_for'=")
	nrpe.expect(t, "kube_spread_health_gone", 2, "CRITICAL - exporter down: get ")
	// Through check_nrpe at its default timeout, the check's own answer,
	// naming the stage, not "CHECK_NRPE STATE CRITICAL: Socket timeout".
	nrpe.expect(t, "kube_spread_health_hung", 2, "CRITICAL - exporter down: timeout after 8s during read of ")

	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "setup: one replica per node", 0,
		"OK - mathoid/Deployment/mathoid: 4 ready replicas on 4 nodes, 4 survive maintenance on 4 nodes, needs 2 nodes | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=4;;;0 'nodes'=4;;;0 'schedulable_nodes'=4;;;0 'min_nodes'=2;;;0",
		deployment...)
	healthy := want{host: "k8s", service: "kube-spread-health", state: 0, prefix: true,
		output: "OK - kube-spread-exporter: 9 of 9 caches synced, confirmed fresh ", perfdata: map[string]float64{"caches_synced": 9, "not_synced_for": 0, "list_watch_errors_for": 0}}
	expectIcinga(t, api,
		want{host: "k8s", service: "kube-spread-all", state: 0, output: "OK - 0 critical, 0 warning of 2 services",
			perfdata: map[string]float64{"services": 2, "critical": 0, "warning": 0, "not_ok": 0, "replicas_ready": 8, "replicas_schedulable": 8}},
		want{host: "k8s", service: "kube-spread-k8s-mathoid", state: 0, output: "OK - mathoid/Deployment/mathoid: 4 ready replicas on 4 nodes, 4 survive maintenance on 4 nodes, needs 2 nodes",
			perfdata: map[string]float64{"replicas_desired": 4, "replicas_ready": 4, "replicas_schedulable": 4, "nodes": 4, "schedulable_nodes": 4, "min_nodes": 2}},
		healthy,
	)
	nrpe.expect(t, "kube_spread_mathoid", 0, "OK - mathoid/Deployment/mathoid: 4 ready replicas on 4 nodes")
	nrpe.expect(t, "kube_spread_health", 0, "OK - kube-spread-exporter: 9 of 9 caches synced")

	// A warning: day one leaves mathoid on two nodes, which is below a
	// min-nodes annotation of 3 while four nodes could hold it.
	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}
	annotate(t, "3")
	const belowMinNodes = "WARNING - mathoid/Deployment/mathoid: spread over 2 nodes, needs 3"
	eventually(t, "day one, min-nodes 3: a warning", 1,
		belowMinNodes+" | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=4;;;0 'nodes'=2;;;0 'schedulable_nodes'=2;;;0 'min_nodes'=3;;;0", deployment...)
	expectIcinga(t, api,
		want{host: "k8s", service: "kube-spread-k8s-mathoid", state: 1,
			output:   belowMinNodes + "\nWARNING mathoid/Deployment/mathoid: spread over 2 nodes, needs 3 (KubeSpreadBelowMinNodes); ready 4, schedulable 4, nodes 2, schedulable nodes 2, min_nodes 3",
			perfdata: map[string]float64{"nodes": 2, "min_nodes": 3}},
		want{host: "k8s", service: "kube-spread-all", state: 1, prefix: true, output: "WARNING - 0 critical, 1 warning of 2 services: mathoid/Deployment/mathoid spread over 2 nodes, needs 3"},
	)
	nrpe.expect(t, "kube_spread_mathoid", 1, belowMinNodes)
	annotate(t, "")
	eventually(t, "day one: OK with min_nodes 2 again", 0,
		"OK - mathoid/Deployment/mathoid: 4 ready replicas on 2 nodes, 4 survive maintenance on 2 nodes, needs 2 nodes | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=4;;;0 'nodes'=2;;;0 'schedulable_nodes'=2;;;0 'min_nodes'=2;;;0",
		deployment...)

	if err := scenario.DayTwo(ctx); err != nil {
		t.Fatal(err)
	}
	out := eventually(t, "day two: no replica survives", 2,
		"CRITICAL - 2 critical, 0 warning of 2 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance | 'services'=2;;;0 'critical'=2;;0;0;2 'warning'=0;;;0;2 'not_ok'=2;0;;0;2 'replicas_ready'=8;;;0 'replicas_schedulable'=0;;;0",
		services...)
	const wantDetails = `CRITICAL mathoid/Deployment/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 2
CRITICAL mathoid/Service/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 2
`
	if _, details, _ := strings.Cut(out, "\n"); details != wantDetails {
		t.Errorf("day two details:\n%s\nwant:\n%s", details, wantDetails)
	}
	expectIcinga(t, api,
		want{host: "k8s", service: "kube-spread-all", state: 2,
			output:   "CRITICAL - 2 critical, 0 warning of 2 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance\n" + strings.TrimSuffix(wantDetails, "\n"),
			perfdata: map[string]float64{"services": 2, "critical": 2, "warning": 0, "not_ok": 2, "replicas_ready": 8, "replicas_schedulable": 0}},
		want{host: "k8s", service: "kube-spread-k8s-mathoid", state: 2, prefix: true, output: "CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance\n",
			perfdata: map[string]float64{"replicas_ready": 4, "replicas_schedulable": 0}},
		// critical_services = 2 on the host tolerates the two, which still
		// warn; and the health check does not get --critical-services.
		want{host: "k8s-overrides", service: "kube-spread-all", state: 1, prefix: true, output: "WARNING - 2 critical, 0 warning of 2 services: ",
			perfdata: map[string]float64{"critical": 2}},
		want{host: "k8s-overrides", service: "kube-spread-health", state: 0, prefix: true, output: "OK - kube-spread-exporter: 9 of 9 caches synced, confirmed fresh "},
		want{host: "k8s-overrides", service: "kube-spread-k8s-mathoid", state: 2, prefix: true, output: "CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance"},
		healthy,
	)
	if r := api.result(t, "k8s-overrides", "kube-spread-all"); r.Perfdata["critical"].Crit != "2" {
		t.Errorf("k8s-overrides critical perfdata %q: the host's threshold 2 did not reach the check", r.Perfdata["critical"].RawItem)
	}
	nrpe.expect(t, "kube_spread_services", 2, "CRITICAL - 2 critical, 0 warning of 2 services")
	nrpe.expect(t, "kube_spread_mathoid", 2, "CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=0;;;0 'nodes'=2;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=2;;;0")

	// The API server goes away: the exporter serves the last known
	// figures and stops confirming them. Past the host's 30s the health
	// check warns as KubeSpreadCacheStale would; the default 300s does
	// not yet, as the alert's for: 3m does not.
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.StartAPIServer(context.Background()); err != nil {
			t.Errorf("restart the API server: %v", err)
		}
	})
	stale := eventuallyIcinga(t, api, want{host: "k8s-overrides", service: "kube-spread-health", state: 1, prefix: true, output: "WARNING - kube-spread-exporter: 9 of 9 caches synced, confirmed fresh "})
	if !strings.Contains(stale.Output, "KubeSpreadCacheStale") || !strings.Contains(stale.Output, "API server unreachable") {
		t.Errorf("stale health output lacks KubeSpreadCacheStale or the API server:\n%s", stale.Output)
	}
	if stale.Perfdata["confirmed_age"].Value < 30 || stale.Perfdata["confirmed_age"].Warn != "30" {
		t.Errorf("stale health perfdata %v", stale.rawPerfdata)
	}
	expectIcinga(t, api,
		want{host: "k8s", service: "kube-spread-health", state: 0, prefix: true, output: "OK - kube-spread-exporter: 9 of 9 caches synced, confirmed fresh "},
		want{host: "k8s", service: "kube-spread-k8s-mathoid", state: 2, prefix: true, output: "CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance"},
	)
	nrpe.expectWith(t, "kube_spread_health", 0, "OK - kube-spread-exporter: 9 of 9 caches synced, confirmed fresh ", "API server unreachable")
}

// annotate sets mathoid's kube-spread.io/min-nodes annotation; "" removes it.
func annotate(t *testing.T, minNodes string) {
	t.Helper()
	value := "null"
	if minNodes != "" {
		value = fmt.Sprintf("%q", minNodes)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"kube-spread.io/min-nodes":%s}}}`, value)
	if _, err := client(t).AppsV1().Deployments(replay.Namespace).Patch(context.Background(), replay.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate mathoid: %v", err)
	}
}

// startUnsyncedExporter runs an exporter whose API server does not
// answer: its caches never sync.
func startUnsyncedExporter(t *testing.T) *exporterproc.Exporter {
	t.Helper()
	config, err := clientcmd.LoadFromFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range config.Clusters {
		c.Server = fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}
	return exporterproc.StartForTest(t, path)
}

// expectIcinga forces each check and compares what Icinga stored, until
// it matches or a minute is over: a change travels API server, exporter,
// check.
func expectIcinga(t *testing.T, api *icingaAPI, wants ...want) {
	t.Helper()
	for _, w := range wants {
		eventuallyIcinga(t, api, w)
	}
}

func eventuallyIcinga(t *testing.T, api *icingaAPI, w want) checkResult {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := api.force(t, w.host, w.service)
		problem := w.mismatch(r)
		if problem == "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("Icinga %s!%s: %s\nstate %d, output:\n%s\nperfdata %q\nwant state %d, output:\n%s", w.host, w.service, problem, r.State, r.Output, r.rawPerfdata, w.state, w.output)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (w want) mismatch(r checkResult) string {
	if r.State != w.state {
		return "state"
	}
	// Icinga keeps the space before the perfdata's '|'.
	output := strings.ReplaceAll(strings.TrimRight(r.Output, " "), " \n", "\n")
	if w.prefix && !strings.HasPrefix(output, w.output) || !w.prefix && output != w.output {
		return "output"
	}
	for label, value := range w.perfdata {
		p, ok := r.Perfdata[label]
		if !ok || p.Value != value {
			return "perfdata " + label
		}
	}
	return ""
}
