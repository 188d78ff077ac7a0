package placement

import (
	"math"
	"strings"
)

// This file is the scoring half of the model: which of the feasible nodes
// a pod goes to. It follows kube-scheduler's default profile
// (pkg/scheduler/apis/config/v1/default_plugins.go), read and not copied:
// every score plugin rates each feasible node 0 to 100, the plugins that
// have one normalize their ratings over the feasible nodes, and the node
// with the highest weighted sum wins.
//
// InterPodAffinity's preferred terms (weight 2) are not modelled: the
// template keeps no preferred pod (anti-)affinity. A pod that has them may
// go elsewhere than predicted, never fit where the model says it does not.

// The default profile's weights of the score plugins that are modelled.
const (
	weightTaintToleration   = 3 // PreferNoSchedule taints
	weightNodeAffinity      = 2 // preferred terms
	weightPodTopologySpread = 2 // soft and system default constraints
	weightImageLocality     = 1
	// NodeResourcesFit (LeastAllocated) and BalancedAllocation: see
	// weightLeastAllocated and weightBalancedAllocation.
)

// ImageLocality's thresholds (pkg/scheduler/framework/plugins/imagelocality):
// below 23 MiB of images a node scores 0, at 1000 MiB per container 100.
const (
	imageMinThreshold          = 23 << 20
	imageMaxContainerThreshold = 1000 << 20
)

// The system default spread constraints of PodTopologySpread, applied as
// ScheduleAnyway to a pod without any constraint of its own: maxSkew 3 on
// the hostname, 5 on the zone.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelZone     = "topology.kubernetes.io/zone"
)

var systemDefaultSpread = []SpreadConstraint{
	{MaxSkew: 3, TopologyKey: LabelHostname, MinDomains: 1},
	{MaxSkew: 5, TopologyKey: LabelZone, MinDomains: 1},
}

// softSpread is the scoring state of one template's soft constraints.
type softSpread struct {
	counters []*counter
	// requireAll: a node lacking one of the constraints' keys is ignored
	// (scores 0). True for a pod's own constraints, false for the system
	// defaults, as in the scheduler.
	requireAll bool
}

// hasDefaultSpread reports whether the system default constraints apply
// to pods of t: it has no constraint of its own and a controller whose
// selector the scheduler derives the constraints' selector from
// (helper.DefaultSelector). That selector matches the controller's own
// pods; the model counts the pods of the same owner in the namespace.
func hasDefaultSpread(t *Template) bool {
	if len(t.Spread) > 0 || len(t.SoftSpread) > 0 {
		return false
	}
	kind, _, _ := strings.Cut(t.Owner, "/")
	return kind == "ReplicaSet" || kind == "StatefulSet" || kind == "ReplicationController"
}

// prepareSoftSpread builds the counters of a displaced template's soft or
// default spread constraints.
func (s *simulation) prepareSoftSpread(t *Template) {
	constraints, requireAll, sameOwner := t.SoftSpread, true, false
	if hasDefaultSpread(t) {
		constraints, requireAll, sameOwner = systemDefaultSpread, false, true
	}
	if len(constraints) == 0 {
		return
	}
	state := &softSpread{requireAll: requireAll}
	keys := make([]*topology, len(constraints))
	for i := range constraints {
		keys[i] = s.topology(constraints[i].TopologyKey)
	}
	selects := len(t.NodeSelector) > 0 || t.NodeAffinity != nil
	for i := range constraints {
		constraint := &constraints[i]
		c := &counter{owner: t, constraint: constraint, selector: &constraint.Selector, topology: keys[i], sameOwner: sameOwner}
		c.counts = make([]int32, c.topology.domains)
		c.eligible = make([]bool, len(s.c.Nodes))
		c.eligibleDomain = make([]bool, c.topology.domains)
	nodes:
		for n := range s.c.Nodes {
			node := &s.c.Nodes[n]
			// On the hostname the scheduler counts the pods on the scored
			// node itself, whatever the policies.
			if constraint.TopologyKey != LabelHostname {
				if requireAll {
					for _, key := range keys {
						if key.domainOf[n] < 0 {
							continue nodes
						}
					}
				}
				if selects && !constraint.IgnoreNodeAffinity && !nodeAffinityMatches(t, node) {
					continue
				}
				if constraint.HonorNodeTaints && filterTaints(t, node) != fits {
					continue
				}
			}
			c.eligible[n] = true
		}
		state.counters = append(state.counters, c)
		s.counters = append(s.counters, c)
	}
	s.soft[t] = state
}

