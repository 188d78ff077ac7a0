package paging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/amserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// The shipped example must be a configuration Alertmanager accepts, as
// amtool checks it before a reload.
func TestAlertmanagerExampleIsValid(t *testing.T) {
	amtool, err := amserver.Binary("amtool")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(amtool, "check-config", filepath.Join(repo.RootForTest(t), amserver.ExampleConfig)).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config %s: %v\n%s", amserver.ExampleConfig, err, out)
	}
}

// TestAlertmanagerExampleRoutesAndInhibits posts alerts as Prometheus would
// send them straight to Alertmanager on the example configuration and
// checks where each lands: critical ones page, warnings go to tickets, a
// service's critical alert holds back the same service's warnings in the
// same cluster only, and KubeSpreadExporterBlind holds back nothing.
func TestAlertmanagerExampleRoutesAndInhibits(t *testing.T) {
	alertmanager, webhook := amserver.StartExampleForTest(t, amserver.Timers{GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: time.Hour})
	service := func(alertname, severity, cluster, kind string) map[string]string {
		return map[string]string{"alertname": alertname, "severity": severity, "cluster": cluster, "job": "kube-spread-exporter",
			"namespace": "mathoid", "kind": kind, "name": "mathoid"}
	}
	exporter := func(alertname, severity, cluster string, instance ...string) map[string]string {
		labels := map[string]string{"alertname": alertname, "severity": severity, "cluster": cluster, "job": "kube-spread-exporter", "namespace": "kube-spread"}
		if len(instance) > 0 {
			labels["instance"] = instance[0]
		}
		return labels
	}
	alerts := []map[string]string{
		service("KubeSpreadNoReplicaSurvivesMaintenance", "critical", "codfw", "Deployment"),
		service("KubeSpreadNoReplicaSurvivesMaintenance", "critical", "codfw", "Service"),
		// Held back by the critical alert of the same service and cluster.
		service("KubeSpreadSingleHomed", "warning", "codfw", "Deployment"),
		service("KubeSpreadMaintenanceNoRoom", "warning", "codfw", "Service"),
		// Another cluster's service of the same name: not held back.
		service("KubeSpreadSingleHomed", "warning", "eqiad", "Deployment"),
		// The exporter is blind in ulsfo: it pages, and its replicas'
		// warnings still go out.
		exporter("KubeSpreadExporterBlind", "critical", "ulsfo"),
		exporter("KubeSpreadExporterDown", "warning", "ulsfo", "10.0.0.1:10217"),
		exporter("KubeSpreadCacheStale", "warning", "ulsfo", "10.0.0.2:10217"),
	}
	postAlerts(t, alertmanager, alerts)

	// What each receiver gets: one line per notification, its group's
	// alert names, cluster and the kinds or instances of its alerts.
	want := map[string][]string{
		pagerPath: {
			"KubeSpreadExporterBlind ulsfo [-]",
			"KubeSpreadNoReplicaSurvivesMaintenance codfw [Deployment Service]",
		},
		ticketsPath: {
			"KubeSpreadCacheStale ulsfo [10.0.0.2:10217]",
			"KubeSpreadExporterDown ulsfo [10.0.0.1:10217]",
			"KubeSpreadSingleHomed eqiad [Deployment]",
		},
	}
	// group_wait 1s, group_interval 2s: everything is in by 5s, and a
	// notification that should not come would have come by then too.
	got := map[string][]string{}
	for _, n := range collect(t, webhook, 8*time.Second) {
		got[n.Path] = append(got[n.Path], summarize(n))
	}
	for path, lines := range want {
		slices.Sort(got[path])
		if !slices.Equal(got[path], lines) {
			t.Errorf("%s received:\n  %s\nwant:\n  %s", path, strings.Join(got[path], "\n  "), strings.Join(lines, "\n  "))
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("unexpected receiver %s got %v", path, got[path])
		}
	}
}

// summarize names a notification by its alert name, cluster, and the kinds
// (or instances, for the exporter's alerts; "-" for none) of its alerts.
func summarize(n amserver.Notification) string {
	var parts []string
	for _, a := range n.Alerts {
		part := a.Labels["kind"]
		if part == "" {
			part = a.Labels["instance"]
		}
		if part == "" {
			part = "-"
		}
		parts = append(parts, part)
	}
	slices.Sort(parts)
	return fmt.Sprintf("%s %s %v", n.GroupLabels["alertname"], n.GroupLabels["cluster"], parts)
}

// postAlerts sends firing alerts to Alertmanager's API as Prometheus does.
func postAlerts(t *testing.T, alertmanager *amserver.Server, alerts []map[string]string) {
	t.Helper()
	type postable struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
	}
	var body []postable
	for _, labels := range alerts {
		body = append(body, postable{Labels: labels, StartsAt: time.Now()})
	}
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, alertmanager.URL+"/api/v2/alerts", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: status %d", resp.StatusCode)
	}
}
