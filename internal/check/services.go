package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// namedInSummary is how many troubled services the first line names; the
// rest are counted, and all of them have a detail line.
const namedInSummary = 3

// Filter selects services by anchored regular expressions; a nil field
// selects all.
type Filter struct {
	Namespace, Kind, Name *regexp.Regexp
	// narrowing names the filters given other than the default ".*", as
	// flags: what selected nothing when nothing is selected.
	narrowing []string
}

// selectAll is the filters' default: every service.
const selectAll = ".*"

// NewFilter compiles the filters. Each must match the whole label value,
// as the exporter's --namespaces.include does (and Prometheus relabelling),
// and "." matches a newline too: the default ".*" selects every service,
// whatever its name holds. The exporter's /api/v1/services matches alike.
func NewFilter(namespace, kind, name string) (Filter, error) {
	var f Filter
	for _, p := range []struct {
		flag, expr string
		dst        **regexp.Regexp
	}{{"--namespace", namespace, &f.Namespace}, {"--kind", kind, &f.Kind}, {"--name", name, &f.Name}} {
		re, err := regexp.Compile("(?s)^(?:" + p.expr + ")$")
		if err != nil {
			return Filter{}, fmt.Errorf("%s %q: %w", p.flag, p.expr, err)
		}
		*p.dst = re
		if p.expr != selectAll {
			f.narrowing = append(f.narrowing, fmt.Sprintf("%s=%q", p.flag, p.expr))
		}
	}
	return f, nil
}

func (f Filter) match(s *spread.Service) bool {
	return (f.Namespace == nil || f.Namespace.MatchString(s.Namespace)) &&
		(f.Kind == nil || f.Kind.MatchString(string(s.Kind))) &&
		(f.Name == nil || f.Name.MatchString(s.Name))
}

// ServicesOptions configure the check of many services.
type ServicesOptions struct {
	Filter Filter
	// Critical is the range of the number of services with a critical
	// finding; outside it the check is CRITICAL. Nil never raises it.
	Critical *nagios.Range
	// Warning is the range of the number of services with any finding;
	// outside it the check is WARNING. Nil never raises it.
	Warning *nagios.Range
}

// DefaultCriticalServices and DefaultWarningServices are the thresholds
// that make the check agree with the alert rules: any service with a
// critical finding is CRITICAL, any other finding WARNING.
const (
	DefaultCriticalServices = "0"
	DefaultWarningServices  = "0"
)

// troubled is one service with findings, in the report's order.
type troubled struct {
	figures  *spread.Figures
	findings []spread.Finding
	severity spread.Severity
}

// group collects the findings per service. Findings lists them in the
// report's order of services, so one pass keeps that order.
func group(findings []spread.Finding) []troubled {
	var out []troubled
	for _, f := range findings {
		if len(out) == 0 || out[len(out)-1].figures != f.Figures {
			out = append(out, troubled{figures: f.Figures, severity: spread.SeverityWarning})
		}
		t := &out[len(out)-1]
		t.findings = append(t.findings, f)
		if f.Severity == spread.SeverityCritical {
			t.severity = spread.SeverityCritical
		}
	}
	return out
}

// filtered returns a report with the selected services only. Nodes and
// cluster domains stay: Findings judges each service against the whole
// cluster, whatever else is selected.
func filtered(report *spread.Report, filter Filter) *spread.Report {
	out := &spread.Report{TopologyKeys: report.TopologyKeys, Nodes: report.Nodes, Domains: report.Domains}
	for i := range report.Services {
		if filter.match(report.Services[i].Service) {
			out.Services = append(out.Services, report.Services[i])
		}
	}
	return out
}

// selection is what the services check judges: the counts over the
// selected services and the troubled ones among them, in the report's
// order.
type selection struct {
	total, ready, schedulable int
	troubled                  []troubled
}

// Services judges every selected service of the report.
func Services(report *spread.Report, opts ServicesOptions) *nagios.Result {
	report = filtered(report, opts.Filter)
	sel := selection{total: len(report.Services), troubled: group(report.Findings())}
	for i := range report.Services {
		sel.ready += report.Services[i].ReplicasReady
		sel.schedulable += report.Services[i].ReplicasSchedulable
	}
	return judgeServices(sel, opts)
}

// ServicesFromAPI judges the answer of /api/v1/services, asked with the
// filter of opts and for the services with findings only: the exporter
// selected and judged, the totals come with the answer.
func ServicesFromAPI(answer *api.Services, opts ServicesOptions) *nagios.Result {
	sel := selection{total: answer.Selected.Services, ready: answer.Selected.ReplicasReady, schedulable: answer.Selected.ReplicasSchedulable}
	for i := range answer.Services {
		if t, ok := fromAPI(&answer.Services[i]); ok {
			sel.troubled = append(sel.troubled, t)
		}
	}
	return judgeServices(sel, opts)
}

