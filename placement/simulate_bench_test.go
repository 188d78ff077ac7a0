package placement

import (
	"fmt"
	"testing"
	"time"
)

// syntheticCluster builds a cluster like test/scale/synth's, with what a
// real one adds for placement: pods pods, 30 per node, 10 per service, dealt
// round-robin over the nodes and three zones; every pod requests CPU and
// memory; every node has allocatable for 40 such pods and holds 40 images;
// every tenth node is tainted and every tenth service tolerates it; every
// fifth service has a hard zone spread constraint and every seventh a
// hostname anti-affinity; every service has a PDB.
func syntheticCluster(pods int) *Cluster {
	nodeCount, serviceCount := max(1, pods/30), max(1, pods/10)
	c := &Cluster{Nodes: make([]Node, nodeCount)}
	for i := range c.Nodes {
		name := fmt.Sprintf("node-%05d", i)
		n := Node{
			Name: name,
			Labels: labels("kubernetes.io/hostname", name, "topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3),
				"kubernetes.io/os", "linux", "node.kubernetes.io/instance-type", "m5.2xlarge"),
			Allocatable: Resources{MilliCPU: 8000, Memory: 32 << 30, EphemeralStorage: 100 << 30, Pods: 110},
		}
		if i%10 == 0 {
			n.Taints = []Taint{{Key: "dedicated", Value: "batch", Effect: EffectNoSchedule}}
		}
		for j := range 40 {
			image := fmt.Sprintf("registry.example/team/svc-%05d:1", (i*40+j)%serviceCount)
			n.Images = append(n.Images, &Image{Names: []string{image, image + "@sha256:x"}, SizeBytes: 100 << 20})
		}
		c.Nodes[i] = n
	}
	next := 0
	for i := range serviceCount {
		name := fmt.Sprintf("svc-%05d", i)
		t := workload(name, 200, 512)
		t.Namespace = fmt.Sprintf("ns-%03d", i/100)
		t.Images = []string{fmt.Sprintf("registry.example/team/%s:1", name)}
		if i%10 == 0 {
			t.Tolerations = []Toleration{{Key: "dedicated", Operator: "Exists"}}
		}
		if i%5 == 0 {
			t.Spread = []SpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", Selector: selectApp(name), MinDomains: 1}}
		}
		if i%7 == 0 {
			t.AntiAffinity = []AffinityTerm{{Selector: selectApp(name), TopologyKey: "kubernetes.io/hostname"}}
		}
		for j := range pods / serviceCount {
			c.Pods = append(c.Pods, Pod{Template: t, Name: fmt.Sprintf("%s-%d", name, j), Node: int32(next % nodeCount), Ready: true})
			next++
		}
		c.PDBs = append(c.PDBs, PDB{Namespace: t.Namespace, Name: name, Selector: selectApp(name), DisruptionsAllowed: 1})
	}
	return c
}

// whatIf answers as the what-if API does for a batch: simulate, then sum
// up every service with a displaced pod, its warm nodes and its PDBs.
func whatIf(c *Cluster, gone []bool) int {
	r := Simulate(c, gone)
	byTemplate := make(map[*Template][]int32)
	for _, p := range r.Displaced() {
		byTemplate[c.Pods[p].Template] = append(byTemplate[c.Pods[p].Template], p)
	}
	unplaced := 0
	var services [][]*Template
	for t, pods := range byTemplate {
		unplaced += r.Summarize(pods).Unplaced
		services = append(services, []*Template{t})
		r.PDBs(pods)
	}
	r.WarmNodes(services)
	return unplaced
}

// BenchmarkWhatIf is a 10-node batch at 5,000 nodes and 150,000 pods; the
// target is 100 ms.
func BenchmarkWhatIf(b *testing.B) {
	for _, pods := range []int{10_000, 150_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			c := syntheticCluster(pods)
			gone := make([]bool, len(c.Nodes))
			for i := range min(10, len(gone)) {
				gone[i*len(gone)/10] = true
			}
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				whatIf(c, gone)
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/whatif")
		})
	}
}
