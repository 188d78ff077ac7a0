package placement

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Outcome is where one displaced pod goes.
type Outcome struct {
	// Node is the index of the node the pod is placed on, -1 when it
	// finds none.
	Node int32
	// Reason says why it finds none; "" when placed or unknown.
	Reason Reason
	// Unknown says which constraint the model does not understand; the
	// pod is then neither placed nor given a reason.
	Unknown string
}

// Result is the answer of Simulate for one set of gone nodes.
type Result struct {
	c    *Cluster
	gone []bool
	// outcomes holds the displaced pods' outcomes in placement order;
	// outcomeOf maps a pod's index to its entry plus one, 0 for a pod that
	// is not displaced. A slice over all pods, not a map: the what-if
	// looks up every replica of every service, and indexing is ten times
	// cheaper than hashing.
	outcomes  []Outcome
	outcomeOf []int32
	// displaced are the displaced pods' indexes, in placement order.
	displaced []int32
	// candidates are the nodes that are not gone; tainted those of them
	// with a NoSchedule or NoExecute taint.
	candidates, tainted []int32

	// Built on first use by PDBs.
	pdbs *pdbState
}

// Simulate takes the nodes marked in gone (by index in c.Nodes) away and
// places every displaced pod on the nodes that remain, in placement order:
// higher priority first, then by namespace, owner name and pod name, a
// stable stand-in for the order in which the scheduler takes the
// replacements (see Order).
//
// A displaced pod is one on a gone node whose template is Recreated and
// that is not terminating. For each, in turn, every remaining node goes
// through the filters in kube-scheduler's order; the pod goes to the
// feasible node with the highest score (the default profile's score
// plugins with their weights, score.go; the first node by index on a
// tie, where the scheduler picks at random), and
// occupies it for the pods after it. A pod that fits nowhere gets the
// reason most nodes gave (the earlier filter on a tie).
//
// Gone nodes stay in the cluster for topology spread, as cordoned nodes
// stay in the scheduler's snapshot: their domains count, with the
// displaced pods gone from them and every other pod still there. Under
// nodeTaintsPolicy Honor they count only for pods that tolerate the
// taint node.kubernetes.io/unschedulable:NoSchedule, which the node
// lifecycle controller puts on a cordoned node.
func Simulate(c *Cluster, gone []bool) *Result {
	return SimulateRestart(c, gone, nil)
}

// SimulateRestart is Simulate with the pods marked in restarted (by index
// in c.Pods) displaced too, wherever they run: a rollout restart of their
// workload, whose replacements the scheduler places anew. Only recreated,
// not terminating pods are replaced.
func SimulateRestart(c *Cluster, gone, restarted []bool) *Result {
	s := newSimulation(c, gone)
	s.restarted = restarted
	s.findDisplaced()
	s.indexImages()
	s.prepareResources()
	s.prepareCounters()
	s.countPods()
	s.place()
	return s.result
}

