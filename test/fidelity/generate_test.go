package fidelity

import (
	"reflect"
	"testing"
)

// TestGenerateIsReproducible pins down that a seed names a case: a
// disagreement reported with its seed can be replayed.
func TestGenerateIsReproducible(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		if a, b := Generate(seed), Generate(seed); !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d gave two different cases:\n%s\n%s", seed, a.Describe(), b.Describe())
		}
	}
	if a, b := Generate(1).Describe(), Generate(2).Describe(); a == b {
		t.Errorf("seeds 1 and 2 gave the same case: %s", a)
	}
}

// TestGenerateCoversEveryConstraint checks that the seeds of `make
// fidelity` exercise every constraint the placement model claims, on
// Deployments and StatefulSets, and clusters from a few nodes to a few
// dozen.
func TestGenerateCoversEveryConstraint(t *testing.T) {
	seen := map[string]int{}
	minNodes, maxNodes := 1000, 0
	for seed := uint64(1); seed <= 60; seed++ {
		c := Generate(seed)
		minNodes, maxNodes = min(minNodes, len(c.Nodes)), max(maxNodes, len(c.Nodes))
		for _, n := range c.Nodes {
			if len(n.Spec.Taints) > 0 {
				seen["tainted node"]++
			}
		}
		for _, w := range c.Workloads {
			seen[w.Kind()]++
			spec := w.Template().Spec
			if len(spec.Tolerations) > 0 {
				seen["toleration"]++
			}
			if _, ok := spec.NodeSelector[diskLabel]; ok {
				seen["nodeSelector"]++
			}
			if a := spec.Affinity; a != nil && a.NodeAffinity != nil {
				seen["required node affinity"]++
			}
			if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
				seen["pod anti-affinity"]++
			}
			for _, tsc := range spec.TopologySpreadConstraints {
				seen["spread on "+shortKey(tsc.TopologyKey)]++
				if tsc.NodeTaintsPolicy == nil {
					seen["spread ignoring taints"]++
				} else {
					seen["spread honouring taints"]++
				}
			}
		}
	}
	for _, want := range []string{"Deployment", "StatefulSet", "tainted node", "toleration", "nodeSelector", "required node affinity",
		"pod anti-affinity", "spread on hostname", "spread on zone", "spread ignoring taints", "spread honouring taints"} {
		if seen[want] < 3 {
			t.Errorf("%s: %d times in 60 cases, want at least 3", want, seen[want])
		}
	}
	if minNodes > 4 || maxNodes < 20 {
		t.Errorf("clusters of %d to %d nodes, want from a few to a few dozen", minNodes, maxNodes)
	}
}
