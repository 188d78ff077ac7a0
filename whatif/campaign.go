package whatif

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/jsonapi"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// A campaign is a plan whose batches are judged in turn on the cluster as
// the earlier batches leave it: the pods they displace are placed by the
// placement model (filters, then kube-scheduler's default scores), and
// nothing rebalances afterwards. That is how the 2018 mathoid outage
// happened: the reimage of 2003 and 2004 moved every mathoid replica onto
// 2001 and 2002, and only then did the batch {2001, 2002} become fatal.

// Campaign is the answer for a whole maintenance campaign.
type Campaign struct {
	// NodesReturn: the nodes of a batch come back after it, schedulable,
	// empty and without images (a reimage); false: they stay out of
	// service until the campaign ends.
	NodesReturn bool `json:"nodes_return"`
	// Verdict is the worst verdict of any batch.
	Verdict spread.Verdict  `json:"verdict"`
	Batches []CampaignBatch `json:"batches"`
	// Unsafe lists, for each service that some batch breaks, the first
	// batch that does.
	Unsafe []UnsafeService `json:"unsafe"`
	// FirstUnsafe explains the first batch that breaks a service; null
	// when every batch is safe.
	FirstUnsafe *FirstUnsafe `json:"first_unsafe"`
	// Remedy is the smallest change found that makes every batch safe,
	// or why none was; null when every batch is safe already.
	Remedy *Remedy `json:"remedy"`
}

// CampaignBatch is one batch of a campaign, judged on the predicted
// placement before it.
type CampaignBatch struct {
	// Index counts batches from 1, in the order asked.
	Index   int            `json:"index"`
	Nodes   []string       `json:"nodes"`
	Verdict spread.Verdict `json:"verdict"`
	// Away lists the nodes of earlier batches that are still out of
	// service (nodes_return false).
	Away []string `json:"away"`
	// Restarted lists the workloads restarted just before this batch (a
	// remedy being verified), as namespace/kind/name.
	Restarted []string `json:"restarted"`
	// Services lists the services with replicas on the batch's nodes in
	// the predicted placement, and those the batch makes worse.
	Services []CampaignService `json:"services"`
}

// CampaignService is a service's what-if answer for one batch, with the
// predicted placement it is judged on.
type CampaignService struct {
	Service
	// Before counts the service's ready replicas per node in the
	// predicted placement before the batch, by node name.
	Before []NodeReplicas `json:"before"`
}

// NodeReplicas is a number of ready replicas on one node.
type NodeReplicas struct {
	Node     string `json:"node"`
	Replicas int    `json:"replicas"`
}

// FirstUnsafe is the first batch that breaks a service, and why in words.
type FirstUnsafe struct {
	Batch     int            `json:"batch"`
	Namespace string         `json:"namespace"`
	Kind      spread.Kind    `json:"kind"`
	Name      string         `json:"name"`
	Verdict   spread.Verdict `json:"verdict"`
	Why       string         `json:"why"`
}

// campaignSpec is a campaign to simulate: its batches, whether nodes
// return, and the workloads to restart before some batches.
type campaignSpec struct {
	batches     [][]string
	nodesReturn bool
	// restarts maps a batch index (from 1) to the workloads restarted
	// just before it.
	restarts map[int][]serviceID
}

// serviceID names a service: namespace, kind, name.
type serviceID [3]string

func idOf(s *spread.Service) serviceID { return serviceID{s.Namespace, string(s.Kind), s.Name} }

func (id serviceID) String() string { return strings.Join(id[:], "/") }

// AskCampaign simulates a campaign of ordered batches and, when a batch
// is unsafe, searches for the smallest remedy (see remedy.go). It returns
// the errors of AskPlan, spread.ErrNoPlacement without placement input,
// and an error when a node is in two batches.
func AskCampaign(c *spread.Cluster, batches [][]string, nodesReturn bool, opts spread.Options) (*Campaign, error) {
	if c.Placement != nil {
		// Indexed, the cluster hands its index on to each predicted state,
		// moved by the pods that moved (placement.Result.Settle), so that
		// no state walks every pod.
		c.Placement.Prepare()
	}
	return askCampaign(c, nil, batches, nodesReturn, defaultRemedyBatches, opts)
}