// simulation is the working state of one Simulate call: the remaining
// room of every node and the counters the constraints read, updated as
// pods are placed. Nothing of the Cluster is modified, so that many
// questions can be asked of one snapshot (cluster-autoscaler's simulator
// forks its snapshot for the same reason).
type simulation struct {
	c      *Cluster
	result *Result
	gone   []bool
	// restarted marks pods replaced wherever they run (SimulateRestart).
	restarted []bool
	// displaced are the displaced pods' indexes in placement order.
	displaced []int32

	// slots are the extended resources displaced pods request, after the
	// fixed slots; stride = fixedSlots + len(slots).
	slots  []string
	stride int
	// allocatable and used hold stride values per node; scoreUsed the
	// scheduler's non-zero CPU and memory requests, two per node.
	allocatable, used, scoreUsed []int64
	// lowest is, per node, the lowest priority of a pod staying on it,
	// noPods when none does: the pods a preemption there could evict.
	lowest []int32
	// preemptable: the last bestNode that found no node saw one where
	// preempting a lower-priority pod could make room.
	preemptable bool
	// nextStart is the node index the next pod's search starts at.
	nextStart int
	// balanceNow caches each node's BalancedAllocation balance before the
	// next pod (it changes only when a pod is placed there); -1 when not
	// computed yet.
	balanceNow []int64
	// requests caches each displaced template's request per slot.
	requests map[*Template][]int64

	// static caches, per displaced template, the static filters' verdict
	// for every node.
	static map[*Template][]reasonID
	// byTolerations holds the static verdicts of templates that select no
	// nodes, by their tolerations, the only thing the filters then read.
	byTolerations []sharedVerdicts
	// failed remembers the reason of templates whose pods cannot fit and
	// never will in this simulation (see place).
	failed map[*Template]reasonID

	topologies map[string]*topology
	// eligibility holds, by topology keys, the first counter of a spread
	// constraint whose eligible nodes depend on nothing else
	// (newSpreadCounter); later ones share its slices, never written.
	eligibility map[string]*counter
	// counters count, per topology domain, the pods a constraint of a
	// displaced template looks at; matching memoizes, per template of any
	// pod, the counters its pods count for.
	counters []*counter
	matching map[*Template][]*counter
	// spread and anti are each displaced template's own constraints,
	// in the template's order.
	spread, anti map[*Template][]*counter
	// owners counts, per template with required anti-affinity, its own
	// pods by domain, one counter per term: a pod may not join them
	// where a term matches it (the symmetry of anti-affinity).
	owners map[*Template][]*counter
	// ownersAgainst memoizes, per displaced template, the owner counters
	// whose term matches its pods.
	ownersAgainst map[*Template][]*counter
	// countersByNamespace and ownersByNamespace index the counters and
	// the owner counters by the namespaces they look at, once all exist.
	countersByNamespace, ownersByNamespace map[string][]*counter

	// soft holds each displaced template's soft or system default spread
	// constraints, which only score (score.go).
	soft map[*Template]*softSpread
	// imageNodes lists the holders of each image a displaced pod names;
	// imageScores memoizes, per template, ImageLocality's score of every
	// node (nil when no node holds its images), and imageSums is the
	// scratch buffer they are summed in.
	imageNodes  map[string][]nodeImage
	imageScores map[*Template][]uint8
	imageSums   []int64
	// feasible, totals and seenDomain are scratch buffers of one pod's
	// node choice.
	feasible   []int32
	totals     []int64
	seenDomain []bool
}

func newSimulation(c *Cluster, gone []bool) *simulation {
	s := &simulation{
		c:             c,
		gone:          gone,
		result:        &Result{c: c, gone: gone, outcomeOf: make([]int32, len(c.Pods))},
		requests:      make(map[*Template][]int64),
		static:        make(map[*Template][]reasonID),
		failed:        make(map[*Template]reasonID),
		topologies:    make(map[string]*topology),
		eligibility:   make(map[string]*counter),
		matching:      make(map[*Template][]*counter),
		spread:        make(map[*Template][]*counter),
		anti:          make(map[*Template][]*counter),
		owners:        make(map[*Template][]*counter),
		ownersAgainst: make(map[*Template][]*counter),
		soft:          make(map[*Template]*softSpread),
		imageScores:   make(map[*Template][]uint8),
	}
	for i := range c.Nodes {
		if !s.isGone(int32(i)) {
			s.result.candidates = append(s.result.candidates, int32(i))
			if filterTaints(&Template{}, &c.Nodes[i]) != fits {
				s.result.tainted = append(s.result.tainted, int32(i))
			}
		}
	}
	return s
}

func (s *simulation) isGone(node int32) bool {
	return int(node) < len(s.gone) && s.gone[node]
}

// isDisplaced reports whether the pod of index i is recreated elsewhere.
func (s *simulation) isDisplaced(i int) bool {
	p := &s.c.Pods[i]
	restarted := i < len(s.restarted) && s.restarted[i]
	moves := p.Node >= 0 && (s.isGone(p.Node) || restarted) || p.Node < 0 && p.Pending
	return moves && !p.Terminating && p.Template != nil && p.Template.Recreated
}

