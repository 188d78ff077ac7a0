package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRootFromThisPackage(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	// internal/harness/repo is three levels below the root.
	if want := filepath.Dir(filepath.Dir(filepath.Dir(wd))); root != want {
		t.Errorf("Root() = %s, want %s", root, want)
	}
}

func TestRootSkipsOtherModules(t *testing.T) {
	// tools/kubernetes has a go.mod of its own; the root is above it.
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "tools", "kubernetes"))
	got, err := Root()
	if err != nil || got != root {
		t.Errorf("from tools/kubernetes: Root() = %s, %v; want %s", got, err, root)
	}
}

// TestToolMissingNamesMakeTools: a missing tool is an error that says how
// to get it, never a silent pass.
func TestToolMissingNamesMakeTools(t *testing.T) {
	t.Setenv(ToolsBinEnv, t.TempDir())
	_, err := Tool("promtool")
	if err == nil || !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), "promtool") {
		t.Errorf("Tool of a missing binary: %v, want an error naming promtool and `make tools`", err)
	}
}
