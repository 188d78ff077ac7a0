// Package whatif answers the preflight question of maintenance tooling:
// "what happens to every service if these nodes go down now?", and, for a
// rolling reimage, "which batch first breaks which service?".
//
// It runs the same analysis as the metrics (spread.Analyze) on the same
// cached cluster, with the asked nodes marked unschedulable. Nodes that are
// already unschedulable (cordoned, NotReady, tainted, labelled for
// maintenance, being deleted) count as gone too, and the answer says so.
package whatif

import (
	"fmt"
	"slices"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Answer is the what-if answer for one set of nodes.
type Answer struct {
	// Nodes are the nodes asked about, sorted.
	Nodes []string `json:"nodes"`
	// AlreadyUnschedulable lists nodes that are going away anyway and are
	// treated as gone in the answer. Asked nodes are among them when they
	// are cordoned, tainted or labelled already.
	AlreadyUnschedulable []NodeState `json:"already_unschedulable"`
	// Verdict is the worst verdict of the services that taking the asked
	// nodes down makes worse, judged against the asked nodes in service
	// (whether or not they are already unschedulable): what taking them
	// down would do. A guard script gates on it.
	Verdict spread.Verdict `json:"verdict"`
	// VerdictNow is the worst verdict of any service as the cluster is now
	// (already unschedulable nodes gone, asked ones included): trouble
	// that exists whatever the answer.
	VerdictNow spread.Verdict `json:"verdict_now"`
	// VerdictElsewhere is the worst verdict, with the asked nodes gone, of
	// the services that taking them down does not make worse: trouble
	// elsewhere that must not block this batch for ever.
	VerdictElsewhere spread.Verdict `json:"verdict_elsewhere"`
	// Services lists the services with ready replicas on a node that is
	// gone (asked or already unschedulable), and any service whose verdict
	// is not ok, sorted by namespace, kind, name.
	Services []Service `json:"services"`
}

// NodeState is a node and why it is unschedulable.
type NodeState struct {
	Name    string          `json:"name"`
	Reasons []spread.Reason `json:"reasons"`
}

// Service is one service's figures now and after the nodes are gone.
type Service struct {
	Namespace string      `json:"namespace"`
	Kind      spread.Kind `json:"kind"`
	Name      string      `json:"name"`
	MinNodes  int         `json:"min_nodes"`
	Now       Figures     `json:"now"`
	After     Figures     `json:"after"`
	// VerdictNow judges the spread as the cluster is now (already
	// unschedulable nodes gone); Verdict with the asked nodes gone too.
	VerdictNow spread.Verdict `json:"verdict_now"`
	Verdict    spread.Verdict `json:"verdict"`
	// Blocking is true when taking the asked nodes down makes this
	// service worse than it is with them in service: the services that
	// make up the answer's Verdict.
	Blocking bool `json:"blocking"`
	// Placement says whether the replicas displaced from the gone nodes
	// find room on the nodes that stay (package placement).
	Placement placement.Summary `json:"placement"`
	// WarmNodes counts the nodes that stay, could take a replica, and
	// hold all of the service's images already: 0 means every replacement
	// pulls its images first, a slow recovery.
	WarmNodes int `json:"warm_nodes"`
	// PDB lists the PodDisruptionBudgets covering the service's pods that
	// the evictions from the gone nodes would exceed: a drain would block.
	PDB []placement.PDBExceeded `json:"pdb"`
}

// Figures are the replicas that survive, and how they are spread.
type Figures struct {
	// Replicas counts ready replicas on nodes that stay.
	Replicas int `json:"replicas"`
	// Nodes counts the nodes that stay and hold ready replicas.
	Nodes int `json:"nodes"`
	// TopologyDomains counts, per topology key, the domains of those nodes.
	TopologyDomains map[string]int `json:"topology_domains"`
	// ConcentrationRatio is the largest share of those replicas on one
	// node; 0 when none is left.
	ConcentrationRatio float64 `json:"concentration_ratio"`
}

// Ask answers for the named nodes. It returns spread.ErrNoNodes or a
// *spread.UnknownNodesError when the names are empty or unknown.
//
// Three clusters are analysed: now (as cached), in service (the asked
// nodes schedulable, whatever they are now) and gone (the asked nodes
// unschedulable). A service is blocking when it is worse gone than in
// service. Judging against "in service" rather than "now" is what makes
// the answer the same for tooling that cordons or labels a batch first
// and asks second (kubectl drain cordons before anything else): asking
// about nodes judges taking those nodes down.
func Ask(c *spread.Cluster, nodes []string, opts spread.Options) (*Answer, error) {
	return ask(c, spread.Analyze(c, opts), nodes, opts)
}

// ask is Ask with the analysis of c done already: the handler shares it
// between the questions asked while the caches are unchanged.
func ask(c *spread.Cluster, now *spread.Report, nodes []string, opts spread.Options) (*Answer, error) {
	answer, _, err := askPlaced(c, now, nodes, opts, withDetail)
	return answer, err
}

// detail says whether an answer lists each service's warm nodes and
// budgets: a remedy's verification reads only the verdicts, which neither
// changes, and skips them (a tenth of each batch at 150,000 pods).
type detail bool

const (
	withDetail   detail = true
	verdictsOnly detail = false
)

// askPlaced is ask that also returns where the displaced replicas go with
// the asked nodes gone (nil without placement input): a campaign moves
// them there for its next batch.
func askPlaced(c *spread.Cluster, now *spread.Report, nodes []string, opts spread.Options, d detail) (*Answer, *spread.Displacement, error) {
	gone, err := c.WithNodesGone(nodes)
	if err != nil {
		return nil, nil, err
	}
	// Only the services on the asked nodes can change: the others keep
	// the figures of now (spread.Reanalyze).
	after := spread.Reanalyze(gone, now, nodes, opts)
	inService, upCluster := now, c
	if anyUnschedulable(c, nodes) {
		up, err := c.WithNodesInService(nodes)
		if err != nil {
			return nil, nil, err
		}
		inService, upCluster = spread.Reanalyze(up, now, nodes, opts), up
	}
	// Where the displaced replicas go, with the asked nodes gone and, for
	// judging what taking them down changes, with them in service (only
	// when some other node is unschedulable: else nothing is displaced).
	placedGone := spread.PlaceDisplaced(c.Placement, gone)
	var placedUp *spread.Displacement
	if anyGone(upCluster) {
		placedUp = spread.PlaceDisplaced(c.Placement, upCluster)
	}

	asked := slices.Clone(nodes)
	slices.Sort(asked)
	answer := &Answer{
		Nodes: slices.Compact(asked), AlreadyUnschedulable: []NodeState{}, Services: []Service{},
		Verdict: spread.VerdictOK, VerdictNow: spread.VerdictOK, VerdictElsewhere: spread.VerdictOK,
	}
	goneNodes := slices.Clone(nodes)
	for _, n := range now.Nodes {
		if !n.Node.Schedulable() {
			answer.AlreadyUnschedulable = append(answer.AlreadyUnschedulable, NodeState{Name: n.Node.Name, Reasons: n.Node.Unschedulable})
			goneNodes = append(goneNodes, n.Node.Name)
		}
	}
	// Displaced pods are on the nodes gone with the asked ones: only the
	// services there can have one.
	onGone := make([]bool, len(now.Services))
	for _, i := range now.ServicesOn(goneNodes) {
		onGone[i] = true
	}
	// Analyze sorts services the same way for every cluster, and the three
	// share their services, so index i is the same service in each report.
	var listed []*spread.Service
	for i := range after.Services {
		before, up, f := &now.Services[i], &inService.Services[i], &after.Services[i]
		verdictNow, verdict, verdictUp := before.Verdict(), f.Verdict(), up.Verdict()
		// A service without a displaced pod fits: no need to ask.
		summary := placement.Summary{State: placement.StateFit} // Reasons made when listed
		if placedGone == nil || onGone[i] && placedGone.HasDisplaced(f.Service) {
			summary = placementSummary(placedGone, f.Service)
			verdict = worst(verdict, placementVerdict(summary, f))
		}
		if onGone[i] && placedUp.HasDisplaced(f.Service) {
			verdictUp = worst(verdictUp, placementVerdict(placementSummary(placedUp, f.Service), up))
		}
		blocking := verdict.Worse(verdictUp)
		answer.VerdictNow = worst(answer.VerdictNow, verdictNow)
		if blocking {
			answer.Verdict = worst(answer.Verdict, verdict)
		} else {
			answer.VerdictElsewhere = worst(answer.VerdictElsewhere, verdict)
		}
		// Replicas on gone nodes are the ones no longer schedulable.
		if verdict == spread.VerdictOK && f.ReplicasSchedulable == f.ReplicasReady {
			continue
		}
		answer.Services = append(answer.Services, Service{
			Namespace: f.Service.Namespace, Kind: f.Service.Kind, Name: f.Service.Name, MinNodes: f.MinNodes,
			Now: surviving(c, before), After: surviving(gone, f),
			VerdictNow: verdictNow, Verdict: verdict, Blocking: blocking,
			Placement: withReasons(summary),
		})
		listed = append(listed, f.Service)
	}
	if d == withDetail {
		addPlacement(placedGone, answer, listed)
	}
	return answer, placedGone, nil
}

// withReasons gives a summary without reasons an empty map: the answer
// says "reasons": {}, never null. Made only for the services listed, not
// for the 30,000 a question looks at.
func withReasons(s placement.Summary) placement.Summary {
	if s.Reasons == nil {
		s.Reasons = map[placement.Reason]int{}
	}
	return s
}

// anyGone reports whether some node of c is unschedulable.
func anyGone(c *spread.Cluster) bool {
	for _, n := range c.Nodes {
		if !n.Schedulable() {
			return true
		}
	}
	return false
}

// anyUnschedulable reports whether one of the named nodes is unschedulable
// now; the names are known.
func anyUnschedulable(c *spread.Cluster, names []string) bool {
	return slices.ContainsFunc(names, func(name string) bool { return !c.Nodes[name].Schedulable() })
}

func worst(a, b spread.Verdict) spread.Verdict {
	if b.Worse(a) {
		return b
	}
	return a
}

// surviving sums up the ready replicas of f on the schedulable nodes of c.
func surviving(c *spread.Cluster, f *spread.Figures) Figures {
	out := Figures{Replicas: f.ReplicasSchedulable, Nodes: f.SchedulableNodes, TopologyDomains: make(map[string]int, len(f.Domains))}
	for _, d := range f.Domains {
		out.TopologyDomains[d.Key] = d.Schedulable
	}
	largest := 0
	for _, n := range f.NodeReplicas {
		if node := c.Nodes[n.Node]; node != nil && node.Schedulable() {
			largest = max(largest, n.Count)
		}
	}
	if f.ReplicasSchedulable > 0 {
		out.ConcentrationRatio = float64(largest) / float64(f.ReplicasSchedulable)
	}
	return out
}

// Plan is the answer for a rolling maintenance in ordered batches.
type Plan struct {
	// Verdict is the worst verdict of any batch.
	Verdict spread.Verdict `json:"verdict"`
	Batches []Batch        `json:"batches"`
	// Unsafe lists, for each service that some batch breaks, the first
	// batch that does: the one to reorder or split.
	Unsafe []UnsafeService `json:"unsafe"`
}

// Batch is one batch of a plan and the services it breaks.
type Batch struct {
	// Index counts batches from 1, in the order asked.
	Index   int            `json:"index"`
	Nodes   []string       `json:"nodes"`
	Verdict spread.Verdict `json:"verdict"`
	// Services lists the services this batch makes worse.
	Services []Service `json:"services"`
}

// UnsafeService names the first batch that breaks a service.
type UnsafeService struct {
	Namespace  string         `json:"namespace"`
	Kind       spread.Kind    `json:"kind"`
	Name       string         `json:"name"`
	FirstBatch int            `json:"first_batch"`
	Verdict    spread.Verdict `json:"verdict"`
}

// AskPlan judges each batch on its own against the placement of now: the
// nodes of a batch come back before the next batch goes. Where the pods
// evicted by one batch go is AskCampaign's question; a reimage script
// should ask again before each batch all the same: the plan is for
// spotting a bad batch before starting.
func AskPlan(c *spread.Cluster, batches [][]string, opts spread.Options) (*Plan, error) {
	return askPlan(c, spread.Analyze(c, opts), batches, opts)
}

func askPlan(c *spread.Cluster, now *spread.Report, batches [][]string, opts spread.Options) (*Plan, error) {
	if len(batches) == 0 {
		return nil, spread.ErrNoNodes
	}
	plan := &Plan{Verdict: spread.VerdictOK, Batches: []Batch{}, Unsafe: []UnsafeService{}}
	seen := make(map[[3]string]bool)
	for i, nodes := range batches {
		answer, err := ask(c, now, nodes, opts)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", i+1, err)
		}
		batch := Batch{Index: i + 1, Nodes: answer.Nodes, Verdict: answer.Verdict, Services: []Service{}}
		for _, s := range answer.Services {
			if !s.Blocking {
				continue
			}
			batch.Services = append(batch.Services, s)
			id := [3]string{s.Namespace, string(s.Kind), s.Name}
			if !seen[id] {
				seen[id] = true
				plan.Unsafe = append(plan.Unsafe, UnsafeService{Namespace: s.Namespace, Kind: s.Kind, Name: s.Name, FirstBatch: i + 1, Verdict: s.Verdict})
			}
		}
		if batch.Verdict.Worse(plan.Verdict) {
			plan.Verdict = batch.Verdict
		}
		plan.Batches = append(plan.Batches, batch)
	}
	return plan, nil
}
