// Package alerts tests the alert rules end to end: the exporter, built and
// run as users run it, watches a real control plane (internal/harness/controlplane);
// a real Prometheus (internal/harness/promserver) scrapes it and evaluates
// rules/kube-spread.rules.yml; the tests read the alerts from Prometheus's
// API while the mathoid incident is replayed, and the page from a webhook
// that a real Alertmanager (internal/harness/amserver) delivers it to.
package alerts

import (
	"os"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

// startExporter builds the exporter, runs it against the control plane and
// waits for its caches to sync. It is stopped when the test ends; its log
// is printed if the test failed.
func startExporter(t *testing.T) *exporterproc.Exporter {
	t.Helper()
	return exporterproc.ForTest(t, cp.Kubeconfig)
}
