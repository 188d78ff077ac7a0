package amserver

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// ExampleConfig is the shipped Alertmanager configuration example,
// relative to the repository root.
const ExampleConfig = "deploy/alertmanager.example.yml"

// StartExampleForTest runs Alertmanager on the shipped example
// configuration, every receiver rewired (Rewire) to a webhook the test
// serves on loopback and the routes' timers set from timers (zero keeps the
// example's). Both stop when the test ends; if it failed, the
// configuration and Alertmanager's log are printed.
func StartExampleForTest(t testing.TB, timers Timers) (*Server, *Webhook) {
	t.Helper()
	webhook := NewWebhook()
	receiver := httptest.NewServer(webhook)
	t.Cleanup(receiver.Close)
	example, err := os.ReadFile(filepath.Join(repo.RootForTest(t), ExampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	config, err := Rewire(example, receiver.URL, timers)
	if err != nil {
		t.Fatal(err)
	}
	alertmanager, err := Start(context.Background(), t.TempDir(), config)
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