// fromAPI turns a service of the API into the figures and findings the
// check renders, so that both sources print the same lines; ok is false
// for a service without findings.
func fromAPI(s *api.Service) (troubled, bool) {
	desired := -1
	if s.ReplicasDesired != nil {
		desired = *s.ReplicasDesired
	}
	f := &spread.Figures{
		Service:       &spread.Service{Namespace: s.Namespace, Kind: s.Kind, Name: s.Name, DesiredReplicas: desired},
		ReplicasReady: s.ReplicasReady, ReplicasSchedulable: s.ReplicasSchedulable,
		Nodes: s.Nodes, SchedulableNodes: s.SchedulableNodes, MinNodes: s.MinNodes,
	}
	if s.Node != "" {
		f.NodeReplicas = []spread.NodeCount{{Node: s.Node, Count: s.ReplicasReady}}
	}
	findings := make([]spread.Finding, len(s.Findings))
	for i, finding := range s.Findings {
		findings[i] = spread.Finding{Figures: f, Alert: finding.Alert, Severity: finding.Severity, TopologyKey: finding.TopologyKey}
	}
	if groups := group(findings); len(groups) == 1 {
		return groups[0], true
	}
	return troubled{figures: f}, false
}

func judgeServices(sel selection, opts ServicesOptions) *nagios.Result {
	// A filter with a typo (or an Icinga variable set to "") would check
	// nothing and be OK for ever: a typo must not be green. Without
	// filters, a cluster of no service is OK.
	if sel.total == 0 && len(opts.Filter.narrowing) > 0 {
		return nagios.UnknownResult(fmt.Errorf("no service matches %s: the check would judge nothing", strings.Join(opts.Filter.narrowing, " ")))
	}
	// Critical services first, each group in the report's order.
	var critical, warning []troubled
	for _, t := range sel.troubled {
		if t.severity == spread.SeverityCritical {
			critical = append(critical, t)
		} else {
			warning = append(warning, t)
		}
	}
	worstFirst := slices.Concat(critical, warning)
	total := sel.total

	state := nagios.OK
	if opts.Critical != nil && opts.Critical.Alert(float64(len(critical))) {
		state = nagios.Critical
	} else if opts.Warning != nil && opts.Warning.Alert(float64(len(worstFirst))) {
		state = nagios.Warning
	}

	summary := fmt.Sprintf("%d critical, %d warning of %d services", len(critical), len(warning), total)
	var named []string
	for i, t := range worstFirst {
		if i == namedInSummary {
			named = append(named, fmt.Sprintf("and %d more", len(worstFirst)-namedInSummary))
			break
		}
		named = append(named, Key(t.figures.Service).String()+" "+describe(t.findings[0]))
	}
	if len(named) > 0 {
		summary += ": " + strings.Join(named, ", ")
	}

	ready, schedulable := sel.ready, sel.schedulable
	outOf := nagios.Float(float64(total))
	result := &nagios.Result{
		State:   state,
		Summary: summary,
		Perfdata: []nagios.Perfdata{
			{Label: "services", Value: float64(total), Min: nagios.Float(0)},
			{Label: "critical", Value: float64(len(critical)), Critical: opts.Critical, Min: nagios.Float(0), Max: outOf},
			{Label: "warning", Value: float64(len(warning)), Min: nagios.Float(0), Max: outOf},
			{Label: "not_ok", Value: float64(len(worstFirst)), Warning: opts.Warning, Min: nagios.Float(0), Max: outOf},
			{Label: "replicas_ready", Value: float64(ready), Min: nagios.Float(0)},
			{Label: "replicas_schedulable", Value: float64(schedulable), Min: nagios.Float(0)},
		},
	}
	for _, t := range worstFirst {
		result.Details = append(result.Details, detail(t))
	}
	return result
}

// Service judges one service. It is UNKNOWN when the exporter does not
// publish the service: a typo in an Icinga service object must not be a
// green light.
func Service(report *spread.Report, key ServiceKey) *nagios.Result {
	var one *spread.Figures
	for i := range report.Services {
		if Key(report.Services[i].Service) == key {
			one = &report.Services[i]
			break
		}
	}
	if one == nil {
		return notPublished(key)
	}
	single := &spread.Report{TopologyKeys: report.TopologyKeys, Nodes: report.Nodes, Domains: report.Domains, Services: []spread.Figures{*one}}
	t := troubled{figures: &single.Services[0]}
	if groups := group(single.Findings()); len(groups) == 1 {
		t = groups[0]
	}
	return judgeService(key, t)
}

