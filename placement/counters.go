package placement

import (
	"math"
	"strings"
)

// topology maps every node to its domain of one topology key.
type topology struct {
	// domainOf is the domain of each node, -1 when it lacks the label.
	domainOf []int32
	domains  int
}

// topology returns the domains of a key, computed once per simulation.
func (s *simulation) topology(key string) *topology {
	if t, ok := s.topologies[key]; ok {
		return t
	}
	t := &topology{domainOf: make([]int32, len(s.c.Nodes))}
	ids := make(map[string]int32)
	for i := range s.c.Nodes {
		value, ok := s.c.Nodes[i].Labels.Lookup(key)
		if !ok {
			t.domainOf[i] = -1
			continue
		}
		id, seen := ids[value]
		if !seen {
			id = int32(len(ids))
			ids[value] = id
		}
		t.domainOf[i] = id
	}
	t.domains = len(ids)
	s.topologies[key] = t
	return t
}

// counter counts pods per topology domain for one constraint.
type counter struct {
	// owner is the template whose constraint this is.
	owner    *Template
	selector *Selector
	topology *topology
	counts   []int32

	// For a topology spread constraint: constraint is set, eligible
	// marks the nodes whose pods count and whose domains compete for the
	// minimum, eligibleDomain the domains with an eligible node; min is
	// the least count of an eligible domain and atMin how many are there.
	constraint      *SpreadConstraint
	eligible        []bool
	eligibleDomain  []bool
	eligibleDomains int
	min, atMin      int32

	// For a required anti-affinity term, term is set. For an owner
	// counter (the term's owner's own pods) ownerOnly is set too, and the
	// counts are in sparse: thousands of templates may have a term on
	// the hostname, each with its pods on a few of 5,000 nodes.
	term      *AffinityTerm
	ownerOnly bool
	// sameOwner: a system default spread constraint, which counts the
	// pods of the owner's controller (score.go).
	sameOwner bool
	sparse    map[int32]int32
}

// occupied reports whether the counter counts a pod in a domain.
func (c *counter) occupied(domain int32) bool {
	if c.sparse != nil {
		return c.sparse[domain] > 0
	}
	return c.counts[domain] > 0
}

// newSpreadCounter builds the counter of a hard topology spread
// constraint of template t. A node is eligible when it has the topology
// keys of all of t's constraints and passes the constraint's node
// inclusion policies (kube-scheduler's PreFilter): by default the pod's
// node selector and required affinity count, its taints do not. Gone
// nodes are eligible like any other, except under nodeTaintsPolicy Honor:
// a cordoned node gets the taint node.kubernetes.io/unschedulable
// (NoSchedule) from the node lifecycle controller, so a gone node counts
// only for a pod that tolerates that taint as well as the node's own.
func (s *simulation) newSpreadCounter(t *Template, constraint *SpreadConstraint) *counter {
	c := &counter{owner: t, constraint: constraint, selector: &constraint.Selector, topology: s.topology(constraint.TopologyKey)}
	c.counts = make([]int32, c.topology.domains)
	keys := make([]*topology, len(t.Spread))
	for i := range t.Spread {
		keys[i] = s.topology(t.Spread[i].TopologyKey)
	}
	selects := len(t.NodeSelector) > 0 || t.NodeAffinity != nil
	// Without a node policy that reads the template, which nodes are
	// eligible depends only on the topology keys: templates with the same
	// keys share them (a batch displaces some 60 templates with a zone
	// constraint, 5,000 nodes to look at for each).
	var shareAs string
	if !(selects && !constraint.IgnoreNodeAffinity) && !constraint.HonorNodeTaints {
		var b strings.Builder
		b.WriteString(constraint.TopologyKey)
		for i := range t.Spread {
			b.WriteByte(0)
			b.WriteString(t.Spread[i].TopologyKey)
		}
		shareAs = b.String()
		if shared, ok := s.eligibility[shareAs]; ok {
			c.eligible, c.eligibleDomain, c.eligibleDomains = shared.eligible, shared.eligibleDomain, shared.eligibleDomains
			s.counters = append(s.counters, c)
			return c
		}
	}
	c.eligible = make([]bool, len(s.c.Nodes))
	c.eligibleDomain = make([]bool, c.topology.domains)
nodes:
	for i := range s.c.Nodes {
		node := &s.c.Nodes[i]
		// The node must have the keys of all the template's constraints.
		for _, key := range keys {
			if key.domainOf[i] < 0 {
				continue nodes
			}
		}
		if selects && !constraint.IgnoreNodeAffinity && !nodeAffinityMatches(t, node) {
			continue
		}
		if constraint.HonorNodeTaints && (filterTaints(t, node) != fits || s.isGone(int32(i)) && !tolerated(t.Tolerations, &unschedulableTaint)) {
			continue
		}
		c.eligible[i] = true
		if domain := c.topology.domainOf[i]; !c.eligibleDomain[domain] {
			c.eligibleDomain[domain] = true
			c.eligibleDomains++
		}
	}
	if shareAs != "" {
		s.eligibility[shareAs] = c
	}
	s.counters = append(s.counters, c)
	return c
}

