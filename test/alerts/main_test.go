// Package alerts tests the alert rules end to end: the exporter, built and
// run as users run it, watches a real control plane (internal/controlplane);
// a real Prometheus (internal/promserver) scrapes it and evaluates
// rules/kube-spread.rules.yml; the tests read the alerts from Prometheus's
// API while the mathoid incident is replayed.
package alerts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/exporterproc"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

// repoRoot walks up from the working directory to the directory holding
// go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(errors.New("no go.mod above the working directory"))
		}
		dir = parent
	}
}

// startExporter builds the exporter, runs it against the control plane and
// waits for its caches to sync. It is stopped when the test ends; its log
// is printed if the test failed.
func startExporter(t *testing.T, root string) *exporterproc.Exporter {
	t.Helper()
	ctx := context.Background()
	binary, err := exporterproc.Build(ctx, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := exporterproc.Start(ctx, binary, cp.Kubeconfig)
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
