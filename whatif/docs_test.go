package whatif

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// TestDocsNameEveryField: every JSON field of the answers is a documented
// contract in docs/whatif.md.
func TestDocsNameEveryField(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "docs", "whatif.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Words inside code spans: `verdict`, `services[].now`, `{name, reasons}`.
	documented := map[string]bool{}
	for i, span := range strings.Split(string(docs), "`") {
		if i%2 == 1 {
			for _, word := range strings.FieldsFunc(span, func(r rune) bool { return !(r == '_' || 'a' <= r && r <= 'z') }) {
				documented[word] = true
			}
		}
	}
	for _, v := range []any{Answer{}, NodeState{}, Service{}, Figures{}, Plan{}, Batch{}, UnsafeService{},
		Campaign{}, CampaignBatch{}, CampaignService{}, NodeReplicas{}, FirstUnsafe{}, Remedy{}, Change{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !documented[name] {
				t.Errorf("%s.%s: field %q is not in docs/whatif.md", typ.Name(), typ.Field(i).Name, name)
			}
		}
	}
}

// TestDocsCampaignContract: the campaign's path, the kinds of change a
// remedy makes, the remedy search's bound and the batches' limit are the
// ones docs/whatif.md states.
func TestDocsCampaignContract(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "docs", "whatif.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Rewrapping must not break a phrase.
	docs := strings.Join(strings.Fields(string(raw)), " ")
	for _, want := range []string{
		"## `GET|POST " + PathCampaign + "`",
		"`" + string(ChangeRestart) + "`", "`" + string(ChangeSplit) + "`", "`" + string(ChangeReorder) + "`", "`" + string(ChangeReturn) + "`",
		fmt.Sprintf("at most %d batches are simulated in all", maxRemedyBatches),
		fmt.Sprintf("more than %s pods at most %s divided by its pods (%d at 150,000 pods), never fewer than %d",
			thousands(maxRemedyPodBatches/maxRemedyBatches), thousands(maxRemedyPodBatches), remedyBudget(150_000), minRemedyBatches),
		fmt.Sprintf("| batches a remedy search simulates | %d; %s / pods in a larger cluster, at least %d; a question may ask for 0 to %d (`remedy_batches`) |",
			maxRemedyBatches, thousands(maxRemedyPodBatches), minRemedyBatches, maxRemedyBatchesAsked),
		fmt.Sprintf("| `remedy_batches=N` | bound the remedy search to N batches simulated, 0 to %d:", maxRemedyBatchesAsked),
		fmt.Sprintf("| batches per campaign | %d |", maxCampaignBatches),
	} {
		if !strings.Contains(docs, want) {
			t.Errorf("docs/whatif.md does not say %q", want)
		}
	}
}

// thousands writes n with a comma between thousands, as the docs do.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
