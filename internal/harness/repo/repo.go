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