// matches reports whether pods of template u count for the counter.
func (c *counter) matches(u *Template) bool {
	switch {
	case c.ownerOnly:
		return u == c.owner
	case c.sameOwner:
		return u.Namespace == c.owner.Namespace && u.Owner == c.owner.Owner
	case c.constraint != nil:
		// Spread counts pods of the pod's namespace; an empty selector
		// counts none (kube-scheduler's countPodsMatchSelector).
		return u.Namespace == c.owner.Namespace && !c.selector.empty() && c.selector.Matches(u.Labels)
	default:
		return c.term.namespaceMatches(c.owner.Namespace, u.Namespace) && c.selector.Matches(u.Labels)
	}
}

// add counts a pod on a node. Terminating pods do not count for spread.
func (c *counter) add(node int32, terminating bool) {
	domain := c.topology.domainOf[node]
	if domain < 0 {
		return
	}
	if c.sparse != nil {
		c.sparse[domain]++
		return
	}
	if c.constraint == nil {
		c.counts[domain]++
		return
	}
	if terminating || !c.eligible[node] {
		return
	}
	c.counts[domain]++
	// Counts only grow, so the minimum moves only when the last domain
	// at it grows; until findMin has run atMin is 0 and nothing is kept.
	if c.atMin > 0 && c.counts[domain]-1 == c.min {
		c.atMin--
		if c.atMin == 0 {
			c.findMin()
		}
	}
}

// findMin computes the least count of an eligible domain and how many
// domains have it. With no eligible domain the minimum is the largest
// int32, as in the scheduler, so that only minDomains can lower it.
func (c *counter) findMin() {
	if c.constraint == nil {
		return
	}
	c.min, c.atMin = math.MaxInt32, 0
	for domain, eligible := range c.eligibleDomain {
		if !eligible {
			continue
		}
		switch n := c.counts[domain]; {
		case n < c.min:
			c.min, c.atMin = n, 1
		case n == c.min:
			c.atMin++
		}
	}
}

// matchingCounters returns the counters that pods of template u count
// for, computed once per template.
func (s *simulation) matchingCounters(u *Template) []*counter {
	if m, ok := s.matching[u]; ok {
		return m
	}
	if s.countersByNamespace == nil {
		s.countersByNamespace = indexByNamespace(s.counters)
	}
	var m []*counter
	for _, list := range [2][]*counter{s.countersByNamespace[u.Namespace], s.countersByNamespace[anyNamespace]} {
		for _, c := range list {
			if c.matches(u) {
				m = append(m, c)
			}
		}
	}
	s.matching[u] = m
	return m
}

// anyNamespace keys the counters that look at every namespace; no
// namespace has this name (names are DNS labels).
const anyNamespace = "*"

// indexByNamespace indexes counters by the namespaces of the pods they
// may count, so that a pod is matched against its namespace's only.
func indexByNamespace(counters []*counter) map[string][]*counter {
	index := make(map[string][]*counter)
	for _, c := range counters {
		switch {
		case c.term == nil || len(c.term.Namespaces) == 0 && !c.term.AllNamespaces && !c.term.NamespaceSelector:
			add(index, c.owner.Namespace, c)
		case c.term.AllNamespaces || c.term.NamespaceSelector:
			add(index, anyNamespace, c)
		default:
			for _, ns := range c.term.Namespaces {
				add(index, ns, c)
			}
		}
	}
	return index
}

// add appends c to the namespace's list once: a term may list a
// namespace twice.
func add(index map[string][]*counter, namespace string, c *counter) {
	list := index[namespace]
	if len(list) > 0 && list[len(list)-1] == c {
		return
	}
	index[namespace] = append(list, c)
}

// ownerCounters returns the counters of a template's own pods, one per
// required anti-affinity term, made on first use.
func (s *simulation) ownerCounters(t *Template) []*counter {
	if o, ok := s.owners[t]; ok {
		return o
	}
	o := make([]*counter, len(t.AntiAffinity))
	for i := range t.AntiAffinity {
		term := &t.AntiAffinity[i]
		o[i] = &counter{owner: t, term: term, ownerOnly: true, selector: &term.Selector, topology: s.topology(term.TopologyKey), sparse: make(map[int32]int32)}
	}
	s.owners[t] = o
	return o
}
