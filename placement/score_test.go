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
