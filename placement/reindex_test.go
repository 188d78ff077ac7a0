package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestPrepareFromMovesTheIndex: over random chains of states of a cluster
// (pods changed, moved, made pending or terminating, given another
// template, one with anti-affinity or in another namespace, added and
// removed; nodes given other images or the same ones anew), each state
// prepared from the index of the one before equals it built anew, and
// places the pods and finds the warm nodes as walking it does.
func TestPrepareFromMovesTheIndex(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		state := randomSettleCluster(r)
		state.Prepare()
		templates := templatesOf(state)
		anti := &Template{Namespace: "ns2", Owner: "StatefulSet/db", Labels: Labels{{Key: "app", Value: "db"}},
			Requests: Resources{MilliCPU: 500, Memory: 1 << 28, Pods: 1}, Recreated: true,
			AntiAffinity: []AffinityTerm{{Selector: selectApp("db"), TopologyKey: LabelHostname}}}
		templates = append(templates, anti, nil)
		for step := range 6 {
			next, before := changeState(r, state, templates)
			next.PrepareFrom(state.Index(), before)
			built := walked(next)
			built.Prepare()
			where := fmt.Sprintf("seed %d step %d (%d pods changed)", seed, step, len(before))
			compareIndexes(t, where, next, built)
			// Alike to the last empty list: the exporter's tests compare
			// indexes this way, not knowing their fields.
			if !reflect.DeepEqual(next.Index(), built.Index()) {
				t.Fatalf("%s: the moved index is not deeply equal to the one built", where)
			}

			gone := make([]bool, len(next.Nodes))
			for i := range gone {
				gone[i] = r.IntN(3) == 0
			}
			fromIndex, fromWalk := Simulate(next, gone), Simulate(walked(next), gone)
			if !reflect.DeepEqual(fromIndex.outcomes, fromWalk.outcomes) {
				t.Fatalf("%s: outcomes from the index %+v, walking %+v", where, fromIndex.outcomes, fromWalk.outcomes)
			}
			services := [][]*Template{templates[:len(templates)-1]}
			if got, want := fromIndex.WarmNodes(services), fromWalk.WarmNodes(services); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: warm nodes from the index %v, walking %v", where, got, want)
			}
			state = next
		}
	}
}

// TestPrepareFromWithoutIndex: a cluster prepared from no index, or from
// one of another number of nodes, is indexed whole.
func TestPrepareFromWithoutIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 7))
	c := randomSettleCluster(r)
	other := &Cluster{Nodes: c.Nodes[:len(c.Nodes)-1]}
	other.Prepare()
	for name, prev := range map[string]*Index{"none": nil, "other nodes": other.Index()} {
		got := walked(c)
		got.PrepareFrom(prev, nil)
		want := walked(c)
		want.Prepare()
		compareIndexes(t, name, got, want)
	}
	if walked(c).Index() != nil {
		t.Fatal("an unprepared cluster has an Index")
	}
}

// templatesOf lists the distinct templates of c's pods.
func templatesOf(c *Cluster) []*Template {
	var out []*Template
	for _, p := range c.Pods {
		if p.Template != nil && !slices.Contains(out, p.Template) {
			out = append(out, p.Template)
		}
	}
	if len(out) == 0 {
		out = append(out, &Template{Namespace: "ns0", Owner: "ReplicaSet/w", Requests: Resources{MilliCPU: 100, Pods: 1}, Recreated: true})
	}
	return out
}

// changeState returns the next state of c, which is not modified, and
// the pods c had at each index that changed, as PrepareFrom takes them.
func changeState(r *rand.Rand, c *Cluster, templates []*Template) (*Cluster, map[int32]Pod) {
	next := &Cluster{Nodes: slices.Clone(c.Nodes), Pods: slices.Clone(c.Pods)}
	before := make(map[int32]Pod)
	record := func(i int) {
		if _, seen := before[int32(i)]; seen {
			return
		}
		if i < len(c.Pods) {
			before[int32(i)] = c.Pods[i]
		} else {
			before[int32(i)] = Pod{Node: -1}
		}
	}
	randomPod := func(name string) Pod {
		p := Pod{Name: name, Node: int32(r.IntN(len(next.Nodes))), Ready: r.IntN(4) != 0, Template: templates[r.IntN(len(templates))]}
		switch r.IntN(8) {
		case 0:
			p.Node, p.Pending, p.Ready = -1, p.Template != nil, false
		case 1:
			p.Terminating = true
		case 2:
			p.Node = -1
		}
		return p
	}
	for range r.IntN(6) {
		switch op := r.IntN(4); {
		case op == 0 || len(next.Pods) == 0:
			record(len(next.Pods))
			next.Pods = append(next.Pods, randomPod(fmt.Sprintf("new%d", r.IntN(1000))))
		case op == 1:
			// Swap-removed, as the exporter's kept input removes a pod.
			i, last := r.IntN(len(next.Pods)), len(next.Pods)-1
			record(i)
			record(last)
			next.Pods[i] = next.Pods[last]
			next.Pods = next.Pods[:last]
		default:
			i := r.IntN(len(next.Pods))
			record(i)
			next.Pods[i] = randomPod(next.Pods[i].Name)
		}
	}
	// Nodes are replaced, as a snapshot replaces them: now and then with
	// an image more or one fewer, usually with the very same ones.
	for i := range next.Nodes {
		switch r.IntN(12) {
		case 0:
			next.Nodes[i].Images = slices.Clone(next.Nodes[i].Images)
		case 1:
			if n := len(next.Nodes[i].Images); n > 0 {
				next.Nodes[i].Images = slices.Clone(next.Nodes[i].Images[:n-1])
			}
		case 2:
			donor := c.Nodes[r.IntN(len(c.Nodes))].Images
			if len(donor) > 0 {
				next.Nodes[i].Images = append(slices.Clone(next.Nodes[i].Images), donor[r.IntN(len(donor))])
			}
		}
	}
	return next, before
}

// BenchmarkPrepareFrom moves the index of syntheticCluster(150,000) by a
// number of pods each moved to the next node, against building it whole
// ("build"): what a scrape during maintenance pays for the changes since
// the last one, a few after a cordon, thousands after minutes of churn
// without one (the follower builds whole past an eighth of the pods).
func BenchmarkPrepareFrom(b *testing.B) {
	c := syntheticCluster(150_000)
	c.Prepare()
	prev := c.Index()
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			walked(c).Prepare()
		}
	})
	for _, changes := range []int{1, 100, 18_750} {
		next := &Cluster{Nodes: c.Nodes, Pods: slices.Clone(c.Pods), PDBs: c.PDBs}
		before := make(map[int32]Pod, changes)
		for k := range changes {
			i := int32(k * (len(c.Pods) / changes))
			before[i] = c.Pods[i]
			next.Pods[i].Node = (next.Pods[i].Node + 1) % int32(len(c.Nodes))
		}
		b.Run(fmt.Sprintf("changes=%d", changes), func(b *testing.B) {
			for b.Loop() {
				walked(next).PrepareFrom(prev, before)
			}
		})
	}
}