// findDisplaced lists the displaced pods in placement order: those on the
// gone nodes and the pending ones, or, when pods are restarted wherever
// they run, any pod.
func (s *simulation) findDisplaced() {
	add := func(i int32) {
		if s.isDisplaced(int(i)) {
			s.displaced = append(s.displaced, i)
		}
	}
	if x := s.c.index(); x == nil || s.restarted != nil {
		for i := range s.c.Pods {
			add(int32(i))
		}
	} else {
		for node, gone := range s.gone {
			if gone && node < len(x.podsOn) {
				for _, i := range x.podsOn[node] {
					add(i)
				}
			}
		}
		for _, i := range x.pending {
			add(i)
		}
	}
	slices.SortFunc(s.displaced, func(a, b int32) int { return Order(&s.c.Pods[a], &s.c.Pods[b]) })
	s.result.outcomes = make([]Outcome, len(s.displaced))
	s.result.displaced = s.displaced
	for i, p := range s.displaced {
		s.result.outcomeOf[p] = int32(i) + 1
	}
}

// Order is the placement order of displaced pods: higher priority first,
// as kube-scheduler's queue sorts. Among equal priorities the scheduler
// goes by when each replacement entered its queue, which no model can
// know; the order here is the one it takes when every replacement exists
// before it looks at them (as in the fidelity test, which pauses it until
// then): its informer lists the pods by namespace and name.
// A replacement is named after its owner, "<replicaset>-<random>" or
// "<statefulset>-<ordinal>", so the order is by namespace, then owner
// name whatever its kind (a ReplicaSet's pods do not all come before a
// StatefulSet's), then the displaced pod's name, so that the answer is
// the same every time.
func Order(a, b *Pod) int {
	ta, tb := a.Template, b.Template
	return cmp.Or(
		cmp.Compare(tb.Priority, ta.Priority),
		strings.Compare(ta.Namespace, tb.Namespace),
		strings.Compare(ownerName(ta.Owner), ownerName(tb.Owner)),
		strings.Compare(a.Name, b.Name),
	)
}

// ownerName is the name in a Template's Owner, "Kind/name": the kind
// does not enter the replacement's name.
func ownerName(owner string) string {
	if i := strings.IndexByte(owner, '/'); i >= 0 {
		return owner[i+1:]
	}
	return owner
}

// prepareResources lays out the resource slots and fills in each node's
// allocatable. Only extended resources that displaced pods request get a
// slot: no other can make a displaced pod not fit.
func (s *simulation) prepareResources() {
	for _, p := range s.displaced {
		for _, q := range s.c.Pods[p].Template.Requests.Extended {
			if !slices.Contains(s.slots, q.Name) {
				s.slots = append(s.slots, q.Name)
			}
		}
	}
	slices.Sort(s.slots)
	s.stride = fixedSlots + len(s.slots)
	nodes := len(s.c.Nodes)
	s.allocatable = make([]int64, nodes*s.stride)
	s.used = make([]int64, nodes*s.stride)
	s.scoreUsed = make([]int64, nodes*2)
	s.balanceNow = make([]int64, nodes)
	s.lowest = make([]int32, nodes)
	for i := range s.lowest {
		s.lowest[i] = noPods
	}
	for i := range s.balanceNow {
		s.balanceNow[i] = -1
	}
	for i := range s.c.Nodes {
		s.fill(s.allocatable[i*s.stride:(i+1)*s.stride], &s.c.Nodes[i].Allocatable)
	}
}

// fill writes resources into the slots of values, adding.
func (s *simulation) fill(values []int64, r *Resources) {
	values[slotCPU] += r.MilliCPU
	values[slotMemory] += r.Memory
	values[slotEphemeralStorage] += r.EphemeralStorage
	values[slotPods] += r.Pods
	for _, q := range r.Extended {
		if i, ok := slices.BinarySearch(s.slots, q.Name); ok {
			values[fixedSlots+i] += q.Value
		}
	}
}

