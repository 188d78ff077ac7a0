package spread

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// randomCluster is a small cluster with everything the analysis looks at
// varied: zones and a missing zone label, nodes already unschedulable,
// replicas not ready, on no node or on a node the cluster lacks, several
// replicas on one node, services on no node at all.
func randomCluster(r *rand.Rand) *Cluster {
	c := &Cluster{TopologyKeys: []string{"zone", "rack"}, Nodes: map[string]*Node{}}
	var names []string
	for i := range 2 + r.IntN(12) {
		name := fmt.Sprintf("n%02d", i)
		node := &Node{Name: name, Domains: []string{fmt.Sprintf("z%d", r.IntN(3)), fmt.Sprintf("r%d", r.IntN(5))}}
		if r.IntN(6) == 0 {
			node.Domains[0] = ""
		}
		if r.IntN(5) == 0 {
			node.Unschedulable = []Reason{ReasonCordoned}
		}
		c.Nodes[name] = node
		names = append(names, name)
	}
	for i := range r.IntN(20) {
		svc := &Service{Namespace: "ns", Kind: KindDeployment, Name: fmt.Sprintf("s%02d", i), DesiredReplicas: r.IntN(6), MinNodes: r.IntN(3)}
		for range r.IntN(7) {
			replica := Replica{Node: names[r.IntN(len(names))], Ready: r.IntN(5) != 0}
			switch r.IntN(12) {
			case 0:
				replica.Node = ""
			case 1:
				replica.Node = "gone-node"
			}
			svc.Replicas = append(svc.Replicas, replica)
		}
		c.Services = append(c.Services, svc)
	}
	return c
}

// TestReanalyzeEqualsAnalyze: for random clusters and random sets of
// nodes taken away or put back in service, Reanalyze from the report of
// the cluster gives what Analyze of the changed cluster gives.
func TestReanalyzeEqualsAnalyze(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 7))
		c := randomCluster(r)
		base := Analyze(c, Options{DefaultMinNodes: 2})
		var asked []string
		for name := range c.Nodes {
			if r.IntN(3) == 0 {
				asked = append(asked, name)
			}
		}
		if len(asked) == 0 {
			continue
		}
		for _, change := range []struct {
			name string
			do   func([]string) (*Cluster, error)
		}{{"gone", c.WithNodesGone}, {"in service", c.WithNodesInService}} {
			changed, err := change.do(asked)
			if err != nil {
				t.Fatal(err)
			}
			want := Analyze(changed, Options{DefaultMinNodes: 2})
			got := Reanalyze(changed, base, asked, Options{DefaultMinNodes: 2})
			if !reflect.DeepEqual(got.Services, want.Services) || !reflect.DeepEqual(got.Nodes, want.Nodes) ||
				!reflect.DeepEqual(got.Domains, want.Domains) || !reflect.DeepEqual(got.TopologyKeys, want.TopologyKeys) {
				t.Fatalf("seed %d, %s %v:\ngot  %+v\nwant %+v", seed, change.name, asked, got, want)
			}
		}
	}
}

func TestServicesOn(t *testing.T) {
	c := &Cluster{Nodes: nodes("a", "b", "c"), Services: []*Service{
		{Namespace: "ns", Kind: KindDeployment, Name: "one", Replicas: append(ready("a", "a", "b"), Replica{Node: "c"})},
		{Namespace: "ns", Kind: KindDeployment, Name: "two", Replicas: ready("b")},
		{Namespace: "ns", Kind: KindDeployment, Name: "three", Replicas: ready("")},
	}}
	report := Analyze(c, Options{})
	for _, tc := range []struct {
		nodes []string
		want  []int
	}{
		{[]string{"a"}, []int{0}},
		{[]string{"b", "a"}, []int{0, 2}}, // sorted by name: one, three, two
		{[]string{"c"}, []int{0}},         // a replica that is not ready counts
		{[]string{"x"}, nil},
	} {
		if got := report.ServicesOn(tc.nodes); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ServicesOn(%v) = %v, want %v", tc.nodes, got, tc.want)
		}
	}
}