// askCampaign is AskCampaign with the analysis of c, now, done already
// (nil: not yet), and the remedy search bounded to remedyBatches batches
// (defaultRemedyBatches: by the cluster's size, remedyBudget). It does not
// index c: the handler's snapshot is indexed already, as every what-if
// question shares it.
func askCampaign(c *spread.Cluster, now *spread.Report, batches [][]string, nodesReturn bool, remedyBatches int, opts spread.Options) (*Campaign, error) {
	if len(batches) == 0 {
		return nil, spread.ErrNoNodes
	}
	if c.Placement == nil {
		return nil, spread.ErrNoPlacement
	}
	seen := make(map[string]int)
	for i, batch := range batches {
		for _, node := range batch {
			if first, ok := seen[node]; ok && first != i+1 {
				return nil, fmt.Errorf("node %s is in batches %d and %d: a campaign takes each node once", jsonapi.Shorten(node), first, i+1)
			}
			seen[node] = i + 1
		}
	}
	spec := campaignSpec{batches: batches, nodesReturn: nodesReturn}
	run := &campaignRun{opts: opts, detail: true, keep: true}
	campaign, err := run.simulate(spec, 0, campaignState{cluster: c, report: now})
	if err != nil {
		return nil, err
	}
	if campaign.Verdict != spread.VerdictOK {
		if remedyBatches == defaultRemedyBatches {
			remedyBatches = remedyBudget(len(c.Placement.Pods))
		}
		campaign.Remedy = findRemedy(spec, run.states, campaign, remedyBatches, opts)
	}
	return campaign, nil
}

// simulateCampaign judges every batch of spec on the cluster the earlier
// batches leave, with the answer's services and words.
func simulateCampaign(c *spread.Cluster, spec campaignSpec, opts spread.Options) (*Campaign, error) {
	return (&campaignRun{opts: opts, detail: true}).simulate(spec, 0, campaignState{cluster: c})
}

// campaignRun is one simulation of a campaign.
type campaignRun struct {
	opts spread.Options
	// detail asks for the services and words of the answer. Without it
	// (a remedy's verification) the run needs the verdicts only, and
	// stops at the first unsafe batch.
	detail bool
	// keep asks for the state before every batch in states: a remedy
	// that changes nothing before batch k starts from the state before
	// it instead of simulating the batches before again.
	keep   bool
	states []campaignState
	// budget, when set, counts down the batches a remedy search may
	// still simulate; cut says the budget ended this run early.
	budget *int
	cut    bool
}

// campaignState is the predicted cluster before a batch, and the nodes
// of earlier batches still away then. report is the cluster's analysis
// when the caller has it (the handler's snapshot), else nil. The states a
// remedy search starts from keep none: ten reports of 150,000 pods would
// hold some 35 MB more while the search runs, for no time measured.
type campaignState struct {
	cluster *spread.Cluster
	away    []string
	report  *spread.Report
}

// simulate judges the batches of spec from index from (counted from 0)
// on, starting from the state before that batch; the batches before it
// are the caller's, known to be safe, and left out of the answer.
func (r *campaignRun) simulate(spec campaignSpec, from int, start campaignState) (*Campaign, error) {
	campaign := &Campaign{NodesReturn: spec.nodesReturn, Verdict: spread.VerdictOK, Batches: []CampaignBatch{}, Unsafe: []UnsafeService{}}
	state, away := start.cluster, start.away
	var first *spread.Report
	// previous is the report of the state before the last batch (the
	// start's own, when known), and changed that batch's nodes: the next
	// state is analysed from it, only where the batch moved pods or
	// changed nodes (or a restart did).
	previous := start.report
	var changed []string
	seen := make(map[serviceID]bool)
	for i := from; i < len(spec.batches); i++ {
		nodes, index := spec.batches[i], i+1
		if r.budget != nil {
			if *r.budget == 0 {
				r.cut = true
				break
			}
			*r.budget--
		}
		if r.keep {
			r.states = append(r.states, campaignState{cluster: state, away: away})
		}
		batch := CampaignBatch{Index: index, Away: append([]string{}, away...), Restarted: []string{}, Services: []CampaignService{}}
		if restart := spec.restarts[index]; len(restart) > 0 {
			var services []*spread.Service
			for _, svc := range state.Services {
				if containsID(restart, idOf(svc)) {
					services = append(services, svc)
				}
			}
			next, err := state.AfterRestart(services)
			if err != nil {
				return nil, fmt.Errorf("restart before batch %d: %w", index, err)
			}
			state = next
			for _, id := range restart {
				batch.Restarted = append(batch.Restarted, id.String())
			}
		}
		var now *spread.Report
		if previous == nil {
			now = spread.Analyze(state, r.opts)
		} else {
			now = spread.ReanalyzeAfter(state, previous, changed, r.opts)
		}
		if first == nil {
			first = now
		}
		answer, placed, err := askPlaced(state, now, nodes, r.opts, detail(r.detail))
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", index, err)
		}
		batch.Nodes, batch.Verdict = answer.Nodes, answer.Verdict
		if batch.Verdict.Worse(campaign.Verdict) {
			campaign.Verdict = batch.Verdict
		}
		for _, s := range answer.Services {
			id := serviceID{s.Namespace, string(s.Kind), s.Name}
			if s.Blocking && !seen[id] {
				seen[id] = true
				campaign.Unsafe = append(campaign.Unsafe, UnsafeService{Namespace: s.Namespace, Kind: s.Kind, Name: s.Name, FirstBatch: index, Verdict: s.Verdict})
				if campaign.FirstUnsafe == nil && r.detail {
					campaign.FirstUnsafe = &FirstUnsafe{Batch: index, Namespace: s.Namespace, Kind: s.Kind, Name: s.Name, Verdict: s.Verdict,
						Why: whyUnsafe(index, s, nodeReplicas(figuresOf(now, id)), nodeReplicas(figuresOf(first, id)))}
				}
			}
			if !r.detail || !s.Blocking && s.Now.Replicas == s.After.Replicas {
				continue
			}
			batch.Services = append(batch.Services, CampaignService{Service: s, Before: nodeReplicas(figuresOf(now, id))})
		}
		campaign.Batches = append(campaign.Batches, batch)
		if index == len(spec.batches) || !r.detail && campaign.Verdict != spread.VerdictOK {
			break
		}
		state = state.AfterDisplacement(placed, nodes, spec.nodesReturn)
		previous, changed = now, nodes
		if !spec.nodesReturn {
			away = append(slices.Clip(away), answer.Nodes...)
		}
	}
	return campaign, nil
}

