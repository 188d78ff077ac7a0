// Package outage injects faults into the real control plane while the
// exporter runs: kube-apiserver or etcd stopped under it, or absent when it
// starts. The exporter must keep serving, say clearly what it does not
// know, and recover by itself.
package outage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

func startExporter(t *testing.T) *exporterproc.Exporter {
	t.Helper()
	return exporterproc.StartForTest(t, cp.Kubeconfig)
}

// eventually polls check until it passes or the deadline is over. The
// informers back off between retries (up to about 30s), so recoveries get
// two minutes.
func eventually(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, error) {
	v, ok := exporterproc.Value(families, name, labels)
	if !ok {
		return 0, fmt.Errorf("no sample %s%v", name, labels)
	}
	return v, nil
}

func scrapeValue(e *exporterproc.Exporter, name string, labels map[string]string) (float64, error) {
	families, err := e.Scrape(context.Background())
	if err != nil {
		return 0, err
	}
	return value(families, name, labels)
}

func createNode(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// cordonReaches cordons the node and waits until /metrics says so.
func cordonReaches(t *testing.T, client kubernetes.Interface, e *exporterproc.Exporter, node string) {
	t.Helper()
	patch := []byte(`{"spec":{"unschedulable":true}}`)
	eventually(t, "cordon accepted by the API server", 2*time.Minute, func() error {
		_, err := client.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	eventually(t, "cordon of "+node+" in /metrics", 2*time.Minute, func() error {
		v, err := scrapeValue(e, "kube_spread_node_unschedulable_reason", map[string]string{"node": node, "reason": "cordoned"})
		if err != nil {
			return err
		}
		if v != 1 {
			return fmt.Errorf("reason cordoned = %v", v)
		}
		return nil
	})
}

// outage stops a component under a running exporter and checks that it
// keeps serving the last known figures while reporting the failure, then
// restarts it and checks that a change made afterwards reaches /metrics
// without restarting the exporter. Requests fail while kube-apiserver is
// down; while only etcd is, the API server keeps the informers' watches
// open from its watch cache and fails only its /readyz, so list/watch
// errors are not expected then: the probe is what notices.
func outage(t *testing.T, node string, stop func() error, start func(context.Context) error, requestsFail bool) {
	client := kubernetes.NewForConfigOrDie(cp.Config)
	createNode(t, client, node)
	e := startExporter(t)
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node "+node+" in /metrics and caches confirmed fresh", time.Minute, func() error {
		families, err := e.Scrape(context.Background())
		if err != nil {
			return err
		}
		if _, err := value(families, "kube_spread_node_schedulable", map[string]string{"node": node}); err != nil {
			return err
		}
		_, err = value(families, "kube_spread_cache_confirmed_timestamp_seconds", nil)
		return err
	})
	errorsBefore, err := scrapeValue(e, "kube_spread_list_watch_errors_total", map[string]string{"resource": "nodes"})
	if err != nil {
		t.Fatal(err)
	}
	confirmedBefore, err := scrapeValue(e, "kube_spread_cache_confirmed_timestamp_seconds", nil)
	if err != nil {
		t.Fatal(err)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := start(context.Background()); err != nil {
				t.Errorf("restart after a failed test: %v", err)
			}
		}
	})

	// Serving goes on: the last known figures, with the failure visible.
	eventually(t, "the outage visible in /metrics", 2*time.Minute, func() error {
		families, err := e.Scrape(context.Background())
		if err != nil {
			return fmt.Errorf("/metrics must keep answering during the outage: %w", err)
		}
		up, err := value(families, "kube_spread_api_server_up", nil)
		if err != nil {
			return err
		}
		errorsNow, err := value(families, "kube_spread_list_watch_errors_total", map[string]string{"resource": "nodes"})
		if err != nil {
			return err
		}
		if _, err := value(families, "kube_spread_node_schedulable", map[string]string{"node": node}); err != nil {
			return fmt.Errorf("last known figures gone during the outage: %w", err)
		}
		if up != 0 || (requestsFail && errorsNow <= errorsBefore) {
			return fmt.Errorf("api_server_up %v, list/watch errors %v (before %v)", up, errorsNow, errorsBefore)
		}
		return nil
	})
	// The confirmation stops: its age grows with the outage.
	confirmedDuring, err := scrapeValue(e, "kube_spread_cache_confirmed_timestamp_seconds", nil)
	if err != nil {
		t.Fatal(err)
	}
	if confirmedDuring-confirmedBefore > 15 {
		t.Errorf("caches confirmed fresh %.0fs into the outage", confirmedDuring-confirmedBefore)
	}
	if !strings.Contains(e.Log(), "API server unreachable") || (requestsFail && !strings.Contains(e.Log(), "list/watch failed")) {
		t.Errorf("the log does not say the API server is unreachable (and list/watch fails):\n%s", e.Log())
	}
	if status, _, err := e.Get(context.Background(), "/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, %v", status, err)
	}

	if err := start(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	cordonReaches(t, client, e, node)
	eventually(t, "caches confirmed fresh again", 2*time.Minute, func() error {
		families, err := e.Scrape(context.Background())
		if err != nil {
			return err
		}
		up, err := value(families, "kube_spread_api_server_up", nil)
		if err != nil {
			return err
		}
		confirmed, err := value(families, "kube_spread_cache_confirmed_timestamp_seconds", nil)
		if err != nil {
			return err
		}
		if up != 1 || confirmed <= confirmedDuring {
			return fmt.Errorf("api_server_up %v, confirmed %v (during the outage %v)", up, confirmed, confirmedDuring)
		}
		return nil
	})
}

func TestAPIServerOutage(t *testing.T) {
	outage(t, "outage-apiserver", cp.StopAPIServer, cp.StartAPIServer, true)
}

func TestEtcdOutage(t *testing.T) {
	outage(t, "outage-etcd", cp.StopEtcd, cp.StartEtcd, false)
}

// TestStartWithAPIServerDown starts the exporter while kube-apiserver is
// down: it must serve, answer /readyz with 503 naming what is missing, log
// why, and sync by itself once the API server appears.
func TestStartWithAPIServerDown(t *testing.T) {
	client := kubernetes.NewForConfigOrDie(cp.Config)
	createNode(t, client, "late")
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = cp.StartAPIServer(context.Background())
		}
	})
	e := startExporter(t)

	eventually(t, "the reason in the log", time.Minute, func() error {
		if !strings.Contains(e.Log(), "list/watch failed") {
			return errors.New("no list/watch failure logged yet")
		}
		return nil
	})
	status, body, err := e.Get(context.Background(), "/readyz")
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, "informer caches not synced: nodes") {
		t.Errorf("/readyz with the API server down: %d %q %v", status, body, err)
	}
	families, err := e.Scrape(context.Background())
	if err != nil {
		t.Fatalf("/metrics must answer before the first sync: %v", err)
	}
	if synced, err := value(families, "kube_spread_cache_synced", map[string]string{"resource": "nodes"}); err != nil || synced != 0 {
		t.Errorf("cache_synced{nodes} = %v, %v; want 0", synced, err)
	}
	if _, ok := families["kube_spread_node_schedulable"]; ok {
		t.Error("node figures published before the caches synced")
	}

	if err := cp.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, err := scrapeValue(e, "kube_spread_node_schedulable", map[string]string{"node": "late"}); err != nil {
		t.Errorf("after the API server appeared: %v (value %v)", err, v)
	}
}
