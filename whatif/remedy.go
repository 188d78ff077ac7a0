package whatif

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Remedy is the smallest change to a campaign, among those tried, that
// makes every batch safe; each is verified by simulating the whole
// campaign again with it applied.
type Remedy struct {
	// Found: a change makes every batch safe.
	Found bool `json:"found"`
	// Changes are that change: one, or two when the nodes must return
	// and something else change too; empty when none was found.
	Changes []Change `json:"changes"`
	// Batches are the campaign's batches with the changes applied; null
	// when none was found.
	Batches [][]string `json:"batches"`
	// Tried counts the changed campaigns simulated (the last one perhaps
	// cut short by the search's budget).
	Tried int `json:"tried"`
	// Why says what the change does, or why none was found.
	Why string `json:"why"`
}

// Change is one change to a campaign.
type Change struct {
	// Kind is restart, split, reorder or return.
	Kind ChangeKind `json:"kind"`
	// Batch is the batch (from 1, in the order asked) that is split or
	// moved, or before which the workloads restart.
	Batch int `json:"batch"`
	// To is the position a moved batch takes; 0 for other kinds.
	To int `json:"to"`
	// Restart lists the workloads to restart (kubectl rollout restart)
	// as namespace/kind/name; empty for other kinds.
	Restart []string `json:"restart"`
	// Description words the change for a person.
	Description string `json:"description"`
}

// ChangeKind is a kind of change a remedy makes.
type ChangeKind string

// The kinds of change, tried in this order: the first that makes every
// batch safe is the remedy.
const (
	// ChangeRestart restarts the workloads that the first unsafe batch
	// breaks, just before it: the batches stay as they are, one command
	// is added.
	ChangeRestart ChangeKind = "restart"
	// ChangeSplit splits one batch into two halves (its nodes in name
	// order): one batch more.
	ChangeSplit ChangeKind = "split"
	// ChangeReorder moves one batch to another position.
	ChangeReorder ChangeKind = "reorder"
	// ChangeReturn lets the nodes of each batch return after it, when
	// the campaign keeps them away: tried last, alone and then with each
	// change above.
	ChangeReturn ChangeKind = "return"
)

// maxRemedyBatches bounds the work of a remedy search: the batches it
// simulates in all, each changed campaign from the first batch it changes
// up to its first unsafe batch. A changed campaign the budget cannot
// finish counts as not found. The order of the candidates is in
// candidates; then, when nodes stay away, their return alone and with
// each single change.
const maxRemedyBatches = 40

// maxRemedyPodBatches bounds the search by the cluster's size too: a batch
// costs about as much as the cluster has pods (its state is copied, its
// services analysed again), some 45 ms at 150,000 pods, so a cluster of
// more than 75,000 pods gets fewer batches, 20 at 150,000, and a 10-batch
// campaign whose search finds nothing still answers within the issue's
// 2 s there (docs/benchmarks.md). minRemedyBatches keeps a search in the
// largest clusters: the restart and the split of the unsafe batch.
const (
	maxRemedyPodBatches = 3_000_000
	minRemedyBatches    = 4
)

// defaultRemedyBatches asks askCampaign for the search's default bound,
// remedyBudget; a question may ask for another (remedy_batches).
const defaultRemedyBatches = -1

// remedyBudget is the batches a remedy search may simulate by default in
// a cluster of that many pods.
func remedyBudget(pods int) int {
	return max(minRemedyBatches, min(maxRemedyBatches, maxRemedyPodBatches/max(pods, 1)))
}

// findRemedy tries changes to spec, smallest first, simulating at most
// bound batches in all, and returns the first that makes every batch
// safe. states are the original run's states before each batch: a change
// starts simulating at the first batch it changes, and a change after the
// first unsafe batch is not tried (it cannot make that batch safe).
func findRemedy(spec campaignSpec, states []campaignState, campaign *Campaign, bound int, opts spread.Options) *Remedy {
	remedy := &Remedy{Changes: []Change{}}
	budget := bound
	// try simulates one changed campaign from a state; it reports whether
	// the search is over (found, or out of budget).
	try := func(run *campaignRun, candidate candidate, start campaignState, changes ...Change) (*Campaign, bool) {
		if budget == 0 {
			return nil, true
		}
		remedy.Tried++
		run.budget = &budget
		result, err := run.simulate(candidate.spec, candidate.from, start)
		if err != nil || result.Verdict != spread.VerdictOK || run.cut {
			run.cut = false
			return result, budget == 0
		}
		remedy.Found, remedy.Changes, remedy.Batches = true, changes, candidate.spec.batches
		words := make([]string, len(changes))
		for i, change := range changes {
			words[i] = change.Description
		}
		remedy.Why = strings.Join(words, " and ") + " makes every batch safe"
		return result, true
	}
	verify := &campaignRun{opts: opts}
	for _, candidate := range candidates(spec, campaign) {
		if _, over := try(verify, candidate, states[candidate.from], candidate.change); over {
			return remedy.done(spec, bound)
		}
	}
	if !spec.nodesReturn {
		back := spec
		back.nodesReturn = true
		returning := Change{Kind: ChangeReturn, Restart: []string{}, Description: "letting the nodes of each batch return after it"}
		// Simulated from the start, keeping its states for the changes
		// tried with it.
		keep := &campaignRun{opts: opts, keep: true}
		result, over := try(keep, candidate{spec: back}, states[0], returning)
		if over {
			return remedy.done(spec, bound)
		}
		if result != nil && len(result.Unsafe) > 0 && len(keep.states) == len(result.Batches) {
			for _, candidate := range candidates(back, result) {
				if candidate.from >= len(keep.states) {
					continue
				}
				if _, over := try(verify, candidate, keep.states[candidate.from], returning, candidate.change); over {
					return remedy.done(spec, bound)
				}
			}
		}
	}
	return remedy.done(spec, bound)
}

