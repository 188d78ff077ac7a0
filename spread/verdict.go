package spread

import (
	"fmt"
	"strconv"
	"strings"
)

// Verdict sums up whether a service's spread survives maintenance.
type Verdict string

// The verdicts, from good to bad. They appear in JSON and check output.
const (
	VerdictOK Verdict = "ok"
	// VerdictBelowMinNodes: the replicas that survive run on fewer nodes
	// than the service needs.
	VerdictBelowMinNodes Verdict = "below_min_nodes"
	// VerdictSingleHomed: two or more surviving replicas, all on one node.
	VerdictSingleHomed Verdict = "single_homed"
	// VerdictNoRoom: some replicas survive, but displaced ones find no
	// node to be recreated on (package placement): the service runs short
	// until nodes come back. Only the what-if judges it; worse than
	// single_homed, where every replica still runs, better than
	// no_replicas_left, an outage.
	VerdictNoRoom Verdict = "no_room"
	// VerdictNoReplicasLeft: the service has ready replicas and none of
	// them survives: the mathoid state.
	VerdictNoReplicasLeft Verdict = "no_replicas_left"
)

// severity orders verdicts so the worst of many can be found.
var severity = map[Verdict]int{VerdictOK: 0, VerdictBelowMinNodes: 1, VerdictSingleHomed: 2, VerdictNoRoom: 3, VerdictNoReplicasLeft: 4}

// Worse reports whether v is worse than other.
func (v Verdict) Worse(other Verdict) bool { return severity[v] > severity[other] }

// Verdict judges the replicas that survive maintenance: those on
// schedulable nodes. In the steady state every node is schedulable and the
// verdict judges the spread as it is.
//
// A service that declares itself non-redundant (it needs one node or none)
// is always ok: losing its only replica during maintenance is expected.
// A service with no ready replica is ok too: it is down for reasons this
// project does not watch, and other monitoring pages for it.
func (f *Figures) Verdict() Verdict {
	switch {
	case f.MinNodes <= 1 || f.ReplicasReady == 0:
		return VerdictOK
	case f.ReplicasSchedulable == 0:
		return VerdictNoReplicasLeft
	case f.SchedulableNodes == 1 && f.ReplicasSchedulable >= 2:
		return VerdictSingleHomed
	case f.SchedulableNodes < f.MinNodes:
		return VerdictBelowMinNodes
	}
	return VerdictOK
}

// MinNodesAnnotation lets a Service or workload say how many nodes it needs.
const MinNodesAnnotation = "kube-spread.io/min-nodes"

// maxMinNodes bounds the annotation: no cluster has more nodes than this,
// and a bound keeps absurd values out of the metrics.
const maxMinNodes = 100000

// ParseMinNodes parses the value of the kube-spread.io/min-nodes
// annotation: a whole number from 1 to 100000, surrounding spaces allowed.
func ParseMinNodes(value string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		return 0, fmt.Errorf("annotation %s=%q: not a whole number", MinNodesAnnotation, value)
	}
	if n < 1 || n > maxMinNodes {
		return 0, fmt.Errorf("annotation %s=%q: must be from 1 to %d", MinNodesAnnotation, value, maxMinNodes)
	}
	return n, nil
}
