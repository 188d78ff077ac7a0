package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomSettleCluster is a small cluster with what Settle and the index
// look at varied: images shared between nodes, under two names, or
// under a name another image has too; pods of several priorities,
// pending, terminating, without a template, or not recreated (a
// DaemonSet's), and pods on one node.
func randomSettleCluster(r *rand.Rand) *Cluster {
	var images []*Image
	for i := range 1 + r.IntN(6) {
		image := &Image{Names: []string{fmt.Sprintf("img-%d:1", i)}, SizeBytes: int64(1+r.IntN(5)) << 20}
		if r.IntN(3) == 0 {
			image.Names = append(image.Names, fmt.Sprintf("img-%d@sha256:x", i))
		}
		images = append(images, image)
	}
	c := &Cluster{}
	for i := range 2 + r.IntN(8) {
		n := Node{Name: fmt.Sprintf("n%02d", i), Labels: Labels{{Key: LabelHostname, Value: fmt.Sprintf("n%02d", i)}},
			Allocatable: Resources{MilliCPU: 4000, Memory: 16 << 30, EphemeralStorage: 100 << 30, Pods: 110}}
		for range r.IntN(4) {
			n.Images = append(n.Images, images[r.IntN(len(images))])
		}
		c.Nodes = append(c.Nodes, n)
	}
	var templates []*Template
	for i := range 1 + r.IntN(5) {
		t := &Template{Namespace: fmt.Sprintf("ns%d", r.IntN(2)), Owner: fmt.Sprintf("ReplicaSet/w%d", i), Labels: Labels{{Key: "app", Value: fmt.Sprintf("w%d", i)}},
			Requests:      Resources{MilliCPU: int64(100 * (1 + r.IntN(8))), Memory: int64(1+r.IntN(4)) << 28, Pods: 1},
			ScoreMilliCPU: int64(100 * (1 + r.IntN(8))), ScoreMemory: int64(1+r.IntN(4)) << 28,
			Priority: int32(r.IntN(3)), PreemptNever: true, Recreated: r.IntN(6) != 0}
		for range r.IntN(3) {
			t.Images = append(t.Images, images[r.IntN(len(images))].Names[0])
		}
		t.Images = slices.Compact(slices.Sorted(slices.Values(t.Images)))
		templates = append(templates, t)
	}
	for i := range r.IntN(30) {
		p := Pod{Name: fmt.Sprintf("p%02d", i), Node: int32(r.IntN(len(c.Nodes))), Ready: true}
		if r.IntN(10) != 0 {
			p.Template = templates[r.IntN(len(templates))]
		}
		switch r.IntN(10) {
		case 0:
			p.Node, p.Pending, p.Ready = -1, p.Template != nil, false
		case 1:
			p.Terminating = true
		}
		c.Pods = append(c.Pods, p)
	}
	return c
}

// walked returns a copy of c without its index, to be walked or indexed
// anew.
func walked(c *Cluster) *Cluster {
	return &Cluster{Nodes: c.Nodes, Pods: c.Pods, PDBs: c.PDBs}
}