// ServiceFromAPI judges the answer of /api/v1/services asked for exactly
// one service; UNKNOWN when the exporter does not publish it.
func ServiceFromAPI(answer *api.Services, key ServiceKey) *nagios.Result {
	for i := range answer.Services {
		s := &answer.Services[i]
		if (ServiceKey{s.Namespace, string(s.Kind), s.Name}) == key {
			t, _ := fromAPI(s)
			return judgeService(key, t)
		}
	}
	return notPublished(key)
}

func notPublished(key ServiceKey) *nagios.Result {
	return &nagios.Result{State: nagios.Unknown, Summary: fmt.Sprintf(
		"%s is not published by the exporter: check the names (kind is one of Service, Deployment, StatefulSet, ReplicaSet, ReplicationController) and the exporter's --namespaces.include", key)}
}

// judgeService renders one service; t.findings is empty when it has none.
func judgeService(key ServiceKey, t troubled) *nagios.Result {
	f := t.figures
	result := &nagios.Result{
		State: nagios.OK,
		Summary: fmt.Sprintf("%s: %d ready replicas on %d nodes, %d survive maintenance on %d nodes, needs %d nodes",
			key, f.ReplicasReady, f.Nodes, f.ReplicasSchedulable, f.SchedulableNodes, f.MinNodes),
	}
	if len(t.findings) > 0 {
		result.State = stateOf(t.severity)
		phrases := make([]string, len(t.findings))
		for i, finding := range t.findings {
			phrases[i] = describe(finding)
		}
		result.Summary = fmt.Sprintf("%s: %s", key, strings.Join(phrases, "; "))
		result.Details = []string{detail(t)}
	}
	if f.Service.DesiredReplicas >= 0 {
		result.Perfdata = append(result.Perfdata, nagios.Perfdata{Label: "replicas_desired", Value: float64(f.Service.DesiredReplicas), Min: nagios.Float(0)})
	}
	result.Perfdata = append(result.Perfdata,
		nagios.Perfdata{Label: "replicas_ready", Value: float64(f.ReplicasReady), Min: nagios.Float(0)},
		nagios.Perfdata{Label: "replicas_schedulable", Value: float64(f.ReplicasSchedulable), Min: nagios.Float(0)},
		nagios.Perfdata{Label: "nodes", Value: float64(f.Nodes), Min: nagios.Float(0)},
		nagios.Perfdata{Label: "schedulable_nodes", Value: float64(f.SchedulableNodes), Min: nagios.Float(0)},
		nagios.Perfdata{Label: "min_nodes", Value: float64(f.MinNodes), Min: nagios.Float(0)},
	)
	return result
}

func stateOf(s spread.Severity) nagios.State {
	if s == spread.SeverityCritical {
		return nagios.Critical
	}
	return nagios.Warning
}

// describe says in words what a finding means for the service.
func describe(f spread.Finding) string {
	fig := f.Figures
	switch f.Alert {
	case spread.AlertNoReplicaSurvivesMaintenance:
		return "no replica survives maintenance"
	case spread.AlertMaintenanceBelowMinNodes:
		return fmt.Sprintf("maintenance leaves replicas on %d of %d nodes needed", fig.SchedulableNodes, fig.MinNodes)
	case spread.AlertSingleHomed:
		if len(fig.NodeReplicas) == 1 {
			return fmt.Sprintf("all %d replicas on node %s", fig.ReplicasReady, fig.NodeReplicas[0].Node)
		}
		return fmt.Sprintf("all %d replicas on one node", fig.ReplicasReady)
	case spread.AlertBelowMinNodes:
		return fmt.Sprintf("spread over %d nodes, needs %d", fig.Nodes, fig.MinNodes)
	case spread.AlertSingleTopologyDomain:
		return fmt.Sprintf("all replicas in one %s domain", f.TopologyKey)
	}
	return f.Alert
}

// detail is the line of one troubled service: state, name, what is wrong
// with the alert names (the runbook's headings), and its figures.
func detail(t troubled) string {
	phrases := make([]string, len(t.findings))
	for i, f := range t.findings {
		phrases[i] = fmt.Sprintf("%s (%s)", describe(f), f.Alert)
	}
	f := t.figures
	return fmt.Sprintf("%s %s: %s; ready %d, schedulable %d, nodes %d, schedulable nodes %d, min_nodes %d",
		stateOf(t.severity), Key(f.Service), strings.Join(phrases, "; "),
		f.ReplicasReady, f.ReplicasSchedulable, f.Nodes, f.SchedulableNodes, f.MinNodes)
}