// done words a search that found nothing; bound is the batches it could
// simulate.
func (r *Remedy) done(spec campaignSpec, bound int) *Remedy {
	if r.Found {
		return r
	}
	if bound == 0 {
		r.Why = "no remedy searched: the question asked for none (remedy_batches 0)"
		return r
	}
	r.Why = fmt.Sprintf("none of the %d changed campaigns tried (a restart of the broken workloads just before the first unsafe batch, a split of one batch, a move of one batch", r.Tried)
	if !spec.nodesReturn {
		r.Why += ", the nodes' return alone and with each of these"
	}
	r.Why += fmt.Sprintf("; at most %d batches simulated) makes every batch safe", bound)
	return r
}

// candidate is a changed campaign to simulate.
type candidate struct {
	spec campaignSpec
	// from is the first batch (counted from 0) the change makes
	// different: the batches before it are the original's.
	from   int
	change Change
}

// candidates lists the single changes to try, smallest first: a restart
// of the workloads the first unsafe batch breaks, just before it (an
// earlier restart is followed by batches that can undo the spread it
// makes, and costs more to verify); splits of the first unsafe batch, then of the ones
// before it; moves of the first unsafe batch earlier, then of every
// other batch to every other position.
func candidates(spec campaignSpec, campaign *Campaign) []candidate {
	var out []candidate
	first := campaign.Unsafe[0].FirstBatch
	var workloads []serviceID
	for _, u := range campaign.Unsafe {
		if u.FirstBatch == first && u.Kind != spread.KindService {
			workloads = append(workloads, serviceID{u.Namespace, string(u.Kind), u.Name})
		}
	}
	if len(workloads) > 0 {
		names := make([]string, len(workloads))
		for i, w := range workloads {
			names[i] = w.String()
		}
		// Before the first batch, the restart respreads today's placement:
		// done now, before the campaign starts.
		when := "before batch 1"
		if first >= 2 {
			when = fmt.Sprintf("after batch %d", first-1)
		}
		changed := spec
		changed.restarts = map[int][]serviceID{first: workloads}
		out = append(out, candidate{spec: changed, from: first - 1, change: Change{Kind: ChangeRestart, Batch: first, Restart: names,
			Description: fmt.Sprintf("restarting %s %s", strings.Join(names, ", "), when)}})
	}
	for b := first; b >= 1; b-- {
		nodes := spec.batches[b-1]
		if len(nodes) < 2 {
			continue
		}
		sorted := slices.Sorted(slices.Values(nodes))
		half := (len(sorted) + 1) / 2
		changed := spec
		changed.batches = slices.Concat(spec.batches[:b-1], [][]string{sorted[:half], sorted[half:]}, spec.batches[b:])
		changed.restarts = nil
		out = append(out, candidate{spec: changed, from: b - 1, change: Change{Kind: ChangeSplit, Batch: b, Restart: []string{},
			Description: fmt.Sprintf("splitting batch %d into [%s] and [%s]", b, strings.Join(sorted[:half], ", "), strings.Join(sorted[half:], ", "))}})
	}
	move := func(from, to int) {
		batches := slices.Clone(spec.batches)
		moved := batches[from-1]
		batches = slices.Delete(batches, from-1, from)
		batches = slices.Insert(batches, to-1, moved)
		changed := spec
		changed.batches, changed.restarts = batches, nil
		out = append(out, candidate{spec: changed, from: min(from, to) - 1, change: Change{Kind: ChangeReorder, Batch: from, To: to, Restart: []string{},
			Description: fmt.Sprintf("moving batch %d [%s] to position %d", from, strings.Join(moved, ", "), to)}})
	}
	for to := 1; to < first; to++ {
		move(first, to)
	}
	// A move that changes nothing up to the first unsafe batch leaves it
	// unsafe: only moves that start before or at it are tried.
	for from := 1; from <= len(spec.batches); from++ {
		for to := 1; to <= len(spec.batches); to++ {
			if from != to && from != first && min(from, to) <= first {
				move(from, to)
			}
		}
	}
	return out
}