// request returns a template's request per slot.
func (s *simulation) request(t *Template) []int64 {
	if r, ok := s.requests[t]; ok {
		return r
	}
	r := make([]int64, s.stride)
	s.fill(r, &t.Requests)
	s.requests[t] = r
	return r
}

// prepareCounters builds the counters of every displaced template's
// constraints, and the owner counters of those with anti-affinity.
func (s *simulation) prepareCounters() {
	for _, p := range s.displaced {
		t := s.c.Pods[p].Template
		if t.Unknown != "" {
			continue
		}
		if _, done := s.spread[t]; done {
			continue
		}
		spread := make([]*counter, len(t.Spread))
		for i := range t.Spread {
			spread[i] = s.newSpreadCounter(t, &t.Spread[i])
		}
		s.spread[t] = spread
		anti := make([]*counter, len(t.AntiAffinity))
		for i := range t.AntiAffinity {
			term := &t.AntiAffinity[i]
			anti[i] = &counter{owner: t, term: term, selector: &term.Selector, topology: s.topology(term.TopologyKey)}
			anti[i].counts = make([]int32, anti[i].topology.domains)
			s.counters = append(s.counters, anti[i])
		}
		s.anti[t] = anti
		s.ownerCounters(t)
		s.prepareSoftSpread(t)
	}
}

// countPods counts every pod that stays, once: its requests on its node,
// and the counters it matches. A prepared cluster's index has the
// requests per node and the pods a counter may count already; an
// unprepared cluster, a restart (which displaces pods from nodes that
// stay) or an extended resource (which the index does not sum) needs the
// walk over every pod.
func (s *simulation) countPods() {
	x := s.c.index()
	if x == nil || s.restarted != nil || len(s.slots) > 0 {
		s.countEveryPod()
		return
	}
	for node := range s.c.Nodes {
		if s.isGone(int32(node)) {
			continue
		}
		copy(s.used[node*s.stride:node*s.stride+fixedSlots], x.used[node*fixedSlots:(node+1)*fixedSlots])
		s.scoreUsed[2*node], s.scoreUsed[2*node+1] = x.scoreUsed[2*node], x.scoreUsed[2*node+1]
		if x.hasLowest[node] {
			s.lowest[node] = x.lowest[node]
		}
	}
	count := func(i int32, counters func(*Template) []*counter) {
		p := &s.c.Pods[i]
		if p.Node < 0 || int(p.Node) >= len(s.c.Nodes) || p.Template == nil || s.isDisplaced(int(i)) {
			return
		}
		for _, c := range counters(p.Template) {
			c.add(p.Node, p.Terminating)
		}
	}
	if len(s.counters) > 0 {
		if s.countersByNamespace == nil {
			s.countersByNamespace = indexByNamespace(s.counters)
		}
		if _, all := s.countersByNamespace[anyNamespace]; all {
			for i := range s.c.Pods {
				count(int32(i), s.matchingCounters)
			}
		} else {
			for namespace := range s.countersByNamespace {
				for _, i := range x.byNamespace[namespace] {
					count(i, s.matchingCounters)
				}
			}
		}
	}
	for _, i := range x.antiAffinity {
		count(i, s.ownerCounters)
	}
	for _, c := range s.counters {
		c.findMin()
	}
}

// countEveryPod is countPods walking every pod.
func (s *simulation) countEveryPod() {
	for i := range s.c.Pods {
		p := &s.c.Pods[i]
		if p.Node < 0 || int(p.Node) >= len(s.c.Nodes) || s.isDisplaced(i) {
			continue
		}
		t := p.Template
		if t == nil {
			continue
		}
		if !s.isGone(p.Node) {
			s.occupy(p.Node, t)
			s.lowest[p.Node] = min(s.lowest[p.Node], t.Priority)
		}
		for _, c := range s.matchingCounters(t) {
			c.add(p.Node, p.Terminating)
		}
		if len(t.AntiAffinity) > 0 {
			for _, c := range s.ownerCounters(t) {
				c.add(p.Node, p.Terminating)
			}
		}
	}
	for _, c := range s.counters {
		c.findMin()
	}
}

