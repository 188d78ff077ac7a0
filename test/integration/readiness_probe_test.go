package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/childproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// readinessProbe is the check the chart runs as the readiness probe when
// the web configuration asks for credentials (templates/deployment.yaml;
// test/chart pins the rendered command): /readyz's judgement through the
// check plugin.
var readinessProbe = []string{"health", "--critical-not-synced=0", "--warning-not-synced=", "--warning-stale=", "--warning-list-watch-errors-for="}

// TestReadinessProbeWaitsForTheCaches: the probe fails while the caches
// have not synced, from the first second, and passes once they have. The
// check's default thresholds pass an unsynced exporter for the first 10
// minutes (the alert's), which is why the probe sets its own.
func TestReadinessProbeWaitsForTheCaches(t *testing.T) {
	check := exporterproc.BuildForTest(t, "check_kube_spread")
	probe := func(e *exporterproc.Exporter, args ...string) (int, string) {
		t.Helper()
		out, err := exec.Command(check, append([]string{"--url=" + e.URL + "/metrics"}, args...)...).CombinedOutput()
		return exitCode(t, err), string(out)
	}

	// An API server nobody listens at: the caches never sync.
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	config := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:%d\", insecure-skip-tls-verify: true}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: x}}]\n", port)
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	unsynced := exporterproc.StartForTest(t, kubeconfig)
	if code, out := probe(unsynced, readinessProbe...); code != 2 || !strings.Contains(out, "NOT synced") {
		t.Errorf("readiness probe of an exporter whose caches have not synced: exit %d, want 2 (CRITICAL) naming them:\n%s", code, out)
	}
	if code, out := probe(unsynced, "health"); code != 0 {
		t.Errorf("the check's default health of a fresh unsynced exporter: exit %d, want 0 (its alert waits 10m):\n%s", code, out)
	}

	synced := startExporter(t)
	if code, out := probe(synced, readinessProbe...); code != 0 {
		t.Errorf("readiness probe of a synced exporter: exit %d, want 0:\n%s", code, out)
	}
}
