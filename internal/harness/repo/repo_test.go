package repo

import (
	"os"
	"path/filepath"
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
