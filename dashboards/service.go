package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Service is the dashboard of one service: how its replicas have been
// spread over time and where they are now.
func Service(opts Options) (dashboard.Dashboard, error) {
	service := opts.oneService()
	nodes := opts.clusterOnly()

	b := newDashboard(ServiceUID, "kube-spread / Service",
		"How one service's ready replicas are spread over nodes and topology domains, and how many survive the unschedulable nodes going away.").
		WithVariable(datasourceVariableBuilder()).
		WithVariable(clusterVariableBuilder(opts)).
		WithVariable(queryVariable("namespace", "Namespace",
			fmt.Sprintf("label_values(kube_spread_min_nodes%s, namespace)", nodes), "The service's namespace.")).
		WithVariable(queryVariable("kind", "Kind",
			fmt.Sprintf("label_values(kube_spread_min_nodes%s, kind)", nodes.with(`namespace="$namespace"`)),
			"Service, Deployment, StatefulSet, ReplicaSet or ReplicationController.")).
		WithVariable(queryVariable("name", "Name",
			fmt.Sprintf("label_values(kube_spread_min_nodes%s, name)", nodes.with(`namespace="$namespace"`, `kind="$kind"`)),
			"The name of the Service or workload."))

	b = b.WithPanel(stat.NewPanelBuilder().
		Title("State").
		Description("The verdict of spread/verdict.go: ok, below min nodes, single-homed or no schedulable replica, judged on the replicas on schedulable nodes.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 0, 8, 4)).
		Unit("none").
		Mappings(stateMappings()).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		WithTarget(instantQuery("A", service.state(), "state")))
	b = b.WithPanel(stat.NewPanelBuilder().
		Title("Surviving replicas").
		Description("Ready replicas on schedulable nodes, out of all ready replicas: the ones left when the unschedulable nodes go away.").
		Datasource(datasourceRef()).
		GridPos(gridPos(8, 0, 8, 4)).
		Unit("none").
		Decimals(0).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeArea).
		Thresholds(thresholds("red", at(1, "green"))).
		WithTarget(instantQuery("A", service.metric("replicas_schedulable"), "surviving")).
		WithTarget(instantQuery("B", service.metric("replicas_ready"), "ready")))
	b = b.WithPanel(stat.NewPanelBuilder().
		Title("Min nodes").
		Description("Nodes the service needs: the kube-spread.io/min-nodes annotation, else --spread.default-min-nodes, capped at its desired replicas (or a Service's endpoints). Below 2 the service never pages.").
		Datasource(datasourceRef()).
		GridPos(gridPos(16, 0, 8, 4)).
		Unit("none").
		Decimals(0).
		ColorMode(common.BigValueColorModeNone).
		GraphMode(common.BigValueGraphModeNone).
		WithTarget(instantQuery("A", service.metric("min_nodes"), "min nodes")))

	b = b.WithPanel(timeseries.NewPanelBuilder().
		Legend(legend()).
		Title("Replicas").
		Description("Desired (workloads only), ready, and ready on schedulable nodes. A gap between ready and schedulable is what maintenance takes.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 4, 12, 8)).
		Unit("short").
		Decimals(0).
		Min(0).
		WithTarget(rangeQuery("A", service.metric("replicas_desired"), "desired")).
		WithTarget(rangeQuery("B", service.metric("replicas_ready"), "ready")).
		WithTarget(rangeQuery("C", service.metric("replicas_schedulable"), "schedulable")))
	b = b.WithPanel(timeseries.NewPanelBuilder().
		Legend(legend()).
		Title("Nodes and topology domains").
		Description("Distinct nodes and topology domains (per --topology.key) holding ready replicas, all and schedulable only, against the nodes the service needs.").
		Datasource(datasourceRef()).
		GridPos(gridPos(12, 4, 12, 8)).
		Unit("short").
		Decimals(0).
		Min(0).
		WithTarget(rangeQuery("A", service.metric("nodes"), "nodes")).
		WithTarget(rangeQuery("B", service.metric("schedulable_nodes"), "schedulable nodes")).
		WithTarget(rangeQuery("C", service.metric("min_nodes"), "min nodes")).
		WithTarget(rangeQuery("D", service.metric("topology_domains"), "domains of {{topology_key}}")).
		WithTarget(rangeQuery("E", service.metric("schedulable_topology_domains"), "schedulable domains of {{topology_key}}")))
	b = b.WithPanel(timeseries.NewPanelBuilder().
		Legend(legend()).
		Title("Node concentration").
		Description("The largest share of the ready replicas on one node. 100% is single-homed; with n replicas evenly spread it is 1/n. No value while nothing is ready.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 12, 12, 8)).
		Unit("percentunit").
		Min(0).
		Max(1).
		WithTarget(rangeQuery("A", service.metric("node_concentration_ratio"), "concentration")))
	b = b.WithPanel(bargauge.NewPanelBuilder().
		Title("Replicas per node").
		Description("Ready replicas of the service on each node, now. By default the exporter publishes them for services at risk only (replicas on nodes going away, on no more nodes than min nodes, or in one topology domain; docs/metrics.md): no data for a healthy service unless it runs with --collector.node-replicas.scope=all.").
		Datasource(datasourceRef()).
		GridPos(gridPos(12, 12, 12, 8)).
		Unit("short").
		Decimals(0).
		Min(0).
		Orientation(common.VizOrientationHorizontal).
		DisplayMode(common.BarGaugeDisplayModeBasic).
		WithTarget(instantQuery("A", fmt.Sprintf("sort_desc(%s)", service.metric("node_replicas")), "{{node}}")))

	// node_replicas has one series per node of this service; group_right
	// keeps a row per reason of the node. The match ignores the labels one
	// side has (the service's; the reason; the target's namespace on node
	// series with the Prometheus Operator) and keeps the cluster label.
	b = b.WithPanel(table.NewPanelBuilder().
		Title("Its nodes going away").
		Description("Nodes that hold ready replicas of the service and are unschedulable, with why. Replicas: the service's ready replicas on the node, lost when it goes away.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 20, 24, 7)).
		Unit("short").
		WithTarget(tableQuery("A", fmt.Sprintf("%s * ignoring (namespace, kind, name, reason) group_right () %s",
			service.metric("node_replicas"), nodes.metric("node_unschedulable_reason")))).
		WithTransformation(organize(targetLabels, map[string]string{"Value": "Replicas"}, []string{"node", "reason", "Value"})))

	// Both figures come from the exporter's placement model (docs/metrics.md,
	// "Where displaced replicas go").
	b = b.WithPanel(timeseries.NewPanelBuilder().
		Legend(legend()).
		Title("Replicas without room").
		Description("Replicas on unschedulable nodes that fit on no schedulable node (resources, taints, node affinity, spread, anti-affinity), all displaced pods competing; alert KubeSpreadMaintenanceNoRoom. No value while the model cannot judge the service: ask the what-if API why.").
		Datasource(datasourceRef()).
		GridPos(gridPos(0, 27, 12, 8)).
		Unit("short").
		Decimals(0).
		Min(0).
		Thresholds(thresholds("green", at(1, "red"))).
		WithTarget(rangeQuery("A", service.metric("replicas_unplaceable"), "without room")))
	b = b.WithPanel(timeseries.NewPanelBuilder().
		Legend(legend()).
		Title("Warm nodes").
		Description("Schedulable nodes that admit the service's pods and already hold all of their images, while some of its replicas are on unschedulable nodes (no value otherwise). 0: every replacement pulls its images first, a slow start.").
		Datasource(datasourceRef()).
		GridPos(gridPos(12, 27, 12, 8)).
		Unit("short").
		Decimals(0).
		Min(0).
		WithTarget(rangeQuery("A", service.metric("warm_nodes"), "warm nodes")))

	return b.Build()
}