// occupy adds a template's requests to a node.
func (s *simulation) occupy(node int32, t *Template) {
	used := s.used[int(node)*s.stride : int(node+1)*s.stride]
	if len(t.Requests.Extended) == 0 {
		used[slotCPU] += t.Requests.MilliCPU
		used[slotMemory] += t.Requests.Memory
		used[slotEphemeralStorage] += t.Requests.EphemeralStorage
		used[slotPods] += t.Requests.Pods
	} else {
		s.fill(used, &t.Requests)
	}
	s.scoreUsed[2*node] += t.ScoreMilliCPU
	s.scoreUsed[2*node+1] += t.ScoreMemory
	s.balanceNow[node] = -1
}

// place places the displaced pods one by one.
func (s *simulation) place() {
	var tally reasonTally
	for i, podIndex := range s.displaced {
		p := &s.c.Pods[podIndex]
		t := p.Template
		out := &s.result.outcomes[i]
		out.Node = -1
		if t.Unknown != "" {
			out.Unknown = t.Unknown
			continue
		}
		if s.namespaceSelectorAgainst(t) {
			out.Unknown = unknownNamespaceSelector
			continue
		}
		if r, ok := s.failed[t]; ok {
			out.Reason = s.reason(r)
			continue
		}
		tally.reset(s.stride)
		node := s.bestNode(t, &tally)
		if node < 0 && s.preemptable {
			// The scheduler would try to evict lower-priority pods to
			// make room, which the model does not simulate.
			out.Unknown = "preemption of lower-priority pods"
			continue
		}
		if node < 0 {
			r := tally.most()
			out.Reason = s.reason(r)
			// Placing pods only takes room, adds to the anti-affinity
			// counters and raises topology spread's minimum: a template
			// without spread constraints that fits nowhere now fits
			// nowhere later either.
			if len(t.Spread) == 0 {
				s.failed[t] = r
			}
			continue
		}
		out.Node = node
		s.occupy(node, t)
		for _, c := range s.matchingCounters(t) {
			c.add(node, false)
		}
		for _, c := range s.owners[t] {
			c.add(node, false)
		}
	}
}

// unknownNamespaceSelector is the unknown reason of a term that selects
// namespaces by labels (cluster.antiAffinityTerm names it for the term's
// owner).
const unknownNamespaceSelector = "anti-affinity namespace selector"

// noPods is the lowest priority of a node without pods: none is lower.
const noPods = math.MaxInt32

// preemptionMayHelp reports whether the scheduler's preemption could make
// room for a pod of t on a node that refused it for reason: the pod may
// preempt, a pod of lower priority runs there, and the refusal is one
// that evicting pods can clear (kube-scheduler's Unschedulable, as
// opposed to UnschedulableAndUnresolvable, on which it never tries):
// resources the node has but others use, topology spread's skew, pod
// anti-affinity. Taints, node selection, a request above the node's
// allocatable and a node without a spread constraint's topology key are
// not: the pod stays Pending, no_room.
func (s *simulation) preemptionMayHelp(t *Template, node int32, reason reasonID, static bool, request []int64, spread []*counter) bool {
	if t.PreemptNever || t.Priority <= s.lowest[node] || static {
		return false
	}
	base := int(node) * s.stride
	switch {
	case reason == idInsufficientPods:
		return s.allocatable[base+slotPods] >= 1
	case reason >= reasonResources && int(reason-reasonResources) < s.stride:
		slot := int(reason - reasonResources)
		return request[slot] <= s.allocatable[base+slot]
	case reason == idTopologySpread:
		for _, c := range spread {
			if c.topology.domainOf[node] < 0 {
				return false
			}
		}
		return true
	}
	return reason == idPodAntiAffinity
}

