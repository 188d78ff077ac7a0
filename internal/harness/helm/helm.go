// Package helm runs the Helm binary that `make tools` builds (pinned in
// tools/helm) on the chart in charts/kube-spread-exporter, for the chart's
// tests.
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// ChartDir is the chart, relative to the repository root.
const ChartDir = "charts/kube-spread-exporter"

// Binary returns the path of the helm binary: in $KSE_TOOLS_BIN if set,
// else in .cache/bin of the repository. A missing binary is an error naming
// `make tools`.
func Binary() (string, error) { return repo.Tool("helm") }

// Chart returns the absolute path of the chart.
func Chart() (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ChartDir), nil
}

// Run runs helm with args and returns its standard output. Helm keeps its
// configuration and cache in a directory of its own under tmp, so that
// nothing of the user's Helm setup (repositories, plugins) plays a part.
// On failure the error holds helm's standard error, where the messages of
// values.schema.json are.
func Run(tmp string, args ...string) (string, error) {
	binary, err := Binary()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(binary, args...)
	home := filepath.Join(tmp, "helm-home")
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Template renders the chart as release in namespace; args are further
// arguments of helm template (--values, --set).
func Template(tmp, release, namespace string, args ...string) (string, error) {
	chart, err := Chart()
	if err != nil {
		return "", err
	}
	return Run(tmp, append([]string{"template", release, chart, "--namespace", namespace}, args...)...)
}