// TestSettleMovesTheIndex: over random campaigns of a few steps (nodes
// taken away, some wiped, some pods restarted), a prepared cluster's
// settled state equals the walked one's, its index moved from the last
// equals one built anew, and every simulation of the chain places the
// pods the same way from the moved index as by walking.
func TestSettleMovesTheIndex(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 3))
		indexed := randomSettleCluster(r)
		indexed.Prepare()
		plain := walked(indexed)
		for step := range 4 {
			gone, wiped := make([]bool, len(indexed.Nodes)), make([]bool, len(indexed.Nodes))
			for i := range gone {
				gone[i] = r.IntN(3) == 0
				wiped[i] = gone[i] && r.IntN(2) == 0
			}
			var restarted []bool
			if r.IntN(4) == 0 {
				restarted = make([]bool, len(indexed.Pods))
				for i := range restarted {
					restarted[i] = r.IntN(3) == 0
				}
			}
			fromIndex, fromWalk := SimulateRestart(indexed, gone, restarted), SimulateRestart(plain, gone, restarted)
			if !reflect.DeepEqual(fromIndex.outcomes, fromWalk.outcomes) {
				t.Fatalf("seed %d step %d: outcomes from the index %+v, walking %+v", seed, step, fromIndex.outcomes, fromWalk.outcomes)
			}
			// Settled states hold pulled images and wiped nodes.
			services := [][]*Template{templatesOf(indexed)}
			if got, want := fromIndex.WarmNodes(services), fromWalk.WarmNodes(services); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d: warm nodes from the index %v, walking %v", seed, step, got, want)
			}
			next, moved := fromIndex.Settle(wiped)
			nextPlain, movedPlain := fromWalk.Settle(wiped)
			if !reflect.DeepEqual(moved, movedPlain) || !reflect.DeepEqual(next.Pods, nextPlain.Pods) || !reflect.DeepEqual(imageNames(next), imageNames(nextPlain)) {
				t.Fatalf("seed %d step %d: settled from the index differs from walking:\nmoved %v, %v\npods %+v\n     %+v", seed, step, moved, movedPlain, next.Pods, nextPlain.Pods)
			}
			if next.index() == nil || nextPlain.index() != nil {
				t.Fatalf("seed %d step %d: a settled cluster is indexed when the simulated one is, only then", seed, step)
			}
			built := walked(next)
			built.Prepare()
			compareIndexes(t, fmt.Sprintf("seed %d step %d", seed, step), next, built)
			indexed, plain = next, nextPlain
		}
	}
}

// imageNames lists each node's images as name@size: Settle makes a new
// Image for each image pulled.
func imageNames(c *Cluster) [][]string {
	out := make([][]string, len(c.Nodes))
	for i := range c.Nodes {
		for _, image := range c.Nodes[i].Images {
			out[i] = append(out[i], fmt.Sprintf("%v@%d", image.Names, image.SizeBytes))
		}
	}
	return out
}

// compareIndexes fails the test unless got's index holds what want's,
// built by walking the same cluster, does.
func compareIndexes(t *testing.T, where string, got, want *Cluster) {
	t.Helper()
	g, w := got.index(), want.index()
	for n := range w.podsOn {
		if len(g.podsOn[n])+len(w.podsOn[n]) > 0 && !reflect.DeepEqual(g.podsOn[n], w.podsOn[n]) {
			t.Fatalf("%s: pods on node %d %v, want %v", where, n, g.podsOn[n], w.podsOn[n])
		}
		if g.hasLowest[n] != w.hasLowest[n] || w.hasLowest[n] && g.lowest[n] != w.lowest[n] {
			t.Fatalf("%s: lowest priority on node %d %v/%d, want %v/%d", where, n, g.hasLowest[n], g.lowest[n], w.hasLowest[n], w.lowest[n])
		}
	}
	if len(g.pending)+len(w.pending) > 0 && !reflect.DeepEqual(g.pending, w.pending) {
		t.Fatalf("%s: pending %v, want %v", where, g.pending, w.pending)
	}
	if !reflect.DeepEqual(g.used, w.used) || !reflect.DeepEqual(g.scoreUsed, w.scoreUsed) {
		t.Fatalf("%s: used %v %v, want %v %v", where, g.used, g.scoreUsed, w.used, w.scoreUsed)
	}
	if !reflect.DeepEqual(g.byNamespace, w.byNamespace) || !reflect.DeepEqual(g.antiAffinity, w.antiAffinity) {
		t.Fatalf("%s: pods by namespace or with anti-affinity differ: %v %v, want %v %v", where, g.byNamespace, g.antiAffinity, w.byNamespace, w.antiAffinity)
	}
	names := map[string]bool{"not-there:1": true}
	for i := range want.Nodes {
		for _, image := range want.Nodes[i].Images {
			for _, name := range image.Names {
				names[name] = true
			}
		}
	}
	for _, p := range want.Pods {
		if p.Template != nil {
			for _, name := range p.Template.Images {
				names[name] = true
			}
		}
	}
	for name := range names {
		if got, want := g.holders.of(name), w.holders.of(name); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: holders of %s %v, want %v", where, name, got, want)
		}
		if got, want := g.holders.largest(name), w.holders.largest(name); got != want {
			t.Fatalf("%s: largest %s %d, want %d", where, name, got, want)
		}
	}
}
