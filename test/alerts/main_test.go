// Package alerts tests the alert rules end to end: the exporter, built and
// run as users run it, watches a real control plane (internal/harness/controlplane);
// a real Prometheus (internal/harness/promserver) scrapes it and evaluates
// rules/kube-spread.rules.yml; the tests read the alerts from Prometheus's
// API while the mathoid incident is replayed, and the page from a webhook
// that a real Alertmanager (internal/harness/amserver) delivers it to.
package alerts

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/amserver"
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

// startAlertmanager runs Alertmanager on deploy/alertmanager.example.yml as
// shipped, timers included, with its receivers pointed at a webhook served
// on loopback. Both stop when the test ends.
func startAlertmanager(t *testing.T, root string) (*amserver.Server, *amserver.Webhook) {
	t.Helper()
	webhook := amserver.NewWebhook()
	receiver := httptest.NewServer(webhook)
	t.Cleanup(receiver.Close)
	example, err := os.ReadFile(filepath.Join(root, "deploy", "alertmanager.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := amserver.Rewire(example, receiver.URL, amserver.Timers{})
	if err != nil {
		t.Fatal(err)
	}
	alertmanager, err := amserver.Start(context.Background(), t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := alertmanager.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", alertmanager.Log())
		}
	})
	return alertmanager, webhook
}
