package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// TestAPIsNextToACustomMetricsPath: the check derives the JSON APIs' URLs
// from its --url by replacing the metrics path's last element
// (docs/api.md). With --web.telemetry-path=/x/metrics the exporter serves
// them under /x/ as well as at the root, and a path under an API prefix
// that names no API is a JSON 404, as every other API error.
func TestAPIsNextToACustomMetricsPath(t *testing.T) {
	ctx := context.Background()
	e := startExporter(t, "--web.telemetry-path=/x/metrics")
	for _, path := range []string{"/x/metrics", "/x/api/v1/health", "/api/v1/health", "/x/api/v1/services?severity=critical", "/api/v1/services?severity=critical"} {
		status, body, err := e.Get(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200; body %.200q", path, status, body)
		}
	}
	for _, path := range []string{"/api/v1/whatif/nope", "/x/api/v1/whatif/nope", "/api/v2/services"} {
		status, body, err := e.Get(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		var answer struct{ Error string }
		if status != http.StatusNotFound || json.Unmarshal([]byte(body), &answer) != nil || !strings.Contains(answer.Error, "no such API path") {
			t.Errorf("GET %s: status %d, want 404 with a JSON error; body %.200q", path, status, body)
		}
	}

	// The what-if has no /metrics fallback: the check reaches it under
	// /x/ or fails. The exporter's answer about a node it does not know
	// shows it did.
	check := exporterproc.BuildForTest(t, "check_kube_spread")
	out, err := exec.Command(check, "--url="+e.URL+"/x/metrics", "whatif", "--node=no-such-node").CombinedOutput()
	if code := exitCode(t, err); code != 3 || !strings.Contains(string(out), "unknown nodes: no-such-node") {
		t.Errorf("check whatif through --url .../x/metrics: exit %d, want 3 with the exporter's \"unknown nodes: no-such-node\":\n%s", code, out)
	}
}
