package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// datasourceVariable is the name of the variable every panel and query
// variable takes its data source from: no dashboard names a data source
// uid, which differs in every Grafana.
const datasourceVariable = "datasource"

// datasourceRef points at the data source the datasource variable selects.
func datasourceRef() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + datasourceVariable + "}")}
}

// rangeQuery is a query drawn over the time range, one series per legend.
func rangeQuery(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(refID).Expr(expr).LegendFormat(legend).Range()
}

// instantQuery is a query evaluated once, at the end of the time range:
// what a stat or bar gauge shows is the state now.
func instantQuery(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(refID).Expr(expr).LegendFormat(legend).Instant()
}

// tableQuery is an instant query whose labels become table columns.
func tableQuery(refID, expr string) *prometheus.DataqueryBuilder {
	return instantQuery(refID, expr, "__auto").Format(prometheus.PromQueryFormatTable)
}

// thresholds colors values: base below the first step, then each step's
// color from its value up.
func thresholds(base string, from ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps(append([]dashboard.Threshold{{Color: base}}, from...))
}

// at is a threshold step.
func at(value float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: cog.ToPtr(value), Color: color}
}

// stateMappings names the state codes of promql.go, colored as the alerts'
// severities: critical red, warning orange.
func stateMappings() []dashboard.ValueMapping {
	text := func(index int32, text, color string) dashboard.ValueMappingResult {
		return dashboard.ValueMappingResult{Text: cog.ToPtr(text), Color: cog.ToPtr(color), Index: cog.ToPtr(index)}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"0": text(0, "ok", "green"),
			"1": text(1, "below min nodes", "orange"),
			"2": text(2, "single-homed", "orange"),
			"3": text(3, "no schedulable replica", "red"),
		},
	}}}
}

// organize hides columns and renames and orders the rest, the
// "Organize fields" transformation.
func organize(hide []string, rename map[string]string, order []string) dashboard.DataTransformerConfig {
	exclude := map[string]bool{}
	for _, name := range hide {
		exclude[name] = true
	}
	index := map[string]int{}
	for i, name := range order {
		index[name] = i
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": exclude,
		"renameByName":  rename,
		"indexByName":   index,
	}}
}

// merge joins the tables of several instant queries into one row per label
// set: one column per query.
func merge() dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}
}

// targetLabels are the columns a table never needs: the scrape target's
// labels and the evaluation time.
var targetLabels = []string{"Time", "job", "instance", "__name__"}

// stateColumn is the override that shows a state code as its verdict.
func stateColumn() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{
		{Id: "mappings", Value: stateMappings()},
		{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}},
		{Id: "unit", Value: "none"},
	}
}

func gridPos(x, y, w, h uint32) dashboard.GridPos {
	return dashboard.GridPos{X: x, Y: y, W: w, H: h}
}

// legend lists the series under a time series panel; the SDK's default
// hides it, and the panels draw several series each.
func legend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		ShowLegend(true).
		DisplayMode(common.LegendDisplayModeList).
		Placement(common.LegendPlacementBottom)
}
