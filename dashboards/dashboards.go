// Package dashboards defines the Grafana dashboards of kube-spread-exporter
// as code, with grafana-foundation-sdk, and renders them to the classic
// dashboard JSON committed next to this file. `go run ./dashboards/generate`
// writes the files; a test fails when they differ from what this package
// renders, so the JSON never drifts from its source.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Options are the choices a user may make when generating the dashboards.
type Options struct {
	// ClusterLabel is the label that tells clusters apart when one
	// Prometheus (or Thanos, Mimir) holds several; the cluster variable
	// lists its values. Series without it are shown under "All".
	ClusterLabel string
}

// DefaultOptions are the options of the committed dashboards.
func DefaultOptions() Options { return Options{ClusterLabel: "cluster"} }

// MixinDir is where `go run ./dashboards/generate` writes the monitoring
// mixin's copies of the dashboards, relative to the repository root.
const MixinDir = "mixin/generated"

// MixinClusterLabel stands for the cluster label in the mixin's copies of
// the dashboards. The mixin puts its _config.clusterLabel in its place when
// it is evaluated, which is all that ClusterLabel changes: the copies are
// the dashboards for any label, and jsonnet need not rebuild them.
const MixinClusterLabel = "KUBE_SPREAD_CLUSTER_LABEL"

// MixinOptions are the options of the mixin's copies.
func MixinOptions() Options { return Options{ClusterLabel: MixinClusterLabel} }

// The dashboards' uids: stable, so that links between them and
// provisioned copies keep working across versions.
const (
	OverviewUID = "kube-spread-overview"
	ServiceUID  = "kube-spread-service"
)

// tag groups the dashboards; each links to the others by it.
const tag = "kube-spread"

// schemaVersion is Grafana 10.0's dashboard schema, the oldest release the
// dashboards are for. The SDK writes the newest schema, which older
// releases do not know; newer releases migrate an older schema on load.
const schemaVersion = 38

// File is one rendered dashboard.
type File struct {
	// Name is the file name in dashboards/, such as kube-spread-overview.json.
	Name string
	JSON []byte
}

// Render builds every dashboard and renders it as indented JSON.
func Render(opts Options) ([]File, error) {
	builders := []struct {
		name  string
		build func(Options) (dashboard.Dashboard, error)
	}{
		{OverviewUID + ".json", Overview},
		{ServiceUID + ".json", Service},
	}
	files := make([]File, 0, len(builders))
	for _, b := range builders {
		d, err := b.build(opts)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", b.name, err)
		}
		d.SchemaVersion = schemaVersion
		dropLinkPlacement(&d)
		var buf bytes.Buffer
		encoder := json.NewEncoder(&buf)
		encoder.SetIndent("", "  ")
		// PromQL comparisons (<, >) stay readable in the committed file.
		encoder.SetEscapeHTML(false)
		if err := encoder.Encode(d); err != nil {
			return nil, fmt.Errorf("render %s: %w", b.name, err)
		}
		files = append(files, File{Name: b.name, JSON: buf.Bytes()})
	}
	return files, nil
}

// newDashboard has the settings both dashboards share.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{tag}).
		Editable().
		Refresh("30s").
		Time("now-6h", "now").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("kube-spread").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{tag}).
			AsDropdown(false).
			IncludeVars(true).
			KeepTime(true))
}

// Variables.

func datasourceVariableBuilder() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(datasourceVariable).
		Label("Data source").
		Description("The Prometheus that scrapes kube-spread-exporter.").
		Type("prometheus")
}

// queryVariable lists the values of label on metric in the selected data
// source. Refreshed on time range change, so that services created since
// the dashboard was opened show up.
func queryVariable(name, label, query, description string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Description(description).
		Datasource(datasourceRef()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// multiVariable may be "All", which stands for the regular expression .*:
// Grafana's default All value is an alternation of the values it knows,
// which misses values created after it loaded them and is long.
func multiVariable(b *dashboard.QueryVariableBuilder) *dashboard.QueryVariableBuilder {
	return b.Multi(true).IncludeAll(true).AllValue(".*")
}

// clusterVariableBuilder lists the values of the cluster label. When no
// series has the label (one cluster per Prometheus, the usual case) it
// lists nothing but "All", whose .* matches the missing label too.
func clusterVariableBuilder(opts Options) *dashboard.QueryVariableBuilder {
	return queryVariable("cluster", "Cluster",
		fmt.Sprintf("label_values(kube_spread_build_info, %s)", opts.ClusterLabel),
		fmt.Sprintf("The value of the %s label; All when Prometheus holds one cluster and series have no such label.", opts.ClusterLabel)).
		IncludeAll(true).AllValue(".*")
}

// dropLinkPlacement removes the placement the SDK gives every link:
// "inControlsMenu" would hide the dashboard links in a menu in Grafana 12,
// and means nothing on a data link.
func dropLinkPlacement(d *dashboard.Dashboard) {
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	for _, p := range d.Panels {
		if p.Panel == nil || p.Panel.FieldConfig == nil {
			continue
		}
		for i := range p.Panel.FieldConfig.Defaults.Links {
			p.Panel.FieldConfig.Defaults.Links[i].Placement = nil
		}
	}
}
