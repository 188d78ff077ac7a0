package promserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServer runs Prometheus with a rule that is always true and reads it
// back through Alerts, and a constant through Query.
func TestServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	writeFile(t, rules, `groups:
  - name: test
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(42)
        labels:
          severity: info
        annotations:
          summary: The value is {{ $value }}.
`)
	s, err := Start(ctx, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
`, rules))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", s.Log())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		alerts, alertsErr := s.Alerts(ctx)
		vector, queryErr := s.Query(ctx, `vector(7)`)
		if alertsErr == nil && queryErr == nil && len(alerts) == 1 && len(vector) == 1 {
			a := alerts[0]
			if a.Labels["alertname"] != "AlwaysFiring" || a.State != "firing" || a.Annotations["summary"] != "The value is 42." {
				t.Fatalf("alert = %+v, want AlwaysFiring firing with summary %q", a, "The value is 42.")
			}
			if vector[0].Value != 7 {
				t.Fatalf("vector(7) = %v", vector)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no firing alert and query answer within 30s: alerts %v (%v), query %v (%v)", alerts, alertsErr, vector, queryErr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if _, err := s.Query(ctx, `rate(`); err == nil {
		t.Error("Query of a malformed expression succeeded, want an error")
	}
	if _, err := s.Query(ctx, `"a string"`); err == nil {
		t.Error("Query of a string succeeded, want an error: only instant vectors are returned")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailsOnABadConfig(t *testing.T) {
	s, err := Start(context.Background(), t.TempDir(), "global: [\n")
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start with a malformed config succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "exited") {
		t.Errorf("error %q does not say Prometheus exited", err)
	}
}