// TestReanalyzeAfterEqualsAnalyze: for random clusters, a later state with
// random nodes changed and random services replaced by moved copies (as a
// campaign's next state), ReanalyzeAfter from the earlier report gives
// what Analyze of the later state gives.
func TestReanalyzeAfterEqualsAnalyze(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 11))
		c := randomCluster(r)
		// A snapshot lists its services in the report's order.
		c.Services = sortedServices(c)
		base := Analyze(c, Options{DefaultMinNodes: 2})
		names, asked, next := someNodesGone(t, r, c, 4)
		services := slices.Clone(next.Services)
		for i, svc := range services {
			if r.IntN(3) != 0 || len(svc.Replicas) == 0 {
				continue
			}
			moved := *svc
			moved.Replicas = slices.Clone(svc.Replicas)
			moved.Replicas[r.IntN(len(moved.Replicas))].Node = names[r.IntN(len(names))]
			services[i] = &moved
		}
		later := *next
		later.Services = services
		want := Analyze(&later, Options{DefaultMinNodes: 2})
		got := ReanalyzeAfter(&later, base, asked, Options{DefaultMinNodes: 2})
		if !reflect.DeepEqual(got.Services, want.Services) || !reflect.DeepEqual(got.Nodes, want.Nodes) ||
			!reflect.DeepEqual(got.Domains, want.Domains) {
			t.Fatalf("seed %d, %v gone:\ngot  %+v\nwant %+v", seed, asked, got, want)
		}
		// The later report's index of services by node is base's moved by
		// the changed services, not built from every replica.
		want.ServicesOn(nil)
		if got, want := got.indexByNode(), want.indexByNode(); !reflect.DeepEqual(got.byNode, want.byNode) {
			t.Fatalf("seed %d: services by node\ngot  %v\nwant %v", seed, got.byNode, want.byNode)
		}
	}
}

// sortedServices returns the services in the report's order.
func sortedServices(c *Cluster) []*Service {
	out := slices.Clone(c.Services)
	slices.SortFunc(out, func(a, b *Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Name, b.Name))
	})
	return out
}

// TestReanalyzeAfterServicesAddedAndDropped: a later state in which some
// services are gone, some are new and some moved, with nodes changed too
// (the exporter's next snapshot after Deployments were created and
// deleted), gives what Analyze gives; so does its own next state, whose
// base has no index by node yet.
func TestReanalyzeAfterServicesAddedAndDropped(t *testing.T) {
	opts := Options{DefaultMinNodes: 2}
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 13))
		c := randomCluster(r)
		c.Services = sortedServices(c)
		base := Analyze(c, opts)
		for step := range 3 {
			names, asked, next := someNodesGone(t, r, c, 5)
			var services []*Service
			for _, svc := range next.Services {
				switch r.IntN(6) {
				case 0: // dropped
				case 1:
					moved := *svc
					moved.Replicas = append(slices.Clone(svc.Replicas), Replica{Node: names[r.IntN(len(names))], Ready: true})
					services = append(services, &moved)
				default:
					services = append(services, svc)
				}
			}
			for i := range r.IntN(4) {
				services = append(services, &Service{Namespace: "ns", Kind: KindStatefulSet, Name: fmt.Sprintf("new-%d-%d", step, i),
					DesiredReplicas: 3, Replicas: []Replica{{Node: names[r.IntN(len(names))], Ready: true}}})
			}
			later := *next
			later.Services = services
			later.Services = sortedServices(&later)
			want := Analyze(&later, opts)
			got := ReanalyzeAfter(&later, base, asked, opts)
			if !reflect.DeepEqual(got.Services, want.Services) || !reflect.DeepEqual(got.Nodes, want.Nodes) ||
				!reflect.DeepEqual(got.Domains, want.Domains) {
				t.Fatalf("seed %d step %d, %v gone:\ngot  %+v\nwant %+v", seed, step, asked, got, want)
			}
			c, base = &later, got
		}
	}
}

// someNodesGone takes about one node in oneIn of c away, at random, and
// returns the names of all c's nodes, those taken, and the cluster
// without them (c itself when none is).
func someNodesGone(t *testing.T, r *rand.Rand, c *Cluster, oneIn int) (names, asked []string, next *Cluster) {
	t.Helper()
	for name := range c.Nodes {
		names = append(names, name)
		if r.IntN(oneIn) == 0 {
			asked = append(asked, name)
		}
	}
	next = c
	if len(asked) > 0 {
		var err error
		if next, err = c.WithNodesGone(asked); err != nil {
			t.Fatal(err)
		}
	}
	return names, asked, next
}
