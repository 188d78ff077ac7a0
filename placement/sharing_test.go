package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomSharingCluster is a cluster where templates have what the shared
// verdicts and eligible nodes depend on: nodes in zones, some tainted,
// templates tolerating some taints, some with hard spread constraints on
// the zone or the hostname, some selecting nodes.
func randomSharingCluster(r *rand.Rand) *Cluster {
	c := &Cluster{}
	for i := range 3 + r.IntN(8) {
		name := fmt.Sprintf("n%02d", i)
		n := Node{Name: name, Labels: Labels{{Key: "disk", Value: []string{"ssd", "hdd"}[r.IntN(2)]}, {Key: LabelHostname, Value: name}},
			Allocatable: Resources{MilliCPU: 4000, Memory: 16 << 30, EphemeralStorage: 100 << 30, Pods: 110}}
		if r.IntN(6) != 0 {
			n.Labels = append(n.Labels, Label{Key: LabelZone, Value: fmt.Sprintf("z%d", r.IntN(3))})
		}
		if r.IntN(4) == 0 {
			n.Taints = []Taint{{Key: []string{"dedicated", "gpu"}[r.IntN(2)], Value: "x", Effect: []TaintEffect{EffectNoSchedule, EffectNoExecute}[r.IntN(2)]}}
		}
		c.Nodes = append(c.Nodes, n)
	}
	var templates []*Template
	for i := range 2 + r.IntN(6) {
		app := fmt.Sprintf("w%d", i)
		t := &Template{Namespace: "ns", Owner: "ReplicaSet/" + app, Labels: Labels{{Key: "app", Value: app}},
			Requests: Resources{MilliCPU: int64(250 * (1 + r.IntN(4))), Memory: 1 << 28, Pods: 1}, ScoreMilliCPU: 250, ScoreMemory: 1 << 28,
			PreemptNever: true, Recreated: true}
		switch r.IntN(3) {
		case 0:
			t.Tolerations = []Toleration{{Key: "dedicated", Operator: "Exists"}}
		case 1:
			t.Tolerations = []Toleration{{Key: "gpu", Operator: "Equal", Value: "x"}}
		}
		if r.IntN(4) == 0 {
			t.NodeSelector = Labels{{Key: "disk", Value: "ssd"}}
		}
		for range r.IntN(3) {
			key := []string{LabelZone, LabelHostname}[r.IntN(2)]
			t.Spread = append(t.Spread, SpreadConstraint{MaxSkew: int32(1 + r.IntN(2)), TopologyKey: key, MinDomains: 1,
				Selector: Selector{Requirements: []Requirement{{Key: "app", Operator: OpIn, Values: []string{app}}}}})
		}
		templates = append(templates, t)
	}
	for i := range 4 + r.IntN(30) {
		c.Pods = append(c.Pods, Pod{Template: templates[r.IntN(len(templates))], Name: fmt.Sprintf("p%02d", i), Node: int32(r.IntN(len(c.Nodes))), Ready: true})
	}
	return c
}

// unshared returns c with each template given what keeps the simulation
// from sharing its static verdicts and eligible nodes with another's
// whatever the rule for sharing, and nothing that changes where its pods
// may go: a toleration of a taint no node has, its own; a required node
// affinity every node passes (each has a hostname); and, to a template
// with spread constraints, one more on a topology key of its own that
// every node has with one value (one domain: never skewed).
func unshared(c *Cluster) *Cluster {
	out := &Cluster{Nodes: make([]Node, len(c.Nodes)), Pods: make([]Pod, len(c.Pods))}
	copies := map[*Template]*Template{}
	for i, p := range c.Pods {
		t, ok := copies[p.Template]
		if !ok {
			copied := *p.Template
			copied.Tolerations = append(append([]Toleration{}, p.Template.Tolerations...), Toleration{Key: "never-" + p.Template.Owner, Operator: "Exists"})
			if copied.NodeAffinity == nil {
				copied.NodeAffinity = []NodeSelectorTerm{{Expressions: []Requirement{{Key: LabelHostname, Operator: OpExists}}}}
			}
			if len(copied.Spread) > 0 {
				copied.Spread = append(append([]SpreadConstraint{}, p.Template.Spread...), SpreadConstraint{MaxSkew: 1, TopologyKey: "own-" + p.Template.Owner, MinDomains: 1,
					Selector: p.Template.Spread[0].Selector})
			}
			t = &copied
			copies[p.Template] = t
		}
		p.Template = t
		out.Pods[i] = p
	}
	for i, n := range c.Nodes {
		n.Labels = append(Labels{}, n.Labels...)
		for _, t := range copies {
			n.Labels = append(n.Labels, Label{Key: "own-" + t.Owner, Value: "all"})
		}
		sortLabels(n.Labels)
		out.Nodes[i] = n
	}
	return out
}

// TestSharedVerdictsChangeNoPlacement: templates that share static
// verdicts (equal tolerations, no node selection) and eligible nodes of
// their spread constraints (same topology keys, no node policy reading
// the template) are placed exactly as when nothing is shared.
func TestSharedVerdictsChangeNoPlacement(t *testing.T) {
	shared := 0
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 9))
		c := randomSharingCluster(r)
		gone := make([]bool, len(c.Nodes))
		for i := range gone {
			gone[i] = r.IntN(3) == 0
		}
		alone := unshared(c)
		got, want := Simulate(c, gone), Simulate(alone, gone)
		if !reflect.DeepEqual(got.outcomes, want.outcomes) {
			t.Fatalf("seed %d: outcomes sharing %+v, without %+v", seed, got.outcomes, want.outcomes)
		}
		// What the filters read, template by template: the static
		// verdicts and the eligible nodes and domains of each constraint.
		s, u := prepared(c, gone), prepared(alone, gone)
		for _, p := range s.displaced {
			mine, theirs := c.Pods[p].Template, alone.Pods[p].Template
			if !reflect.DeepEqual(s.static[mine], u.static[theirs]) {
				t.Fatalf("seed %d: static verdicts of %s sharing %v, without %v", seed, mine.Owner, s.static[mine], u.static[theirs])
			}
			for i, c := range s.spread[mine] {
				o := u.spread[theirs][i]
				if !reflect.DeepEqual(c.eligible, o.eligible) || !reflect.DeepEqual(c.eligibleDomain, o.eligibleDomain) || c.eligibleDomains != o.eligibleDomains {
					t.Fatalf("seed %d: eligible nodes of %s's constraint %d sharing %v, without %v", seed, mine.Owner, i, c.eligible, o.eligible)
				}
			}
		}
		if len(s.byTolerations) < len(s.static) || len(s.eligibility) < countSpreadCounters(s) {
			shared++
		}
	}
	// The property holds only if sharing happens.
	if shared < 50 {
		t.Fatalf("only %d of 400 cases shared anything", shared)
	}
}

// prepared is a simulation of c with gone taken away, its counters and
// every displaced template's static verdicts made, nothing placed.
func prepared(c *Cluster, gone []bool) *simulation {
	s := newSimulation(c, gone)
	s.findDisplaced()
	s.prepareResources()
	s.prepareCounters()
	for _, p := range s.displaced {
		s.staticVerdicts(c.Pods[p].Template)
	}
	return s
}

// countSpreadCounters counts the hard spread counters of a simulation.
func countSpreadCounters(s *simulation) int {
	n := 0
	for _, counters := range s.spread {
		n += len(counters)
	}
	return n
}
