package dashboards

import (
	"fmt"
	"strings"
)

// selector renders the label matchers every query of a dashboard puts on
// the per-service and per-node metrics.
type selector struct {
	clusterLabel string
	// service holds the matchers on namespace, kind and name; empty for
	// node metrics, which have none of these labels.
	service []string
}

// clusterOnly is the selector of per-node and per-cluster metrics.
func (o Options) clusterOnly() selector { return selector{clusterLabel: o.ClusterLabel} }

// overviewServices filters services by the overview's multi-value
// variables; "All" is the regular expression .* (see multiVariable).
func (o Options) overviewServices() selector {
	return selector{clusterLabel: o.ClusterLabel, service: []string{`namespace=~"$namespace"`, `kind=~"$kind"`}}
}

// oneService selects the service of the detail dashboard. Exact matchers,
// not regular expressions: a name with a dot must not match other names.
func (o Options) oneService() selector {
	return selector{clusterLabel: o.ClusterLabel, service: []string{`namespace="$namespace"`, `kind="$kind"`, `name="$name"`}}
}

// String renders {cluster=~"$cluster",...}. The cluster matcher is a
// regular expression so that "All" (.*) also matches series without the
// label: a Prometheus that scrapes a single cluster usually has none.
func (s selector) String() string {
	matchers := append([]string{fmt.Sprintf(`%s=~"$cluster"`, s.clusterLabel)}, s.service...)
	return "{" + strings.Join(matchers, ", ") + "}"
}

// with adds matchers, such as kind=~"$kind" on a per-node metric that has
// a kind label.
func (s selector) with(matchers ...string) selector {
	s.service = append(append([]string(nil), s.service...), matchers...)
	return s
}

// metric is the series of kube_spread_<name> that the selector picks, one
// per series the exporter publishes however many replicas publish it:
// every replica of the exporter (deploy/ runs two) publishes the same
// figures, and a count or a table over both would show each service twice.
// As in the alert rules, only instance and pod, the labels that tell
// replicas apart, are aggregated away; the cluster label stays.
func (s selector) metric(name string) string {
	return "max without (instance, pod) (kube_spread_" + name + s.String() + ")"
}

// The verdicts of spread/verdict.go, one expression each. They partition
// the services: every service is in exactly one of them, as
// (*spread.Figures).Verdict returns exactly one verdict. All the per-service
// metrics have the same labels, so the default one-to-one matching of
// and/unless pairs a service's series with each other (and keeps the
// cluster label apart, as the alert rules do).

// noReplicasLeft is VerdictNoReplicasLeft, and exactly the condition of
// the alert KubeSpreadNoReplicaSurvivesMaintenance.
func (s selector) noReplicasLeft() string {
	return fmt.Sprintf("(%s > 0 and %s == 0 and %s >= 2)",
		s.metric("replicas_ready"), s.metric("replicas_schedulable"), s.metric("min_nodes"))
}

// singleHomed is VerdictSingleHomed: two or more surviving replicas, all
// on one schedulable node. With every node schedulable it is the condition
// of the alert KubeSpreadSingleHomed.
func (s selector) singleHomed() string {
	return fmt.Sprintf("(%s >= 2 and %s == 1 and %s >= 2)",
		s.metric("replicas_schedulable"), s.metric("schedulable_nodes"), s.metric("min_nodes"))
}

// belowMinNodes is VerdictBelowMinNodes: surviving replicas on fewer nodes
// than the service needs, and not single-homed (which is worse and checked
// first by Verdict). It covers the alerts KubeSpreadMaintenanceBelowMinNodes
// and KubeSpreadBelowMinNodes, which tell apart why it happens.
func (s selector) belowMinNodes() string {
	return fmt.Sprintf("((%s < %s and %s > 0 and %s >= 2) unless %s)",
		s.metric("schedulable_nodes"), s.metric("min_nodes"), s.metric("replicas_schedulable"), s.metric("min_nodes"), s.singleHomed())
}

// atRisk is every service whose verdict is not ok.
func (s selector) atRisk() string {
	return fmt.Sprintf("(%s or %s or %s)", s.noReplicasLeft(), s.singleHomed(), s.belowMinNodes())
}

// ok is VerdictOK: every service (each has a min_nodes series) not at risk.
func (s selector) ok() string {
	return fmt.Sprintf("(%s unless %s)", s.metric("min_nodes"), s.atRisk())
}

// State codes: the verdicts as numbers, so that one series per service can
// carry its verdict and value mappings can name it. Higher is worse, as in
// spread.Verdict.Worse.
const (
	stateOK = iota
	stateBelowMinNodes
	stateSingleHomed
	stateNoReplicasLeft
)

// riskState is the state code of every service at risk.
func (s selector) riskState() string {
	return fmt.Sprintf("(%s * 0 + %d) or (%s * 0 + %d) or (%s * 0 + %d)",
		s.noReplicasLeft(), stateNoReplicasLeft, s.singleHomed(), stateSingleHomed, s.belowMinNodes(), stateBelowMinNodes)
}

// state is the state code of every service, ok ones included: or adds the
// zeroes of min_nodes only for services not already on the left.
func (s selector) state() string {
	return fmt.Sprintf("%s or (%s * 0 + %d)", s.riskState(), s.metric("min_nodes"), stateOK)
}

// countOrZero counts the series of expr, and is 0 rather than empty when
// there are none: an empty stat reads "No data", which on a dashboard for
// maintenance looks like a broken exporter rather than a safe cluster.
func countOrZero(expr string) string { return fmt.Sprintf("count(%s) or vector(0)", expr) }
