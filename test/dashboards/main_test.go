// Package dashboards tests the Grafana dashboards against a real
// Prometheus: the exporter, built and run as users run it, watches a real
// control plane (internal/harness/controlplane) while the mathoid incident is
// replayed; a real Prometheus (internal/harness/promserver) scrapes it, and every
// panel query of the committed dashboards, with its variables filled in as
// Grafana would, must be accepted and return data.
package dashboards

import (
	"os"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }
