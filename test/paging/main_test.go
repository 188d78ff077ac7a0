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
	"os"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/amserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

// Receivers of the example, which are also the paths of the webhook.
const (
	pagerPath   = "/kube-spread-pager"
	ticketsPath = "/kube-spread-tickets"
)

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
