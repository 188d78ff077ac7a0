package admission

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// TestDocsNameWhatTheCodeDoes ties the names users type or read to the
// docs: every result of kube_spread_admission_requests_total has a row in
// docs/metrics.md, and docs/admission.md names the path, the modes, the
// override annotation and the body limit.
func TestDocsNameWhatTheCodeDoes(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	metrics := read("metrics.md")
	for _, r := range results {
		if !strings.Contains(metrics, "\n| `"+string(r)+"` |") {
			t.Errorf("docs/metrics.md has no row for result %q", r)
		}
	}
	docs := read("admission.md")
	for _, want := range []string{"`POST " + PathNodes + "`", OverrideAnnotation, "`--admission.mode=warn`", "`--admission.mode=deny`", "body over 8 MiB"} {
		if !strings.Contains(docs, want) {
			t.Errorf("docs/admission.md does not mention %s", want)
		}
	}
	if MaxBodyBytes != 8<<20 {
		t.Errorf("MaxBodyBytes is %d: update docs/admission.md and this test", MaxBodyBytes)
	}
	for _, m := range Modes {
		if !strings.Contains(docs, "--admission.mode="+m) {
			t.Errorf("docs/admission.md does not name mode %s", m)
		}
	}
}
