package dashboards

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMixinCopiesAreGenerated fails when the mixin's copies of the
// dashboards differ from what the code renders for them.
func TestMixinCopiesAreGenerated(t *testing.T) {
	files, err := Render(MixinOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		path := filepath.Join("..", MixinDir, f.Name)
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v: run `go run ./dashboards/generate` and commit the result", err)
			continue
		}
		if !bytes.Equal(committed, f.JSON) {
			t.Errorf("%s differs from what the code renders: run `go run ./dashboards/generate` and commit the result", path)
		}
	}
}

// TestMixinPlaceholderIsTheClusterLabel: putting a label in place of the
// placeholder, as the mixin does, gives byte for byte the dashboards
// rendered for that label. So the mixin's dashboards are these for any
// cluster label, and the placeholder stands for nothing else.
func TestMixinPlaceholderIsTheClusterLabel(t *testing.T) {
	templates, err := Render(MixinOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{DefaultOptions().ClusterLabel, "k8s_cluster"} {
		want, err := Render(Options{ClusterLabel: label})
		if err != nil {
			t.Fatal(err)
		}
		for i, template := range templates {
			if !bytes.Contains(template.JSON, []byte(MixinClusterLabel)) {
				t.Errorf("%s: the placeholder %s does not occur", template.Name, MixinClusterLabel)
			}
			got := strings.ReplaceAll(string(template.JSON), MixinClusterLabel, label)
			if got != string(want[i].JSON) {
				t.Errorf("%s with %s for the placeholder differs from the dashboard rendered for the label %s", template.Name, label, label)
			}
		}
	}
}
