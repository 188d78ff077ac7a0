package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// WhatIfURL derives the exporter's what-if API URL from its metrics URL
// (see APIURL).
func WhatIfURL(metricsURL string, nodes, selectors []string) (string, error) {
	query := url.Values{}
	for _, n := range nodes {
		query.Add("node", n)
	}
	for _, s := range selectors {
		query.Add("selector", s)
	}
	return APIURL(metricsURL, whatif.PathWhatIf, query)
}

// FetchWhatIf asks the exporter what happens if the nodes went down now.
func FetchWhatIf(ctx context.Context, src Source, nodes, selectors []string) (*whatif.Answer, error) {
	target, err := WhatIfURL(src.URL, nodes, selectors)
	if err != nil {
		return nil, err
	}
	answer, _, err := exchange(ctx, src, target, "application/json", "what-if answer", func(body []byte) (*whatif.Answer, error) {
		var a whatif.Answer
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, err
		}
		if a.Verdict == "" {
			return nil, fmt.Errorf("no verdict in the answer")
		}
		return &a, nil
	})
	return answer, err
}

// WhatIf turns a what-if answer into a plugin result, so a reimage script
// can use the check as a guard: CRITICAL (exit 2) when a service would be
// left with no ready replica, WARNING (exit 1) when one would end up on
// fewer nodes than it needs (single-homed included), OK otherwise. Only the
// services that taking the asked nodes down makes worse count (blocking),
// whether or not those nodes are cordoned already; trouble elsewhere is
// listed but does not change the state.
func WhatIf(answer *whatif.Answer) *nagios.Result {
	counts := map[spread.Verdict]int{}
	var worse []whatif.Service
	for _, s := range answer.Services {
		// An exporter before "blocking" existed answers without
		// verdict_elsewhere: judge as it did, against the verdict now.
		if s.Blocking || (answer.VerdictElsewhere == "" && s.Verdict.Worse(s.VerdictNow)) {
			counts[s.Verdict]++
			worse = append(worse, s)
		}
	}
	state := verdictState(answer.Verdict)

	nodes := strings.Join(answer.Nodes, ", ")
	summary := fmt.Sprintf("taking down %s is safe for every service", nodes)
	if len(worse) > 0 {
		names := make([]string, 0, 3)
		for _, s := range worse {
			if len(names) == 3 {
				names = append(names, fmt.Sprintf("and %d more", len(worse)-3))
				break
			}
			names = append(names, fmt.Sprintf("%s/%s/%s %s", s.Namespace, s.Kind, s.Name, verdictText(s.Verdict)))
		}
		summary = fmt.Sprintf("taking down %s hurts %d services: %s", nodes, len(worse), strings.Join(names, ", "))
	}
	result := &nagios.Result{State: state, Summary: summary}
	for _, verdict := range []spread.Verdict{spread.VerdictNoReplicasLeft, spread.VerdictNoRoom, spread.VerdictSingleHomed, spread.VerdictBelowMinNodes} {
		result.Perfdata = append(result.Perfdata, nagios.Perfdata{Label: string(verdict), Value: float64(counts[verdict]), Min: nagios.Float(0)})
	}
	for _, s := range worse {
		detailState := nagios.Warning
		if s.Verdict == spread.VerdictNoReplicasLeft || s.Verdict == spread.VerdictNoRoom {
			detailState = nagios.Critical
		}
		result.Details = append(result.Details, fmt.Sprintf("%s %s/%s/%s: %s; %d ready replicas on %d schedulable nodes now, %d on %d after, min_nodes %d%s",
			detailState, s.Namespace, s.Kind, s.Name, verdictText(s.Verdict), s.Now.Replicas, s.Now.Nodes, s.After.Replicas, s.After.Nodes, s.MinNodes, placementText(s)))
	}
	for _, n := range answer.AlreadyUnschedulable {
		reasons := make([]string, len(n.Reasons))
		for i, r := range n.Reasons {
			reasons[i] = string(r)
		}
		result.Details = append(result.Details, fmt.Sprintf("counted as gone already: %s (%s)", n.Name, strings.Join(reasons, ", ")))
	}
	if answer.VerdictElsewhere != spread.VerdictOK && answer.VerdictElsewhere != "" {
		result.Details = append(result.Details, fmt.Sprintf("whatever these nodes do, some service is %s: see the services check", answer.VerdictElsewhere))
	}
	return result
}

// placementText sums up where the displaced replicas go, when the
// exporter says (an older one does not).
func placementText(s whatif.Service) string {
	p := s.Placement
	if p.State == "" || p.Displaced == 0 {
		return ""
	}
	text := fmt.Sprintf("; placement %s: %d of %d displaced fit", p.State, p.Placed, p.Displaced)
	if len(p.Reasons) > 0 {
		reasons := make([]string, 0, len(p.Reasons))
		for r, n := range p.Reasons {
			reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
		}
		slices.Sort(reasons)
		text += " (" + strings.Join(reasons, ", ") + ")"
	}
	if p.UnknownReason != "" {
		text += " (" + p.UnknownReason + ")"
	}
	text += fmt.Sprintf(", %d warm nodes", s.WarmNodes)
	for _, b := range s.PDB {
		text += fmt.Sprintf("; PDB %s allows %d evictions, %d needed", b.Name, b.Allowed, b.Needed)
	}
	return text
}

func verdictText(v spread.Verdict) string {
	switch v {
	case spread.VerdictNoRoom:
		return "would have displaced replicas with no room"
	case spread.VerdictNoReplicasLeft:
		return "would have no replica left"
	case spread.VerdictSingleHomed:
		return "would be single-homed"
	case spread.VerdictBelowMinNodes:
		return "would run on fewer nodes than it needs"
	}
	return "ok"
}
