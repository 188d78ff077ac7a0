package paging

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/amserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/promserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

const (
	job = "kube-spread-exporter"
	// interval is the scrape and evaluation interval of this test, short so
	// that it takes about two minutes. Production runs at 30s, for which
	// test/alerts measures the alert (1m33s to 1m50s after the cordon,
	// 2m at worst); the page adds the critical route's group_wait, 10s in
	// the example: docs/deploy.md#alertmanager.
	interval = 5 * time.Second
	// The rules' `for: 1m`, plus a scrape and an evaluation, plus
	// group_wait: about 75s. The limit is generous for a loaded machine.
	pageWithin = 3 * time.Minute
	// settle is how long the test keeps listening after the notifications
	// it expects: several group intervals, in which a duplicate or a
	// spurious resolve would arrive.
	settle = 20 * time.Second
)

// The route timers of the test: group_wait 2s instead of the example's
// 10s, group_interval 5s instead of 5m (a resolve goes out at the next
// group interval), repeat_interval longer than the test, so that every
// notification the test sees is a new one, never a reminder.
var timers = amserver.Timers{GroupWait: 2 * time.Second, GroupInterval: 5 * time.Second, RepeatInterval: time.Hour}

// TestMathoidPagesOncePerCluster replays the mathoid incident under two
// clusters' monitoring: codfw with two exporter replicas (deploy/ runs
// two), eqiad with one, all watching the replay's control plane, scraped by
// one Prometheus that labels each target group with its cluster, as a
// Prometheus (or Thanos) over several clusters does. Prometheus evaluates
// the shipped rules and sends to an Alertmanager on the shipped example
// configuration, which notifies the test's webhook.
//
// After day one nothing is sent. After day two's cordon exactly one page
// must arrive per cluster for mathoid (its Deployment and Service
// together), though codfw's two replicas both publish it; then one of
// codfw's replicas is stopped, and no second page may follow. After the
// uncordon, exactly one resolve per cluster.
func TestMathoidPagesOncePerCluster(t *testing.T) {
	ctx := context.Background()
	root := repo.RootForTest(t)
	alertmanager, webhook := amserver.StartExampleForTest(t, timers)

	codfwA := exporterproc.ForTest(t, cp.Kubeconfig)
	codfwB := exporterproc.ForTest(t, cp.Kubeconfig)
	eqiad := exporterproc.ForTest(t, cp.Kubeconfig)
	address := func(e *exporterproc.Exporter) string { return strings.TrimPrefix(e.URL, "http://") }

	prometheus, err := promserver.Start(ctx, t.TempDir(), fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
rule_files:
  - %[2]q
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%[3]q]
scrape_configs:
  - job_name: %[4]s
    static_configs:
      - targets: [%[5]q, %[6]q]
        labels:
          cluster: codfw
      - targets: [%[7]q]
        labels:
          cluster: eqiad
`, model(interval), filepath.Join(root, "rules", "kube-spread.rules.yml"), alertmanager.Address(), job,
		address(codfwA), address(codfwB), address(eqiad)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := prometheus.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", prometheus.Log())
		}
	})

	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	scenario := &replay.Scenario{Client: client, Logf: t.Logf}
	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}

	// Day one in Prometheus: every replica publishes mathoid's two kinds,
	// each under its cluster.
	poll(t, time.Minute, "day one's figures from every replica in Prometheus", func() error {
		vector, err := prometheus.Query(ctx, `count by (cluster) (kube_spread_replicas_schedulable{namespace="mathoid",name="mathoid"} == 4)`)
		if err != nil {
			return err
		}
		perCluster := map[string]float64{}
		for _, sample := range vector {
			perCluster[string(sample.Metric["cluster"])] = float64(sample.Value)
		}
		if want := map[string]float64{"codfw": 4, "eqiad": 2}; !maps.Equal(perCluster, want) {
			return fmt.Errorf("series per cluster %v, want %v", perCluster, want)
		}
		return nil
	})
	// Two evaluations and a group_wait later, nothing may have been sent.
	if got := collect(t, webhook, 2*interval+timers.GroupWait+3*time.Second); len(got) > 0 {
		t.Fatalf("day one: %d notifications, want none: %s", len(got), describe(got))
	}

	cordon := time.Now()
	if err := scenario.DayTwo(ctx); err != nil {
		t.Fatal(err)
	}
	pages := waitFor(t, webhook, pageWithin, "a page for mathoid in codfw and in eqiad", func(got []amserver.Notification) bool {
		return len(mathoidNotifications(got, "firing")) >= 2
	})
	for _, n := range mathoidNotifications(pages, "firing") {
		t.Logf("page for mathoid in %s at the webhook %s after the cordon (scrape and evaluation every %s, group_wait %s)",
			n.GroupLabels["cluster"], n.Received.Sub(cordon).Round(time.Second), interval, timers.GroupWait)
	}
	// Mid-way between the page and the end of the maintenance, one of
	// codfw's replicas goes away, as when the node under it is drained:
	// its series go stale, and the other replica carries the alert. Had the
	// replicas' alerts not been merged, the stopped one's would resolve
	// and Alertmanager would notify again.
	if err := codfwB.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped codfw's replica %s %s after the cordon", address(codfwB), time.Since(cordon).Round(time.Second))
	pages = append(pages, collect(t, webhook, settle)...)
	checkOnePerCluster(t, "after the cordon", pages, "firing")

	uncordon := time.Now()
	if err := scenario.Cordon(ctx, false, "kubernetes2001", "kubernetes2002"); err != nil {
		t.Fatal(err)
	}
	resolves := waitFor(t, webhook, time.Minute, "the resolve for mathoid in codfw and in eqiad", func(got []amserver.Notification) bool {
		return len(mathoidNotifications(got, "resolved")) >= 2
	})
	for _, n := range mathoidNotifications(resolves, "resolved") {
		t.Logf("resolve for mathoid in %s at the webhook %s after the uncordon", n.GroupLabels["cluster"], n.Received.Sub(uncordon).Round(time.Second))
	}
	resolves = append(resolves, collect(t, webhook, settle)...)
	checkOnePerCluster(t, "after the uncordon", resolves, "resolved")
}

// checkOnePerCluster expects the notifications to be exactly one per
// cluster, to the pager, in the given status, for mathoid's Deployment and
// Service together, with no trace of which exporter replica published it.
func checkOnePerCluster(t *testing.T, when string, got []amserver.Notification, status string) {
	t.Helper()
	clusters := map[string]int{}
	for _, n := range got {
		clusters[n.GroupLabels["cluster"]]++
		if n.Path != pagerPath || n.Status != status || n.GroupLabels["alertname"] != spread.AlertNoReplicaSurvivesMaintenance ||
			n.GroupLabels["namespace"] != replay.Namespace || n.GroupLabels["name"] != replay.Name {
			t.Errorf("%s: unexpected notification %s", when, describe([]amserver.Notification{n}))
			continue
		}
		var kinds []string
		for _, a := range n.Alerts {
			kinds = append(kinds, a.Labels["kind"])
			if a.Status != status {
				t.Errorf("%s: %s alert in a %s notification: %v", when, a.Status, status, a.Labels)
			}
			if _, ok := a.Labels["instance"]; ok {
				t.Errorf("%s: alert %v names an exporter instance: the replicas were not merged", when, a.Labels)
			}
		}
		slices.Sort(kinds)
		if !slices.Equal(kinds, []string{"Deployment", "Service"}) {
			t.Errorf("%s: notification for %s has kinds %v, want [Deployment Service]", when, n.GroupLabels["cluster"], kinds)
		}
	}
	if want := map[string]int{"codfw": 1, "eqiad": 1}; !maps.Equal(clusters, want) {
		t.Errorf("%s: %s notifications per cluster %v, want %v: %s", when, status, clusters, want, describe(got))
	}
}

// mathoidNotifications returns the notifications about mathoid in the
// given status.
func mathoidNotifications(got []amserver.Notification, status string) []amserver.Notification {
	var out []amserver.Notification
	for _, n := range got {
		if n.Status == status && n.GroupLabels["namespace"] == replay.Namespace && n.GroupLabels["name"] == replay.Name {
			out = append(out, n)
		}
	}
	return out
}

// waitFor collects notifications until done says they are enough, failing
// the test after timeout.
func waitFor(t *testing.T, webhook *amserver.Webhook, timeout time.Duration, what string, done func([]amserver.Notification) bool) []amserver.Notification {
	t.Helper()
	var got []amserver.Notification
	deadline := time.After(timeout)
	for !done(got) {
		select {
		case n := <-webhook.Received():
			got = append(got, n)
		case err := <-webhook.Errors:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("%s: not received within %s; received: %s", what, timeout, describe(got))
		}
	}
	return got
}

// describe lists notifications for an error message.
func describe(got []amserver.Notification) string {
	var lines []string
	for _, n := range got {
		lines = append(lines, fmt.Sprintf("\n  %s %s %s %v", n.Path, n.Status, summarize(n), n.GroupLabels))
	}
	if len(lines) == 0 {
		return "none"
	}
	return strings.Join(lines, "")
}

// model formats a duration as Prometheus configuration expects it.
func model(d time.Duration) string { return fmt.Sprintf("%ds", int(d.Seconds())) }

// poll calls check every second until it succeeds, failing the test with
// its last error after timeout.
func poll(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %s: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}