// pick returns the feasible node with the highest weighted score for a
// pod of t; on a tie the lowest index, which is the lowest name when the
// nodes are sorted (the scheduler picks at random among the best).
func (s *simulation) pick(t *Template, feasible []int32) int32 {
	if len(feasible) == 1 {
		return feasible[0]
	}
	total := s.scratch(len(feasible))
	for i, node := range feasible {
		total[i] = s.score(t, node) + weightImageLocality*s.imageLocality(t, node)
	}
	s.addTaintScores(t, feasible, total)
	s.addAffinityScores(t, feasible, total)
	s.addSpreadScores(t, feasible, total)
	best := 0
	for i := 1; i < len(feasible); i++ {
		if total[i] > total[best] || total[i] == total[best] && feasible[i] < feasible[best] {
			best = i
		}
	}
	return feasible[best]
}

// scratch returns the simulation's reusable score buffers, zeroed.
func (s *simulation) scratch(n int) []int64 {
	if cap(s.totals) < 2*n {
		s.totals = make([]int64, 2*n)
	}
	s.totals = s.totals[:2*n]
	clear(s.totals)
	return s.totals[:n]
}

// raw returns the second scratch buffer: one plugin's raw scores.
func (s *simulation) raw(n int) []int64 {
	r := s.totals[n : 2*n]
	clear(r)
	return r
}

// addTaintScores is TaintToleration's score: the node's PreferNoSchedule
// taints that the pod does not tolerate (with a toleration of that effect
// or of every effect), normalized in reverse: the fewest score 100.
func (s *simulation) addTaintScores(t *Template, feasible []int32, total []int64) {
	raw := s.raw(len(feasible))
	var most int64
	for i, node := range feasible {
		for _, taint := range s.c.Nodes[node].Taints {
			if taint.Effect != EffectPreferNoSchedule {
				continue
			}
			tolerates := false
			for _, tol := range t.Tolerations {
				if (tol.Effect == "" || tol.Effect == EffectPreferNoSchedule) && tol.tolerates(&taint) {
					tolerates = true
					break
				}
			}
			if !tolerates {
				raw[i]++
			}
		}
		most = max(most, raw[i])
	}
	for i := range raw {
		score := int64(maxNodeScore)
		if most > 0 {
			score = maxNodeScore - maxNodeScore*raw[i]/most
		}
		total[i] += weightTaintToleration * score
	}
}

// addAffinityScores is NodeAffinity's score: the weights of the preferred
// terms the node matches, normalized so that the best node scores 100.
func (s *simulation) addAffinityScores(t *Template, feasible []int32, total []int64) {
	if len(t.PreferredAffinity) == 0 {
		return
	}
	raw := s.raw(len(feasible))
	var most int64
	for i, node := range feasible {
		for _, term := range t.PreferredAffinity {
			if term.Term.matchesNode(&s.c.Nodes[node]) {
				raw[i] += int64(term.Weight)
			}
		}
		most = max(most, raw[i])
	}
	if most == 0 {
		return
	}
	for i := range raw {
		total[i] += weightNodeAffinity * maxNodeScore * raw[i] / most
	}
}

// addSpreadScores is PodTopologySpread's score for the soft (or system
// default) constraints: for each constraint the node has the key of, the
// matching pods in its domain times log(domains + 2), plus maxSkew - 1;
// the domains counted over the feasible nodes that are not ignored.
// Normalized so that the fewest pods score 100: 100 * (max + min - s) /
// max; a node ignored for lacking a key scores 0.
func (s *simulation) addSpreadScores(t *Template, feasible []int32, total []int64) {
	state := s.soft[t]
	if state == nil {
		return
	}
	raw := s.raw(len(feasible))
	ignored := func(node int32) bool {
		if !state.requireAll {
			return false
		}
		for _, c := range state.counters {
			if c.topology.domainOf[node] < 0 {
				return true
			}
		}
		return false
	}
	considered := 0
	for _, node := range feasible {
		if !ignored(node) {
			considered++
		}
	}
	for _, c := range state.counters {
		size := considered
		if c.constraint.TopologyKey != LabelHostname {
			size = s.distinctDomains(c.topology, feasible, ignored)
		}
		weight := math.Log(float64(size + 2))
		for i, node := range feasible {
			if domain := c.topology.domainOf[node]; domain >= 0 && !ignored(node) {
				// Accumulated in thousandths, rounded once at the end as
				// the scheduler rounds the float sum.
				raw[i] += int64(math.Round((float64(c.counts[domain])*weight + float64(c.constraint.MaxSkew-1)) * 1000))
			}
		}
	}
	least, most := int64(math.MaxInt64), int64(0)
	for i, node := range feasible {
		if ignored(node) {
			continue
		}
		raw[i] = (raw[i] + 500) / 1000
		least, most = min(least, raw[i]), max(most, raw[i])
	}
	for i, node := range feasible {
		switch {
		case ignored(node):
		case most == 0:
			total[i] += weightPodTopologySpread * maxNodeScore
		default:
			total[i] += weightPodTopologySpread * maxNodeScore * (most + least - raw[i]) / most
		}
	}
}

