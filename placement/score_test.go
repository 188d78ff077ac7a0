package placement

import "testing"

// TestScorePlugins pins which node one displaced pod goes to when a single
// score plugin decides: every case has the gone node "gone" holding the
// pod, and nodes equal in room.
func TestScorePlugins(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name  string
		build func(s *scenario, web *Template)
		want  string
	}{
		{
			name:  "equal nodes: the lowest name wins the tie",
			build: func(s *scenario, web *Template) {},
			want:  "a",
		},
		{
			name: "ImageLocality: the node holding the image",
			build: func(s *scenario, web *Template) {
				web.Images = []string{"web:1"}
				s.c.Nodes[2].Images = []*Image{{Names: []string{"web:1"}, SizeBytes: 500 * mib}}
			},
			want: "b",
		},
		{
			name: "ImageLocality: an image under 23 MiB scores nothing",
			build: func(s *scenario, web *Template) {
				web.Images = []string{"web:1"}
				s.c.Nodes[2].Images = []*Image{{Names: []string{"web:1"}, SizeBytes: 20 * mib}}
			},
			want: "a",
		},
		{
			name: "TaintToleration: away from a PreferNoSchedule taint",
			build: func(s *scenario, web *Template) {
				s.c.Nodes[1].Taints = []Taint{{Key: "old", Effect: EffectPreferNoSchedule}}
			},
			want: "b",
		},
		{
			name: "TaintToleration: a tolerated PreferNoSchedule taint counts for nothing",
			build: func(s *scenario, web *Template) {
				s.c.Nodes[1].Taints = []Taint{{Key: "old", Effect: EffectPreferNoSchedule}}
				web.Tolerations = []Toleration{{Key: "old", Operator: "Exists"}}
			},
			want: "a",
		},
		{
			name: "NodeAffinity: the preferred term's node",
			build: func(s *scenario, web *Template) {
				s.c.Nodes[2].Labels = labels("disk", "ssd", "kubernetes.io/hostname", "b")
				web.PreferredAffinity = []PreferredTerm{{Weight: 10, Term: NodeSelectorTerm{Expressions: []Requirement{{Key: "disk", Operator: OpIn, Values: []string{"ssd"}}}}}}
			},
			want: "b",
		},
		{
			name: "default spreading: away from the node with a replica",
			build: func(s *scenario, web *Template) {
				s.pods(web, "a")
			},
			want: "b",
		},
		{
			// The replica on a and a 1000 MiB image there and on the gone
			// node: ImageLocality gives a 65, spreading gives b 68 more.
			name: "default spreading outweighs a large image on the other node",
			build: func(s *scenario, web *Template) {
				s.pods(web, "a")
				web.Images = []string{"web:1"}
				image := []*Image{{Names: []string{"web:1"}, SizeBytes: 1000 * mib}}
				s.c.Nodes[0].Images, s.c.Nodes[1].Images = image, image
			},
			want: "b",
		},
		{
			name: "a soft zone constraint: the other zone",
			build: func(s *scenario, web *Template) {
				s.c.Nodes[1].Labels = labels("kubernetes.io/hostname", "a", LabelZone, "z1")
				s.c.Nodes[2].Labels = labels("kubernetes.io/hostname", "b", LabelZone, "z1")
				s.node("c", 8000, 16, LabelZone, "z2")
				s.c.Nodes[0].Labels = labels("kubernetes.io/hostname", "gone", LabelZone, "z2")
				other := workload("other", 100, 100)
				s.pods(other, "c")
				s.pods(web, "b")
				web.SoftSpread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: LabelZone, Selector: selectApp("web"), MinDomains: 1}}
			},
			// z1 holds one web pod on b, z2 none: c.
			want: "c",
		},
		{
			name: "hard constraints only: no default spreading",
			build: func(s *scenario, web *Template) {
				s.pods(web, "a")
				web.Images = []string{"web:1"}
				image := []*Image{{Names: []string{"web:1"}, SizeBytes: 500 * mib}}
				s.c.Nodes[0].Images, s.c.Nodes[1].Images = image, image
				web.Spread = []SpreadConstraint{{MaxSkew: 5, TopologyKey: LabelHostname, Selector: selectApp("web"), MinDomains: 1}}
			},
			// The image on a wins; with the default spreading instead of
			// the hard constraint, b would (as in the case above).
			want: "a",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s scenario
			s.node("gone", 8000, 16)
			s.node("a", 8000, 16)
			s.node("b", 8000, 16)
			s.gone = []string{"gone"}
			web := workload("web", 1000, 1024)
			tc.build(&s, web)
			pod := s.pods(web, "gone")[0]
			out, ok := s.simulate().Outcome(pod)
			if !ok || out.Node < 0 {
				t.Fatalf("not placed: %+v", out)
			}
			if got := s.c.Nodes[out.Node].Name; got != tc.want {
				t.Errorf("placed on %s, want %s", got, tc.want)
			}
		})
	}
}

// TestImageLocalityScores pins ImageLocality's score of every node, worked
// by hand from kube-scheduler's formula: each image's size scaled by the
// share of nodes holding it, summed over the pod's images, then 0 at 23
// MiB or less and 100 at 1000 MiB per image. The second template reuses
// nodes the first summed on: each template's sums start from zero.
func TestImageLocalityScores(t *testing.T) {
	const mib = 1 << 20
	s := &scenario{gone: []string{"gone"}}
	s.node("n0", 4000, 8).Images = []*Image{{Names: []string{"a:1"}, SizeBytes: 300 * mib}, {Names: []string{"b:1"}, SizeBytes: 200 * mib}}
	s.node("n1", 4000, 8).Images = []*Image{{Names: []string{"a:1"}, SizeBytes: 300 * mib}}
	s.node("n2", 4000, 8).Images = []*Image{{Names: []string{"b:1"}, SizeBytes: 100 * mib}}
	s.node("gone", 4000, 8)
	both := workload("both", 100, 100)
	both.Images = []string{"a:1", "b:1"}
	onlyA := workload("only-a", 100, 100)
	onlyA.Images = []string{"a:1"}
	none := workload("none", 100, 100)
	none.Images = []string{"c:1"}
	s.pods(both, "gone")
	s.pods(onlyA, "gone")
	s.pods(none, "gone")

	sim := newSimulation(&s.c, []bool{false, false, false, true})
	sim.findDisplaced()
	sim.indexImages()
	for _, tc := range []struct {
		template *Template
		// want is the score of n0, n1, n2 and gone.
		want [4]int64
	}{
		// Two images, 2000 MiB for 100: n0 holds both, each on 2 of 4
		// nodes, (300+200)/2 = 250 MiB: 100*(250-23)/(2000-23) = 11;
		// n1 150 MiB: 6; n2 50 MiB: 1.
		{both, [4]int64{11, 6, 1, 0}},
		// One image, 1000 MiB for 100: 150 MiB on n0 and n1 scores
		// 100*(150-23)/(1000-23) = 12.
		{onlyA, [4]int64{12, 12, 0, 0}},
		// An image no node holds.
		{none, [4]int64{0, 0, 0, 0}},
		// Asked again: the memoized scores.
		{both, [4]int64{11, 6, 1, 0}},
	} {
		var got [4]int64
		for node := range got {
			got[node] = sim.imageLocality(tc.template, int32(node))
		}
		if got != tc.want {
			t.Errorf("%s: scores of n0, n1, n2, gone = %v, want %v", tc.template.Owner, got, tc.want)
		}
	}
}