func containsID(ids []serviceID, id serviceID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// figuresOf finds a service's figures in a report, nil when it has none;
// a report lists its services by namespace, kind and name.
func figuresOf(r *spread.Report, id serviceID) *spread.Figures {
	i, found := slices.BinarySearchFunc(r.Services, id, func(f spread.Figures, id serviceID) int {
		return cmp.Or(strings.Compare(f.Service.Namespace, id[0]), strings.Compare(string(f.Service.Kind), id[1]), strings.Compare(f.Service.Name, id[2]))
	})
	if !found {
		return nil
	}
	return &r.Services[i]
}

// nodeReplicas lists a service's ready replicas per node; empty for an
// unknown service.
func nodeReplicas(f *spread.Figures) []NodeReplicas {
	out := []NodeReplicas{}
	if f == nil {
		return out
	}
	for _, n := range f.NodeReplicas {
		out = append(out, NodeReplicas{Node: n.Node, Replicas: n.Count})
	}
	return out
}

// whyUnsafe says in words why batch index breaks service s, given its
// predicted placement before the batch and at the start of the campaign:
// "batches 1–2 move all 4 mathoid replicas onto kubernetes2001 and
// kubernetes2002, and batch 3 takes them down".
func whyUnsafe(index int, s Service, before, start []NodeReplicas) string {
	total, nodes := 0, make([]string, 0, len(before))
	for _, n := range before {
		total += n.Replicas
		nodes = append(nodes, n.Node)
	}
	moved := index > 1 && !equalPlacement(before, start)
	switch {
	case s.Verdict == spread.VerdictNoReplicasLeft && moved:
		return fmt.Sprintf("%s all %d %s replicas onto %s, and batch %d takes them down", earlierBatches(index), total, s.Name, wordList(nodes), index)
	case s.Verdict == spread.VerdictNoReplicasLeft:
		return fmt.Sprintf("batch %d takes down every node holding the %d %s replicas (%s)", index, total, s.Name, wordList(nodes))
	}
	var why string
	switch s.Verdict {
	case spread.VerdictSingleHomed:
		why = fmt.Sprintf("batch %d leaves all %s of %s on one node", index, plural(s.After.Replicas, "surviving replica"), s.Name)
	case spread.VerdictNoRoom:
		why = fmt.Sprintf("batch %d leaves %s of %s with no node to go to", index, plural(s.Placement.NoRoom(), "displaced replica"), s.Name)
	default:
		why = fmt.Sprintf("batch %d leaves %s of %s on %s, fewer than the %d it needs", index, plural(s.After.Replicas, "replica"), s.Name, plural(s.After.Nodes, "node"), s.MinNodes)
	}
	if moved {
		why = fmt.Sprintf("%s the %d %s replicas onto %s; ", earlierBatches(index), total, s.Name, wordList(nodes)) + why
	}
	return why
}

// plural writes a count and a noun, "1 replica", "2 replicas".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// earlierBatches names the batches before index with their verb.
func earlierBatches(index int) string {
	if index == 2 {
		return "batch 1 moves"
	}
	return fmt.Sprintf("batches 1–%d move", index-1)
}

func equalPlacement(a, b []NodeReplicas) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wordList joins names as "a", "a and b", "a, b and c".
func wordList(names []string) string {
	switch len(names) {
	case 0:
		return "no node"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
