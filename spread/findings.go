package spread

// Severity is how urgently a finding needs a person.
type Severity string

// Severities, as the alert rules' severity label and the check's states.
const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
)

// Alert names: the alert rules in rules/ fire exactly these, under exactly
// the conditions Findings states, and the check plugin reports the same.
// A test runs promtool against the rules with the cases of findings_test.go.
const (
	// AlertNoReplicaSurvivesMaintenance: the service has ready replicas and
	// none of them is on a schedulable node: the mathoid state of day two.
	AlertNoReplicaSurvivesMaintenance = "KubeSpreadNoReplicaSurvivesMaintenance"
	// AlertMaintenanceBelowMinNodes: maintenance leaves the service's
	// surviving replicas on fewer nodes than it needs, though its replicas
	// do span enough nodes: the cause is maintenance, not the steady state.
	AlertMaintenanceBelowMinNodes = "KubeSpreadMaintenanceBelowMinNodes"
	// AlertSingleHomed: two or more ready replicas, all on one node.
	AlertSingleHomed = "KubeSpreadSingleHomed"
	// AlertBelowMinNodes: enough ready replicas to span min_nodes nodes,
	// spread over fewer (but more than one), while the cluster has enough
	// schedulable nodes to do better: the day-before mathoid state when
	// min_nodes is 3.
	AlertBelowMinNodes = "KubeSpreadBelowMinNodes"
	// AlertSingleTopologyDomain: two or more ready replicas, all in one
	// topology domain, while the cluster's schedulable nodes span several.
	AlertSingleTopologyDomain = "KubeSpreadSingleTopologyDomain"
)

// Finding is one alert condition that holds for one service.
type Finding struct {
	Figures  *Figures
	Alert    string
	Severity Severity
	// TopologyKey is set for AlertSingleTopologyDomain.
	TopologyKey string
}

// Findings lists the alert conditions that hold for the services of the
// report, in the report's order of services. The `for` durations of the
// rules are not part of it: it says what holds now.
//
// Services that declare themselves non-redundant (min_nodes below 2: one
// desired replica, or the annotation set to 1) never have findings.
func (r *Report) Findings() []Finding {
	schedulableNodes := r.SchedulableNodes()
	var findings []Finding
	for i := range r.Services {
		findings = r.AppendFindings(findings, &r.Services[i], schedulableNodes)
	}
	return findings
}

// SchedulableNodes counts the schedulable nodes of the report, which
// AppendFindings needs.
func (r *Report) SchedulableNodes() int {
	schedulable := 0
	for _, n := range r.Nodes {
		if n.Node.Schedulable() {
			schedulable++
		}
	}
	return schedulable
}

// AppendFindings appends the findings of one service of the report (f
// points into r.Services) to findings: what Findings lists for it, without
// working out every other service's. schedulableNodes is
// r.SchedulableNodes().
func (r *Report) AppendFindings(findings []Finding, f *Figures, schedulableNodes int) []Finding {
	if f.MinNodes < 2 {
		return findings
	}
	add := func(alert string, severity Severity) {
		findings = append(findings, Finding{Figures: f, Alert: alert, Severity: severity})
	}
	switch {
	case f.ReplicasReady > 0 && f.ReplicasSchedulable == 0:
		add(AlertNoReplicaSurvivesMaintenance, SeverityCritical)
	case f.ReplicasSchedulable > 0 && f.SchedulableNodes < f.MinNodes && f.Nodes >= f.MinNodes:
		add(AlertMaintenanceBelowMinNodes, SeverityCritical)
	}
	switch {
	case f.ReplicasReady >= 2 && f.Nodes == 1:
		add(AlertSingleHomed, SeverityWarning)
	case f.ReplicasReady >= f.MinNodes && f.Nodes >= 2 && f.Nodes < f.MinNodes && schedulableNodes >= f.MinNodes:
		add(AlertBelowMinNodes, SeverityWarning)
	}
	for j, d := range f.Domains {
		if f.ReplicasReady >= 2 && d.All == 1 && j < len(r.Domains) && r.Domains[j].Schedulable >= 2 {
			findings = append(findings, Finding{Figures: f, Alert: AlertSingleTopologyDomain, Severity: SeverityWarning, TopologyKey: d.Key})
		}
	}
	return findings
}
