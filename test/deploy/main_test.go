// Package deploy tests what users deploy: the Dockerfile (statically: no
// container engine on the machines of this project), the kustomize base in
// deploy/ and its Prometheus Operator component (validated by a real API
// server), the ClusterRole (the exporter runs with a token of the shipped
// ServiceAccount), the TLS and basic auth example (end to end), and the
// Helm chart as the API server sees it (dry runs, the exporter under its
// RBAC, the same objects as deploy/; test/chart tests it without a cluster).
package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
)

// repoRoot is the repository, seen from this package's directory (go test
// runs a package's tests in its directory).
var repoRoot = filepath.Join("..", "..")

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }

// kubectl returns the path of the kubectl that `make tools` builds next to
// the control plane. A missing kubectl fails the test: skipping would
// leave the manifests unchecked while the run looks green.
func kubectl(t *testing.T) string {
	t.Helper()
	path := filepath.Join(cp.BinDir, "kubectl")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("kubectl not found at %s (run `make tools`): %v", path, err)
	}
	return path
}

// runKubectl runs kubectl as the control plane's admin and returns its
// standard output and standard error apart: warnings go to standard error.
func runKubectl(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(kubectl(t), append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), nil
}

// readRepoFile reads a file of the repository.
func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// serverDryRun applies the kustomization in dir with a server-side dry
// run: it must succeed, report each of objects ("kind.group/name" as
// kubectl prints it) and draw no warning.
func serverDryRun(t *testing.T, dir string, objects ...string) {
	t.Helper()
	out, stderr, err := runKubectl(t, "", "apply", "-k", dir, "--dry-run=server")
	if err != nil {
		t.Fatal(err)
	}
	for _, object := range objects {
		if !strings.Contains(out, object+" ") {
			t.Errorf("dry run did not report %s:\n%s", object, out)
		}
	}
	if strings.TrimSpace(stderr) != "" {
		t.Errorf("dry run warned:\n%s", stderr)
	}
}
