package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// TestDemoSecured runs the whole demo, with the exporter behind TLS and
// basic auth, and checks that it shows each step's finding: the campaign
// question at the start naming the fatal second batch and a remedy, the preflight
// refusing the day-two batch, the check going CRITICAL, Prometheus firing
// through the secured endpoint, and the page reaching the webhook through
// Alertmanager.
func TestDemoSecured(t *testing.T) {
	t.Chdir(repo.RootForTest(t)) // the demo runs from the repository, as make demo does
	var out strings.Builder
	if err := run(context.Background(), &out, true); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"exporter at https://127.0.0.1:",
		`basic auth user "demo"`,
		"$ check_kube_spread campaign --batch=kubernetes2003,kubernetes2004 --batch=kubernetes2001,kubernetes2002\n   CRITICAL - mathoid/Deployment/mathoid",
		"batch 1 moves all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 2 takes them down; remedy: restart",
		"the scheduler moved the replicas: kubernetes2001=2 kubernetes2002=2",
		"GET /api/v1/whatif?node=kubernetes2001&node=kubernetes2002\n   -> verdict no_replicas_left",
		"CRITICAL - taking down kubernetes2001, kubernetes2002 hurts 2 services",
		"   Deployment  4      0            2      0                  0.50           2          no_replicas_left",
		"CRITICAL - 2 critical, 0 warning of 2 services: mathoid/Deployment/mathoid no replica survives maintenance",
		"FIRING KubeSpreadNoReplicaSurvivesMaintenance (severity critical)",
		"== The page, as the pager's webhook receives it from Alertmanager\n   POST /kube-spread-pager,",
		`"receiver": "kube-spread-pager",`,
		`"status": "firing",`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if t.Failed() {
		os.Stdout.WriteString(out.String())
	}
}