// distinctDomains counts the domains of the feasible nodes not ignored.
func (s *simulation) distinctDomains(topo *topology, feasible []int32, ignored func(int32) bool) int {
	if cap(s.seenDomain) < topo.domains {
		s.seenDomain = make([]bool, topo.domains)
	}
	seen := s.seenDomain[:topo.domains]
	clear(seen)
	n := 0
	for _, node := range feasible {
		if d := topo.domainOf[node]; d >= 0 && !ignored(node) && !seen[d] {
			seen[d] = true
			n++
		}
	}
	return n
}

// nodeImage is one node's copy of an image.
type nodeImage struct {
	node int32
	size int64
}

// indexImages lists, for each image a displaced pod names, the nodes that
// hold it (each once) with the size they report: ImageLocality scales an
// image's size by the share of all nodes (gone ones too: they stay in
// the scheduler's snapshot) that hold it.
func (s *simulation) indexImages() {
	s.imageNodes = make(map[string][]nodeImage)
	for _, p := range s.displaced {
		for _, image := range s.c.Pods[p].Template.Images {
			s.imageNodes[image] = nil
		}
	}
	if len(s.imageNodes) == 0 {
		return
	}
	if x := s.c.index(); x != nil {
		for name := range s.imageNodes {
			s.imageNodes[name] = x.holders.of(name)
		}
		return
	}
	for i := range s.c.Nodes {
		for _, image := range s.c.Nodes[i].Images {
			for _, name := range image.Names {
				list, wanted := s.imageNodes[name]
				if wanted && (len(list) == 0 || list[len(list)-1].node != int32(i)) {
					s.imageNodes[name] = append(list, nodeImage{node: int32(i), size: image.SizeBytes})
				}
			}
		}
	}
}

// imageLocality is ImageLocality's score of a node for a pod of t: the
// scaled sizes of the pod's images the node holds, 0 at 23 MiB or less,
// 100 at 1000 MiB per image or more. The scheduler divides by the
// containers, the model by the distinct images (the template keeps no
// more): the same for pods whose containers run different images.
func (s *simulation) imageLocality(t *Template, node int32) int64 {
	if len(t.Images) == 0 {
		return 0
	}
	scores, ok := s.imageScores[t]
	if !ok {
		scores = s.imageLocalityScores(t)
		s.imageScores[t] = scores
	}
	if scores == nil {
		return 0
	}
	return int64(scores[node])
}

// imageLocalityScores scores every node for a pod of t, nil when no node
// holds any of its images. A score is 0 to maxNodeScore, and a node that
// holds none scores 0 (the sum below the minimum threshold): one byte a
// node, where a map of sums per holding node took 40 times the memory for
// images every node holds, and a lookup per node scored.
func (s *simulation) imageLocalityScores(t *Template) []uint8 {
	var scores []uint8
	if s.imageSums == nil {
		s.imageSums = make([]int64, len(s.c.Nodes))
	}
	nodes := float64(len(s.c.Nodes))
	for _, image := range t.Images {
		holders := s.imageNodes[image]
		for _, h := range holders {
			s.imageSums[h.node] += int64(float64(h.size) * float64(len(holders)) / nodes)
		}
	}
	maxThreshold := int64(imageMaxContainerThreshold) * int64(len(t.Images))
	for _, image := range t.Images {
		for _, h := range s.imageNodes[image] {
			if scores == nil {
				scores = make([]uint8, len(s.c.Nodes))
			}
			sum := min(max(s.imageSums[h.node], imageMinThreshold), maxThreshold)
			scores[h.node] = uint8(maxNodeScore * (sum - imageMinThreshold) / (maxThreshold - imageMinThreshold))
		}
	}
	// Cleared after every score is taken: a node may hold several of the
	// images.
	for _, image := range t.Images {
		for _, h := range s.imageNodes[image] {
			s.imageSums[h.node] = 0
		}
	}
	return scores
}
