package icinga

import (
	"context"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/replay"
)

// TestMathoidReplay replays the 2018-07-04 incident and runs the check as
// Icinga would: OK after the setup and after day one (two nodes are enough
// with the default min_nodes of 2), CRITICAL the moment day two cordons
// both nodes that hold mathoid, while all four pods still run. Then NRPE
// carries that CRITICAL to check_nrpe intact.
func TestMathoidReplay(t *testing.T) {
	ctx := context.Background()
	e := startExporter(t)
	url := e.URL + "/metrics"
	scenario := &replay.Scenario{Client: client(t), Logf: t.Logf}
	// Only mathoid: other tests' objects share the control plane.
	services := []string{"services", "--url", url, "--namespace", replay.Namespace}
	deployment := []string{"service", "--url", url, "--namespace", replay.Namespace, "--kind", "Deployment", "--name", replay.Name}
	const okServices = "OK - 0 critical, 0 warning of 2 services | 'services'=2;;;0 'critical'=0;;0;0;2 'warning'=0;;;0;2 'not_ok'=0;0;;0;2 'replicas_ready'=8;;;0 'replicas_schedulable'=8;;;0"

	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "setup: one replica per node", 0,
		"OK - mathoid/Deployment/mathoid: 4 ready replicas on 4 nodes, 4 survive maintenance on 4 nodes, needs 2 nodes | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=4;;;0 'nodes'=4;;;0 'schedulable_nodes'=4;;;0 'min_nodes'=2;;;0",
		deployment...)
	eventually(t, "setup: every service OK", 0, okServices, services...)

	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "day one: every replica on 2001 and 2002, all nodes back", 0,
		"OK - mathoid/Deployment/mathoid: 4 ready replicas on 2 nodes, 4 survive maintenance on 2 nodes, needs 2 nodes | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=4;;;0 'nodes'=2;;;0 'schedulable_nodes'=2;;;0 'min_nodes'=2;;;0",
		deployment...)
	eventually(t, "day one: still OK with min_nodes 2", 0, okServices, services...)

	if err := scenario.DayTwo(ctx); err != nil {
		t.Fatal(err)
	}
	out := eventually(t, "day two: no replica survives", 2,
		"CRITICAL - 2 critical, 0 warning of 2 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance | 'services'=2;;;0 'critical'=2;;0;0;2 'warning'=0;;;0;2 'not_ok'=2;0;;0;2 'replicas_ready'=8;;;0 'replicas_schedulable'=0;;;0",
		services...)
	const wantDetails = `CRITICAL mathoid/Deployment/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 2
CRITICAL mathoid/Service/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 2
`
	if _, details, _ := strings.Cut(out, "\n"); details != wantDetails {
		t.Errorf("day two details:\n%s\nwant:\n%s", details, wantDetails)
	}

	t.Run("through NRPE", func(t *testing.T) { testNRPE(t, url) })
}
