package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Overview is the dashboard an SRE keeps open during maintenance: how many
// services would not survive it, which ones, and which nodes are going away.
func Overview(opts Options) (dashboard.Dashboard, error) {
	services := opts.overviewServices()
	nodes := opts.clusterOnly()

	b := newDashboard(OverviewUID, "kube-spread / Overview",
		"Which services survive the nodes going away for maintenance. Verdicts as in spread/verdict.go; alerts in rules/kube-spread.rules.yml.").
		WithVariable(datasourceVariableBuilder()).
		WithVariable(clusterVariableBuilder(opts)).
		WithVariable(multiVariable(queryVariable("namespace", "Namespace",
			fmt.Sprintf("label_values(kube_spread_min_nodes%s, namespace)", nodes), "Namespaces of the services shown."))).
		WithVariable(multiVariable(queryVariable("kind", "Kind",
			fmt.Sprintf(`label_values(kube_spread_min_nodes%s, kind)`, nodes.with(`namespace=~"$namespace"`)),
			"Kinds of the services shown: Service, Deployment, StatefulSet, ReplicaSet, ReplicationController. A Deployment and the Service in front of it are counted once each.")))

	// One stat per verdict: together they count every service once.
	states := []struct {
		title, description, expr string
		color                    string
	}{
		{"No schedulable replica", "Services with ready replicas none of which is on a schedulable node: when the unschedulable nodes go away, nothing is left (verdict no_replicas_left; alert KubeSpreadNoReplicaSurvivesMaintenance, critical). Services that need one node (min_nodes below 2) are never counted here.",
			services.noReplicasLeft(), "red"},
		{"Single-homed", "Services with two or more replicas on schedulable nodes, all on one node: losing that node takes them down (verdict single_homed; alert KubeSpreadSingleHomed when every node is schedulable).",
			services.singleHomed(), "orange"},
		{"Below min nodes", "Services whose replicas on schedulable nodes span fewer nodes than min_nodes, and that are not single-homed (verdict below_min_nodes; alerts KubeSpreadMaintenanceBelowMinNodes and KubeSpreadBelowMinNodes).",
			services.belowMinNodes(), "orange"},
	}
	for i, s := range states {
		b = b.WithPanel(stat.NewPanelBuilder().
			Title(s.title).
			Description(s.description).
			Datasource(datasourceRef()).
			GridPos(gridPos(uint32(i)*5, 0, 5, 4)).
			Unit("none").
			Decimals(0).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).
			Thresholds(thresholds("green", at(1, s.color))).
			WithTarget(instantQuery("A", countOrZero(s.expr), "services")))
	}
	b = b.WithPanel(stat.NewPanelBuilder().
		Title("OK").
		Description("Services whose replicas on schedulable nodes span at least min_nodes nodes, services that need only one node, and services with no ready replica (down for reasons other monitoring reports) (verdict ok).").
		Datasource(datasourceRef()).
		GridPos(gridPos(15, 0, 5, 4)).
		Unit("none").
		Decimals(0).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		Thresholds(thresholds("green")).
		WithTarget(instantQuery("A", countOrZero(services.ok()), "services")))
	b = b.WithPanel(stat.NewPanelBuilder().
		Title("Unschedulable nodes").
		Description("Nodes going away: cordoned, not ready, with a maintenance taint or label, or being deleted. Their replicas do not count as surviving.").
		Datasource(datasourceRef()).
		GridPos(gridPos(20, 0, 4, 4)).
		Unit("none").
		Decimals(0).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		Thresholds(thresholds("green", at(1, "blue"))).
		WithTarget(instantQuery("A", countOrZero(nodes.metric("node_schedulable")+" == 0"), "nodes")))

	// Services at risk: one instant query per column, merged into one row
	// per service. Every column is restricted to the services at risk.
	atRisk := services.atRisk()
	columns := []struct{ refID, title, expr string }{
		{"A", "State", services.riskState()},
		{"B", "Ready", services.metric("replicas_ready") + " and " + atRisk},
		{"C", "Surviving", services.metric("replicas_schedulable") + " and " + atRisk},
		{"D", "Nodes", services.metric("nodes") + " and " + atRisk},
		{"E", "Surviving nodes", services.metric("schedulable_nodes") + " and " + atRisk},
		{"F", "Min nodes", services.metric("min_nodes") + " and " + atRisk},
		{"G", "Concentration", services.metric("node_concentration_ratio") + " and " + atRisk},
		{"H", "Desired", services.metric("replicas_desired") + " and " + atRisk},
	}
	riskTable := table.NewPanelBuilder().
		Title("Services at risk").
		Description("Every service whose verdict is not ok, worst first. Surviving: ready replicas on schedulable nodes. Concentration: the largest share of ready replicas on one node. Desired is empty for a Service. Click a row for the service's dashboard.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 4, 24, 10)).
		Unit("short").
		DataLinks([]cog.Builder[dashboard.DashboardLink]{serviceLink()}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("State").Desc(true)}).
		WithTransformation(merge()).
		OverrideByName("State", stateColumn()).
		OverrideByName("Concentration", []dashboard.DynamicConfigValue{{Id: "unit", Value: "percentunit"}})
	rename := map[string]string{}
	order := []string{"namespace", "kind", "name"}
	for _, c := range columns {
		riskTable = riskTable.WithTarget(tableQuery(c.refID, c.expr))
		rename["Value #"+c.refID] = c.title
		order = append(order, "Value #"+c.refID)
	}
	b = b.WithPanel(riskTable.WithTransformation(organize(targetLabels, rename, order)))

	// A node with several reasons has one row per reason. The value is the
	// ready pods of workloads on the node: what its going away takes.
	// Services are left out, as their endpoints are those same pods. Nodes without replicas have no node_replicas series (nor any
	// with --no-collector.node-replicas), hence the zero from
	// node_schedulable.
	// Sums keep every label but the service's (and the target's namespace,
	// which the Prometheus Operator puts on node series): the cluster
	// label, whatever its name, stays, so two clusters' nodes of the same
	// name never add up.
	replicasOnNode := fmt.Sprintf("(sum without (namespace, kind, name) (%s) or sum without (namespace) (%s) * 0)",
		nodes.with(`kind!="Service"`).metric("node_replicas"), nodes.metric("node_schedulable"))
	b = b.WithPanel(table.NewPanelBuilder().
		Title("Unschedulable nodes and why").
		Description("Nodes going away and why: cordoned, not_ready, maintenance_taint, maintenance_label or deleting (see docs/metrics.md). Replicas: the ready pods of workloads (Deployments, StatefulSets, ...) on the node, which maintenance takes.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 14, 12, 9)).
		Unit("short").
		WithTarget(tableQuery("A", fmt.Sprintf("%s * ignoring (namespace, reason) group_left () %s",
			nodes.metric("node_unschedulable_reason"), replicasOnNode))).
		WithTransformation(organize(targetLabels, map[string]string{"Value": "Replicas"}, []string{"node", "reason", "Value"})))

	b = b.WithPanel(table.NewPanelBuilder().
		Title("Sole home of services").
		Description("Nodes that hold every ready replica of some service with two or more: rebooting or draining the node takes those services down. Counted per kind, so a Deployment and its Service count once each.").
		Datasource(datasourceRef()).
		GridPos(gridPos(12, 14, 12, 9)).
		Unit("short").
		WithTarget(tableQuery("A", nodes.with(`kind=~"$kind"`).metric("node_single_homed_services")+" > 0")).
		WithTransformation(organize(targetLabels, map[string]string{"Value": "Single-homed services"}, []string{"node", "kind", "Value"})))

	// The same verdicts over time: when a batch of nodes was cordoned, and
	// what it did to the services.
	history := timeseries.NewPanelBuilder().
		Legend(legend()).
		Title("Services at risk over time").
		Description("Services per verdict over time, as in the stats above: a maintenance batch shows as a step when its nodes are cordoned.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 23, 24, 8)).
		Unit("short").
		Decimals(0).
		Min(0)
	for i, s := range states {
		history = history.WithTarget(rangeQuery(string(rune('A'+i)), countOrZero(s.expr), s.title))
	}
	b = b.WithPanel(history)

	return b.Build()
}

// serviceLink opens the service dashboard for the row's service, keeping
// the data source, the cluster and the time range.
func serviceLink() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("Service ${__data.fields.kind} ${__data.fields.namespace}/${__data.fields.name}").
		Type(dashboard.DashboardLinkTypeLink).
		Url("/d/" + ServiceUID + "/kube-spread-service?${datasource:queryparam}&${cluster:queryparam}" +
			"&var-namespace=${__data.fields.namespace}&var-kind=${__data.fields.kind}&var-name=${__data.fields.name}&${__url_time_range}")
}
