package integration

import (
	"context"
	"errors"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/replay"
)

// TestMathoidReplay replays the 2018-07-04 incident and checks that the
// exporter shows the danger after day two's cordon, while all four pods
// still run: replicas_ready stays 4, replicas_schedulable drops to 0.
func TestMathoidReplay(t *testing.T) {
	ctx := context.Background()
	e := startExporter(t)
	scenario := &replay.Scenario{Client: client(t), Logf: t.Logf}
	deployment := map[string]string{"namespace": replay.Namespace, "kind": "Deployment", "name": replay.Name}
	service := map[string]string{"namespace": replay.Namespace, "kind": "Service", "name": replay.Name}
	figures := func(labels map[string]string, ready, schedulable, nodes, schedulableNodes, ratio float64) func(map[string]*dto.MetricFamily) error {
		return func(m map[string]*dto.MetricFamily) error {
			return errors.Join(
				expect(m, "kube_spread_replicas_ready", labels, ready),
				expect(m, "kube_spread_replicas_schedulable", labels, schedulable),
				expect(m, "kube_spread_nodes", labels, nodes),
				expect(m, "kube_spread_schedulable_nodes", labels, schedulableNodes),
				expect(m, "kube_spread_node_concentration_ratio", labels, ratio),
				expect(m, "kube_spread_min_nodes", labels, 2),
			)
		}
	}

	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	// The default scheduler spreads the four replicas over the four nodes.
	eventually(t, e, "setup: one replica per node", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			figures(deployment, 4, 4, 4, 4, 0.25)(m),
			figures(service, 4, 4, 4, 4, 0.25)(m),
			expect(m, "kube_spread_replicas_desired", deployment, 4),
			expect(m, "kube_spread_topology_domains", map[string]string{"name": replay.Name, "kind": "Service", "topology_key": "topology.kubernetes.io/zone"}, 2),
		)
	})

	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "day one: every replica on 2001 and 2002, all nodes schedulable again", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			figures(deployment, 4, 4, 2, 2, 0.5)(m),
			figures(service, 4, 4, 2, 2, 0.5)(m),
			expect(m, "kube_spread_node_replicas", map[string]string{"kind": "Deployment", "name": replay.Name, "node": "kubernetes2001"}, 2),
			expect(m, "kube_spread_node_replicas", map[string]string{"kind": "Deployment", "name": replay.Name, "node": "kubernetes2002"}, 2),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "kubernetes2003"}, 1),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "kubernetes2004"}, 1),
		)
	})

	if err := scenario.DayTwo(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "day two: four ready replicas, none on a node that survives", func(m map[string]*dto.MetricFamily) error {
		return errors.Join(
			figures(deployment, 4, 0, 2, 0, 0.5)(m),
			figures(service, 4, 0, 2, 0, 0.5)(m),
			expect(m, "kube_spread_schedulable_topology_domains", map[string]string{"kind": "Deployment", "name": replay.Name}, 0),
			expect(m, "kube_spread_node_schedulable", map[string]string{"node": "kubernetes2001"}, 0),
			expect(m, "kube_spread_node_unschedulable_reason", map[string]string{"node": "kubernetes2002", "reason": "cordoned"}, 1),
		)
	})
}
