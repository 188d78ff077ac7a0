// Package repo finds the root of the kube-spread-exporter repository, for
// the tests, the demo and the generators, which run from a package's
// directory or from anywhere inside the checkout.
package repo

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Module is the module path of the repository's root go.mod.
const Module = "github.com/kube-spread-exporter/kube-spread-exporter"

// Root walks up from the working directory to the directory holding the
// go.mod of Module. The tools modules under tools/ have go.mod files of
// their own, so finding any go.mod is not enough.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if modulePath(filepath.Join(dir, "go.mod")) == Module {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find the repository root: no go.mod of %s above %s", Module, wd)
		}
	}
}

// modulePath returns the module path declared in a go.mod file, or "".
func modulePath(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// RootForTest is Root for tests: it fails the test when there is no root.
func RootForTest(t testing.TB) string {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// ToolsBinEnv names the environment variable that overrides where the
// binaries `make tools` builds are found (.cache/bin of the repository by
// default).
const ToolsBinEnv = "KSE_TOOLS_BIN"

// Tool returns the path of a binary `make tools` builds (helm, promtool,
// alertmanager...): in $KSE_TOOLS_BIN if set, else in .cache/bin of the
// repository holding the working directory. A missing binary is an error
// naming `make tools`.
func Tool(name string) (string, error) {
	dir := os.Getenv(ToolsBinEnv)
	if dir == "" {
		root, err := Root()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".cache", "bin")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found (%w): run `make tools`", name, err)
	}
	return path, nil
}

// ToolForTest is Tool, failing the test when the binary is missing: a
// test that needs a tool must not pass without it.
func ToolForTest(t testing.TB, name string) string {
	t.Helper()
	path, err := Tool(name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}