// bestNode runs the nodes through the filters and returns the feasible
// node with the best score, -1 when none is feasible; tally counts the
// first failing filter of each node.
//
// Like kube-scheduler, it stops looking once it has found
// feasibleNodesToFind feasible nodes (all of them below 100 nodes, 10% at
// 5,000), and the next pod starts looking where this one stopped. In a
// large cluster the pod therefore goes to the best node of a sample, as
// it does for the scheduler; whether it fits at all does not depend on
// the sample, since a pod that fits nowhere has seen every node.
func (s *simulation) bestNode(t *Template, tally *reasonTally) int32 {
	static := s.staticVerdicts(t)
	request := s.request(t)
	spread, anti, owners := s.spread[t], s.anti[t], s.againstOwners(t)
	selfMatch := make([]int32, len(spread))
	for i, c := range spread {
		if c.selector.Matches(t.Labels) {
			selfMatch[i] = 1
		}
	}
	if len(s.result.candidates) == 0 {
		tally.count(idNoNode)
		return -1
	}
	s.feasible, s.preemptable = s.feasible[:0], false
	nodes := len(s.c.Nodes)
	toFind, found, processed := feasibleNodesToFind(nodes), 0, 0
	for ; processed < nodes && found < toFind; processed++ {
		node := int32((s.nextStart + processed) % nodes)
		if s.isGone(node) {
			continue
		}
		verdict := static[node]
		staticRefusal := verdict != fits
		if verdict == fits {
			base := int(node) * s.stride
			verdict = filterResources(request, s.used[base:base+s.stride], s.allocatable[base:base+s.stride])
		}
		if verdict == fits {
			verdict = filterSpread(spread, selfMatch, node)
		}
		if verdict == fits {
			verdict = filterAntiAffinity(anti, owners, node)
		}
		if verdict != fits {
			tally.count(verdict)
			if !s.preemptable {
				s.preemptable = s.preemptionMayHelp(t, node, verdict, staticRefusal, request, spread)
			}
			continue
		}
		found++
		s.feasible = append(s.feasible, node)
	}
	s.nextStart = (s.nextStart + processed) % nodes
	if len(s.feasible) == 0 {
		return -1
	}
	// A tie goes to the lower index, not to the first one seen, so that
	// the answer does not depend on where the search started.
	return s.pick(t, s.feasible)
}

// The scheduler's defaults for how many feasible nodes to look for
// (pkg/scheduler/schedule_one.go): all nodes below 100; else a share of
// 50% less 1% per 125 nodes, at least 5% and at least 100 nodes.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

func feasibleNodesToFind(nodes int) int {
	if nodes < minFeasibleNodesToFind {
		return nodes
	}
	percentage := max(50-nodes/125, minFeasibleNodesPercentageToFind)
	return max(nodes*percentage/100, minFeasibleNodesToFind)
}

// staticVerdicts returns the static filters' verdict of every node for a
// template, computed once.
func (s *simulation) staticVerdicts(t *Template) []reasonID {
	if v, ok := s.static[t]; ok {
		return v
	}
	// Most templates select no nodes: then only the tainted nodes can
	// refuse them, every other node passes as it is, and templates with
	// the same tolerations (most have the same few) share their verdicts.
	// A campaign's batch displaces pods of some 300 templates of 5,000
	// nodes each: a vector apiece was a sixth of what it allocated.
	selects := len(t.NodeSelector) > 0 || t.NodeAffinity != nil
	var v []reasonID
	if !selects {
		for _, shared := range s.byTolerations {
			if slices.Equal(shared.tolerations, t.Tolerations) {
				v = shared.verdicts
				break
			}
		}
	}
	if v == nil {
		v = make([]reasonID, len(s.c.Nodes))
		nodes := s.result.candidates
		if !selects {
			nodes = s.result.tainted
		}
		for _, node := range nodes {
			v[node] = staticFilters(t, &s.c.Nodes[node])
		}
		if !selects {
			s.byTolerations = append(s.byTolerations, sharedVerdicts{t.Tolerations, v})
		}
	}
	s.static[t] = v
	return v
}

