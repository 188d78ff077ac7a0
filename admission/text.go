package admission

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// What kubectl prints: the API server passes each warning on as a Warning
// header, truncating any past 256 characters once the warnings of a
// response pass 4,096 in all (k8s.io/apiserver's warning recorder), and
// the API asks for 120 where possible. So: one short line per service, at
// most maxServiceLines of them and "and N more", every line cut to
// maxLineRunes.
const (
	maxServiceLines = 10
	maxLineRunes    = 250
	// maxNameRunes bounds a namespace, name or node in a line: names may
	// be 253 characters long, and several share a line.
	maxNameRunes = 63
	// maxOutNamed bounds the nodes out of service named in the header.
	maxOutNamed = 3
)

// report is what the webhook says about one change it judged.
type report struct {
	node string
	// change are the reasons the change takes the node out of service.
	change []spread.Reason
	// out are the other nodes out of service, which the what-if counted
	// as gone.
	out []string
	// hurt are the services the change makes worse, worst first.
	hurt []whatif.Service
}

func newReport(node string, change []spread.Reason, answer *whatif.Answer) *report {
	r := &report{node: node, change: change}
	for _, n := range answer.AlreadyUnschedulable {
		if n.Name != node {
			r.out = append(r.out, n.Name)
		}
	}
	for _, s := range answer.Services {
		// Blocking: worse with the node gone than with it in service;
		// trouble elsewhere is not this change's.
		if s.Blocking && s.Verdict != spread.VerdictOK {
			r.hurt = append(r.hurt, s)
		}
	}
	// The answer lists services by namespace, kind and name; the worst
	// come first, so that "and N more" leaves out the mildest.
	slices.SortStableFunc(r.hurt, func(a, b whatif.Service) int {
		switch {
		case a.Verdict.Worse(b.Verdict):
			return -1
		case b.Verdict.Worse(a.Verdict):
			return 1
		}
		return 0
	})
	return r
}

// leavesNoReplica reports whether some service would have no replica
// left: what deny mode refuses. no_room is a model's prediction about
// replicas that are gone anyway, and single_homed and below_min_nodes
// leave the service up: they are warnings in either mode.
func (r *report) leavesNoReplica() bool {
	return slices.ContainsFunc(r.hurt, func(s whatif.Service) bool { return s.Verdict == spread.VerdictNoReplicasLeft })
}

// warnings are the lines kubectl prints, one per service after a header.
func (r *report) warnings() []string {
	header := fmt.Sprintf("kube-spread-exporter: taking %s out of service (%s) hurts %d %s", name(r.node), reasons(r.change), len(r.hurt), plural(len(r.hurt), "service", "services"))
	if len(r.out) > 0 {
		header += ", with " + nodeList(r.out) + " out of service already"
	}
	lines := []string{header + ":"}
	for i, s := range r.hurt {
		if i == maxServiceLines {
			more := len(r.hurt) - maxServiceLines
			lines = append(lines, fmt.Sprintf("and %d more %s: GET /api/v1/whatif?node=%s on the exporter lists them all", more, plural(more, "service", "services"), name(r.node)))
			break
		}
		lines = append(lines, serviceLine(s))
	}
	for i := range lines {
		lines[i] = cut(lines[i])
	}
	return lines
}

// denial is the message of a refusal: the warnings, and how to override.
func (r *report) denial() string {
	lines := r.warnings()
	lines[0] = "refused by " + lines[0]
	lines = append(lines, cut(fmt.Sprintf("in an emergency, set the annotation first: kubectl annotate node %s %s='<why>'", name(r.node), OverrideAnnotation)))
	return strings.Join(lines, "\n")
}

// serviceList names the hurt services for a log line.
func (r *report) serviceList() string {
	ids := make([]string, 0, min(len(r.hurt), maxServiceLines)+1)
	for i, s := range r.hurt {
		if i == maxServiceLines {
			ids = append(ids, fmt.Sprintf("and %d more", len(r.hurt)-maxServiceLines))
			break
		}
		ids = append(ids, serviceID(s)+" "+string(s.Verdict))
	}
	return strings.Join(ids, ", ")
}

func serviceLine(s whatif.Service) string {
	figures := fmt.Sprintf("%d ready %s on %d %s in service now, %d on %d after (min_nodes %d)",
		s.Now.Replicas, plural(s.Now.Replicas, "replica", "replicas"), s.Now.Nodes, plural(s.Now.Nodes, "node", "nodes"),
		s.After.Replicas, s.After.Nodes, s.MinNodes)
	switch s.Verdict {
	case spread.VerdictNoReplicasLeft:
		return fmt.Sprintf("%s would have no replica left: %s", serviceID(s), figures)
	case spread.VerdictNoRoom:
		return fmt.Sprintf("%s: %d of %d displaced replicas would find no room on the nodes in service; %s",
			serviceID(s), s.Placement.NoRoom(), s.Placement.Displaced, figures)
	case spread.VerdictSingleHomed:
		return fmt.Sprintf("%s would be single-homed: %s", serviceID(s), figures)
	default:
		return fmt.Sprintf("%s would run on fewer nodes than it needs: %s", serviceID(s), figures)
	}
}

func serviceID(s whatif.Service) string {
	return name(s.Namespace) + "/" + string(s.Kind) + "/" + name(s.Name)
}

// notJudged is the one warning when the what-if could not answer: the
// operator learns that no check took place.
func notJudged(node string, change []spread.Reason, err error) string {
	return cut(fmt.Sprintf("kube-spread-exporter could not judge taking %s out of service (%s): %s; check its services before draining it",
		name(node), reasons(change), printable(err.Error())))
}

// overridden is the warning added when the override annotation admits a
// change deny mode would refuse.
func overridden(node, reason string) string {
	return cut(fmt.Sprintf("admitted by the annotation %s=%s on %s; remove it when the maintenance is done",
		OverrideAnnotation, quote(reason), name(node)))
}

func reasons(rs []spread.Reason) string {
	words := make([]string, len(rs))
	for i, r := range rs {
		words[i] = string(r)
	}
	return strings.Join(words, ", ")
}

func nodeList(nodes []string) string {
	named := make([]string, 0, maxOutNamed+1)
	for i, n := range nodes {
		if i == maxOutNamed {
			named = append(named, fmt.Sprintf("%d more", len(nodes)-maxOutNamed))
			break
		}
		named = append(named, name(n))
	}
	if len(named) == 1 {
		return named[0]
	}
	return strings.Join(named[:len(named)-1], ", ") + " and " + named[len(named)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// name makes a Kubernetes name, namespace or node fit a warning line:
// printable and at most maxNameRunes runes. Real names are printable
// already; a request posted to the webhook directly may carry anything.
func name(s string) string {
	s = printable(s)
	if utf8.RuneCountInString(s) <= maxNameRunes {
		return s
	}
	return string([]rune(s)[:maxNameRunes-3]) + "..."
}

// quote quotes the free text of an annotation for a warning or a log
// line, cut to 64 bytes.
func quote(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cutAt := limit
	for cutAt > 0 && !utf8.RuneStart(s[cutAt]) {
		cutAt--
	}
	return strconv.Quote(s[:cutAt]) + "..."
}

// printable replaces what a header or a terminal should not get.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// cut bounds a line at maxLineRunes runes.
func cut(line string) string {
	if utf8.RuneCountInString(line) <= maxLineRunes {
		return line
	}
	return string([]rune(line)[:maxLineRunes-3]) + "..."
}
