// Package integration tests the exporter, built and run as users run it,
// against a real control plane: etcd, kube-apiserver, controller-manager,
// scheduler and kwok's simulated kubelets (internal/controlplane).
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/exporterproc"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	code := controlplane.RunTests(m, &cp)
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binaryDir string
	binary    string
	errBuild  error
)

// exporterBinary builds the exporter once per test run.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binaryDir, errBuild = os.MkdirTemp("", "kube-spread-exporter-bin-")
		if errBuild != nil {
			return
		}
		binary, errBuild = exporterproc.Build(context.Background(), filepath.Join("..", ".."), binaryDir)
	})
	if errBuild != nil {
		t.Fatal(errBuild)
	}
	return binary
}

// startExporter runs the exporter against the control plane and waits for
// its caches to sync. It is stopped when the test ends; its log is printed
// if the test failed.
func startExporter(t *testing.T, flags ...string) *exporterproc.Exporter {
	t.Helper()
	ctx := context.Background()
	e, err := exporterproc.Start(ctx, exporterBinary(t), cp.Kubeconfig, flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", e.Log())
		}
	})
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func client(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually scrapes the exporter until check passes or a minute is over.
// Changes travel API server -> watch -> cache -> scrape, so they are
// polled for, never waited for with a fixed sleep.
func eventually(t *testing.T, e *exporterproc.Exporter, what string, check func(metrics map[string]*dto.MetricFamily) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last error
	for {
		metrics, err := e.Scrape(ctx)
		if err == nil {
			if last = check(metrics); last == nil {
				return
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not seen in /metrics within a minute: %v", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// expect fails unless the sample of name with the labels has the value.
func expect(metrics map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) error {
	got, ok := exporterproc.Value(metrics, name, labels)
	if !ok {
		return fmt.Errorf("%s%v: no sample, want %v", name, labels, want)
	}
	if got != want {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
	return nil
}

// absent fails when a sample with the labels exists.
func absent(metrics map[string]*dto.MetricFamily, name string, labels map[string]string) error {
	if got, ok := exporterproc.Value(metrics, name, labels); ok {
		return fmt.Errorf("%s%v = %v, want no sample", name, labels, got)
	}
	return nil
}
