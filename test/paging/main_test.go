// Package paging tests the last step from an alert to a person: the
// exporter replicas, built and run as users run them, watch a real control
// plane (internal/harness/controlplane); a real Prometheus scrapes them and
// evaluates rules/kube-spread.rules.yml; it sends to a real Alertmanager
// (internal/harness/amserver) loaded with deploy/alertmanager.example.yml,
// which notifies a webhook served by the test. The tests count the
// notifications: one page per service and cluster, however many exporter
// replicas publish it, and the resolve.
package paging

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/amserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

// exampleConfig is the shipped Alertmanager configuration example.
const exampleConfig = "deploy/alertmanager.example.yml"

// Receivers of the example, which are also the paths of the webhook.
const (
	pagerPath   = "/kube-spread-pager"
	ticketsPath = "/kube-spread-tickets"
)

// startAlertmanager serves a webhook on loopback and runs Alertmanager on
// the example configuration, rewired to that webhook with the timers
// given. Both stop when the test ends; Alertmanager's log is printed if
// the test failed.
func startAlertmanager(t *testing.T, timers amserver.Timers) (*amserver.Server, *amserver.Webhook) {
	t.Helper()
	webhook := amserver.NewWebhook()
	receiver := httptest.NewServer(webhook)
	t.Cleanup(receiver.Close)

	example, err := os.ReadFile(filepath.Join(repo.RootForTest(t), exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	config, err := amserver.Rewire(example, receiver.URL, timers)
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
			t.Logf("alertmanager config:\n%s\nalertmanager log:\n%s", config, alertmanager.Log())
		}
	})
	return alertmanager, webhook
}

// collect gathers the notifications that arrive within d.
func collect(t *testing.T, webhook *amserver.Webhook, d time.Duration) []amserver.Notification {
	t.Helper()
	var got []amserver.Notification
	deadline := time.After(d)
	for {
		select {
		case n := <-webhook.Received():
			got = append(got, n)
		case err := <-webhook.Errors:
			t.Fatal(err)
		case <-deadline:
			return got
		}
	}
}