// againstOwners returns the owner counters whose term matches pods of
// template t. They are known once every pod is counted, which is before
// placing starts.
func (s *simulation) againstOwners(t *Template) []*counter {
	if o, ok := s.ownersAgainst[t]; ok {
		return o
	}
	o := s.findOwnersAgainst(t)
	s.ownersAgainst[t] = o
	return o
}

// namespaceSelectorAgainst reports whether a pod's anti-affinity term
// that selects namespaces by labels matches pods of t: it may keep them
// away or not, the model cannot tell.
func (s *simulation) namespaceSelectorAgainst(t *Template) bool {
	for _, c := range s.againstOwners(t) {
		if c.term.NamespaceSelector {
			return true
		}
	}
	return false
}

// sharedVerdicts are static verdicts shared by the templates with these
// tolerations that select no nodes.
type sharedVerdicts struct {
	tolerations []Toleration
	verdicts    []reasonID
}

// findOwnersAgainst lists the owner counters whose term matches pods of
// template t.
func (s *simulation) findOwnersAgainst(t *Template) []*counter {
	if s.ownersByNamespace == nil {
		var all []*counter
		for _, counters := range s.owners {
			all = append(all, counters...)
		}
		// Map order does not leak: the filter only asks whether any
		// counter forbids a node.
		s.ownersByNamespace = indexByNamespace(all)
	}
	var against []*counter
	for _, list := range [2][]*counter{s.ownersByNamespace[t.Namespace], s.ownersByNamespace[anyNamespace]} {
		for _, c := range list {
			if c.selector.Matches(t.Labels) {
				against = append(against, c)
			}
		}
	}
	return against
}

// filterSpread is PodTopologySpread's filter on one node: for every hard
// constraint, the node must have the topology key, and placing the pod in
// the node's domain must keep that domain within maxSkew of the least
// populated eligible domain (0 while fewer than minDomains domains are
// eligible).
func filterSpread(counters []*counter, selfMatch []int32, node int32) reasonID {
	for i, c := range counters {
		domain := c.topology.domainOf[node]
		if domain < 0 {
			return idTopologySpread
		}
		minimum := c.min
		if c.eligibleDomains < int(c.constraint.MinDomains) {
			minimum = 0
		}
		if c.counts[domain]+selfMatch[i]-minimum > c.constraint.MaxSkew {
			return idTopologySpread
		}
	}
	return fits
}

// filterAntiAffinity is InterPodAffinity's filter for required
// anti-affinity on one node: no pod that one of the pod's terms matches
// may run in the node's domain of that term, and the pod may not join the
// domain of a pod whose own term matches it.
func filterAntiAffinity(anti, owners []*counter, node int32) reasonID {
	for _, list := range [2][]*counter{anti, owners} {
		for _, c := range list {
			if domain := c.topology.domainOf[node]; domain >= 0 && c.occupied(domain) {
				return idPodAntiAffinity
			}
		}
	}
	return fits
}

// Weights of the default profile's resource score plugins
// (pkg/scheduler/apis/config/v1 defaults): NodeResourcesFit with the
// LeastAllocated strategy on CPU and memory, and
// NodeResourcesBalancedAllocation, each weight 1. The other score plugins
// are in score.go.
const (
	weightLeastAllocated      = 1
	weightBalancedAllocation  = 1
	maxNodeScore              = 100
	halfMaxNodeScore          = maxNodeScore / 2
	scoreResourceCount        = 2 // CPU and memory
	defaultScoreResourceCount = scoreResourceCount
)

// score rates a feasible node for a pod of template t by its resources:
// LeastAllocated plus BalancedAllocation, neither of which normalizes.
func (s *simulation) score(t *Template, node int32) int64 {
	base := int(node) * s.stride
	allocatable := [scoreResourceCount]int64{s.allocatable[base+slotCPU], s.allocatable[base+slotMemory]}
	least := leastAllocated(
		[scoreResourceCount]int64{s.scoreUsed[2*node] + t.ScoreMilliCPU, s.scoreUsed[2*node+1] + t.ScoreMemory},
		allocatable)
	used := [scoreResourceCount]int64{s.used[base+slotCPU], s.used[base+slotMemory]}
	now := s.balanceNow[node]
	if now < 0 {
		now = balance(used, allocatable)
		s.balanceNow[node] = now
	}
	with := balance([scoreResourceCount]int64{used[0] + t.Requests.MilliCPU, used[1] + t.Requests.Memory}, allocatable)
	return weightLeastAllocated*least + weightBalancedAllocation*balancedAllocation(with, now)
}

