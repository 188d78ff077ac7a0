package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// CampaignURL is the campaign API's URL next to the metrics URL, asking
// about the batches in order; nodesReturn false keeps reimaged nodes away;
// remedyBatches bounds the remedy search, nil leaving it to the exporter.
// Any value given is sent, a negative one too: the exporter judges it
// (400), as it judges one too large, so the check never drops a bound the
// user asked for and searches by the default instead.
func CampaignURL(metricsURL string, batches [][]string, nodesReturn bool, remedyBatches *int) (string, error) {
	query := url.Values{}
	for _, batch := range batches {
		query.Add("batch", strings.Join(batch, ","))
	}
	query.Set("nodes_return", strconv.FormatBool(nodesReturn))
	if remedyBatches != nil {
		query.Set("remedy_batches", strconv.Itoa(*remedyBatches))
	}
	return APIURL(metricsURL, whatif.PathCampaign, query)
}

// FetchCampaign asks the exporter what a whole campaign does.
func FetchCampaign(ctx context.Context, src Source, batches [][]string, nodesReturn bool, remedyBatches *int) (*whatif.Campaign, error) {
	target, err := CampaignURL(src.URL, batches, nodesReturn, remedyBatches)
	if err != nil {
		return nil, err
	}
	answer, _, err := exchange(ctx, src, target, "application/json", "campaign answer", func(body []byte) (*whatif.Campaign, error) {
		var c whatif.Campaign
		if err := json.Unmarshal(body, &c); err != nil {
			return nil, err
		}
		if c.Verdict == "" {
			return nil, errors.New("no verdict in the answer")
		}
		return &c, nil
	})
	return answer, err
}

// Campaign turns a campaign answer into a plugin result, the guard of a
// reimage cookbook before its first batch: CRITICAL (exit 2) when some
// batch leaves a service with no replica or with displaced replicas that
// find no room, WARNING (exit 1) when one leaves a service on fewer nodes
// than it needs, OK otherwise, as the whatif command judges one batch.
// The first line says which batch first breaks which service and why,
// and the remedy the exporter found.
func Campaign(answer *whatif.Campaign) *nagios.Result {
	state := verdictState(answer.Verdict)
	summary := fmt.Sprintf("the campaign of %d batches is safe for every service", len(answer.Batches))
	if first := answer.FirstUnsafe; first != nil {
		summary = fmt.Sprintf("%s/%s/%s %s: %s", first.Namespace, first.Kind, first.Name, verdictText(first.Verdict), first.Why)
		switch r := answer.Remedy; {
		case r != nil && r.Found:
			summary += "; remedy: " + r.Why
		case r != nil && r.Tried == 0:
			// None searched (remedy_batches 0), or none to try: why says.
			summary += "; no remedy: " + r.Why
		case r != nil:
			summary += fmt.Sprintf("; no remedy found in %d changed campaigns", r.Tried)
		}
	}
	result := &nagios.Result{State: state, Summary: summary}
	counts := map[spread.Verdict]int{}
	for _, u := range answer.Unsafe {
		counts[u.Verdict]++
	}
	for _, verdict := range []spread.Verdict{spread.VerdictNoReplicasLeft, spread.VerdictNoRoom, spread.VerdictSingleHomed, spread.VerdictBelowMinNodes} {
		result.Perfdata = append(result.Perfdata, nagios.Perfdata{Label: string(verdict), Value: float64(counts[verdict]), Min: nagios.Float(0)})
	}
	firstBatch := 0
	if answer.FirstUnsafe != nil {
		firstBatch = answer.FirstUnsafe.Batch
	}
	result.Perfdata = append(result.Perfdata, nagios.Perfdata{Label: "first_unsafe_batch", Value: float64(firstBatch), Min: nagios.Float(0)})
	for _, b := range answer.Batches {
		line := fmt.Sprintf("%s batch %d (%s): %s", verdictState(b.Verdict), b.Index, strings.Join(b.Nodes, ", "), b.Verdict)
		var hurt []string
		for _, s := range b.Services {
			if s.Blocking {
				hurt = append(hurt, fmt.Sprintf("%s/%s/%s %s", s.Namespace, s.Kind, s.Name, verdictText(s.Verdict)))
			}
		}
		if len(hurt) > 0 {
			line += "; " + strings.Join(hurt, ", ")
		}
		result.Details = append(result.Details, line)
	}
	if r := answer.Remedy; r != nil && r.Found {
		// A split or a move changes the batches: give them as the
		// command takes them, to check the remedied campaign.
		for _, change := range r.Changes {
			if change.Kind == whatif.ChangeSplit || change.Kind == whatif.ChangeReorder {
				batches := make([]string, len(r.Batches))
				for i, b := range r.Batches {
					batches[i] = "--batch " + strings.Join(b, ",")
				}
				result.Details = append(result.Details, "remedied campaign: "+strings.Join(batches, " "))
			}
		}
	} else if r != nil {
		result.Details = append(result.Details, "no remedy: "+r.Why)
	}
	return result
}

// verdictState maps a verdict to the plugin state of the whatif and campaign
// commands.
func verdictState(v spread.Verdict) nagios.State {
	switch v {
	case spread.VerdictNoReplicasLeft, spread.VerdictNoRoom:
		// no_room: replicas displaced with nowhere to go stay Pending
		// until nodes come back, however long the maintenance takes.
		return nagios.Critical
	case spread.VerdictSingleHomed, spread.VerdictBelowMinNodes:
		return nagios.Warning
	}
	return nagios.OK
}
