package fidelity

import (
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
)

// One control plane for the package: starting one takes longer than a case.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

func client(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
