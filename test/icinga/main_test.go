// Package icinga tests check_kube_spread as the monitoring systems run it:
// the built binary against a real exporter on a real control plane (the
// mathoid replay), through a real NRPE daemon and check_nrpe, and the
// shipped Icinga 2 configuration through icinga2's own validator.
//
// The external tools come from Debian packages (`make system-deps`:
// nagios-nrpe-server nagios-nrpe-plugin icinga2) and the control plane from
// `make tools`. A missing tool fails the test; it never skips it.
package icinga

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	code := controlplane.RunTests(m, &cp)
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// repoRoot is where the sources and the shipped icinga/ files are.
var repoRoot = filepath.Join("..", "..")

var (
	buildOnce   sync.Once
	binaryDir   string
	checkBinary string
	errBuild    error
)

// checkPlugin builds the check once per test run, into a directory NRPE's
// unprivileged user can read (a test's own temporary directory is not).
func checkPlugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binaryDir, errBuild = os.MkdirTemp("", "check-kube-spread-bin-"); errBuild != nil {
			return
		}
		// NRPE drops to the nagios user before it runs the check.
		if errBuild = os.Chmod(binaryDir, 0o755); errBuild != nil {
			return
		}
		checkBinary, errBuild = exporterproc.BuildCommand(context.Background(), repoRoot, binaryDir, "check_kube_spread")
	})
	if errBuild != nil {
		t.Fatal(errBuild)
	}
	return checkBinary
}

// requireTool fails the test when a system tool is missing.
func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): run `make system-deps` (apt-get install nagios-nrpe-server nagios-nrpe-plugin icinga2)", path, err)
	}
}

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

// runCheck runs the built check and returns its exit code and output.
func runCheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runCommand(t, checkPlugin(t), args...)
}

func runCommand(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("run %s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	return 0, ""
}

// eventually runs the check until its exit code and first line are the
// expected ones, or a minute is over: a cordon travels API server ->
// watch -> cache -> scrape, so it is polled for, never slept for.
func eventually(t *testing.T, what string, wantCode int, wantFirst string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, out := runCheck(t, args...)
		first, _, _ := strings.Cut(out, "\n")
		if code == wantCode && first == wantFirst {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within a minute.\nlast: exit %d\n%s\nwant: exit %d\n%s", what, code, out, wantCode, wantFirst)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
