// Package integration tests the exporter, built and run as users run it,
// against a real control plane: etcd, kube-apiserver, controller-manager,
// scheduler and kwok's simulated kubelets (internal/harness/controlplane).
package integration

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

// startExporter runs the exporter against the control plane and waits for
// its caches to sync; it stops when the test ends.
func startExporter(t *testing.T, flags ...string) *exporterproc.Exporter {
	t.Helper()
	return exporterproc.ForTest(t, cp.Kubeconfig, flags...)
}

func client(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exitCode is the exit code of a command that ran: 0 without an error, its
// own when it exited with another; an error of any other kind (it did not
// run) ends the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatal(err)
	return 0
}

// The integration tests poll /metrics and compare samples with these.
var (
	eventually = exporterproc.Eventually
	expect     = exporterproc.Expect
	absent     = exporterproc.Absent
)