// leastAllocated is the LeastAllocated score: the mean share of each
// resource left free after the pod, 0 to 100, over the resources the node
// has.
func leastAllocated(requested, allocatable [scoreResourceCount]int64) int64 {
	var sum, resources int64
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		resources++
		if requested[i] <= allocatable[i] {
			sum += (allocatable[i] - requested[i]) * maxNodeScore / allocatable[i]
		}
	}
	if resources == 0 {
		return 0
	}
	return sum / resources
}

// balancedAllocation is BalancedAllocation's score: how much the pod
// improves the balance between the shares of CPU and memory requested,
// 50 (worse) to 100 (better), 75 when it changes nothing.
// withPod and withoutPod are the balances (see balance) after and before.
func balancedAllocation(withPod, withoutPod int64) int64 {
	return halfMaxNodeScore + (halfMaxNodeScore+withPod-withoutPod)/2
}

// balance is 100 times one minus the standard deviation of the requested
// shares; with two resources that is half their difference.
func balance(requested, allocatable [scoreResourceCount]int64) int64 {
	var fractions [scoreResourceCount]float64
	n := 0
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		fractions[n] = min(float64(requested[i])/float64(allocatable[i]), 1)
		n++
	}
	std := 0.0
	if n == defaultScoreResourceCount {
		std = math.Abs(fractions[0]-fractions[1]) / 2
	}
	return int64((1 - std) * maxNodeScore)
}

// reason turns a reason id into its name.
func (s *simulation) reason(id reasonID) Reason {
	switch id {
	case idTaint:
		return ReasonTaint
	case idNodeSelector:
		return ReasonNodeSelector
	case idNodeAffinity:
		return ReasonNodeAffinity
	case idInsufficientPods:
		return ReasonInsufficientPods
	case idTopologySpread:
		return ReasonTopologySpread
	case idPodAntiAffinity:
		return ReasonPodAntiAffinity
	case idNoNode:
		return ReasonNoSchedulableNode
	}
	switch slot := int(id - reasonResources); slot {
	case slotCPU:
		return ReasonInsufficientCPU
	case slotMemory:
		return ReasonInsufficientMemory
	case slotEphemeralStorage:
		return ReasonInsufficientEphemeralStorage
	default:
		return InsufficientResource(s.slots[slot-fixedSlots])
	}
}

// reasonTally counts how many nodes gave each reason for one pod: one
// counter per reason id below the resources' end, then the three high
// ids.
type reasonTally struct{ counts []int32 }

func (r *reasonTally) reset(stride int) {
	size := int(reasonResources) + stride + 3
	if cap(r.counts) < size {
		r.counts = make([]int32, size)
	}
	r.counts = r.counts[:size]
	clear(r.counts)
}

func (r *reasonTally) index(id reasonID) int {
	if id >= idTopologySpread {
		return len(r.counts) - 3 + int(id-idTopologySpread)
	}
	return int(id)
}

func (r *reasonTally) count(id reasonID) { r.counts[r.index(id)]++ }

// most returns the reason most nodes gave, the earlier filter on a tie
// (ids are in filter order, and so are the counters).
func (r *reasonTally) most() reasonID {
	best, bestCount := len(r.counts)-1, int32(0)
	for i, n := range r.counts {
		if n > bestCount {
			best, bestCount = i, n
		}
	}
	if best >= len(r.counts)-3 {
		return idTopologySpread + reasonID(best-(len(r.counts)-3))
	}
	return reasonID(best)
}
