package whatif

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// syntheticCampaignCluster is the shape of test/scale/synth and of
// placement's BenchmarkWhatIf cluster: pods pods, 30 per node, 10 per
// Deployment, dealt round-robin over the nodes of three zones; every pod
// requests CPU and memory; every node holds 40 images of 100 MiB; every
// fifth Deployment has a hard zone spread constraint.
func syntheticCampaignCluster(pods int) *spread.Cluster {
	nodeCount, serviceCount := max(1, pods/30), max(1, pods/10)
	c := &spread.Cluster{TopologyKeys: []string{placement.LabelZone}, Nodes: make(map[string]*spread.Node, nodeCount), Placement: &placement.Cluster{}}
	for i := range nodeCount {
		name := fmt.Sprintf("node-%05d", i)
		zone := fmt.Sprintf("zone-%d", i%3)
		c.Nodes[name] = &spread.Node{Name: name, Domains: []string{zone}}
		n := placement.Node{
			Name:        name,
			Labels:      placement.Labels{{Key: placement.LabelHostname, Value: name}, {Key: placement.LabelZone, Value: zone}},
			Allocatable: placement.Resources{MilliCPU: 8000, Memory: 32 << 30, EphemeralStorage: 100 << 30, Pods: 110},
		}
		for j := range 40 {
			image := fmt.Sprintf("team/svc-%05d:1", (i*40+j)%serviceCount)
			n.Images = append(n.Images, &placement.Image{Names: []string{image}, SizeBytes: 100 << 20})
		}
		c.Placement.Nodes = append(c.Placement.Nodes, n)
	}
	next := 0
	for i := range serviceCount {
		name := fmt.Sprintf("svc-%05d", i)
		t := &placement.Template{
			Namespace: fmt.Sprintf("ns-%03d", i/100), Owner: "ReplicaSet/" + name + "-1", Labels: placement.Labels{{Key: "app", Value: name}},
			Requests: placement.Resources{MilliCPU: 200, Memory: 512 << 20, Pods: 1}, ScoreMilliCPU: 200, ScoreMemory: 512 << 20,
			Images: []string{"team/" + name + ":1"}, Recreated: true,
		}
		if i%5 == 0 {
			t.Spread = []placement.SpreadConstraint{{MaxSkew: 1, TopologyKey: placement.LabelZone, MinDomains: 1,
				Selector: placement.Selector{Requirements: []placement.Requirement{{Key: "app", Operator: placement.OpIn, Values: []string{name}}}}}}
		}
		svc := &spread.Service{Namespace: t.Namespace, Kind: spread.KindDeployment, Name: name, DesiredReplicas: 10}
		for j := range pods / serviceCount {
			node := next % nodeCount
			c.Placement.Pods = append(c.Placement.Pods, placement.Pod{Template: t, Name: fmt.Sprintf("%s-1-%d", name, j), Node: int32(node), Ready: true})
			svc.Replicas = append(svc.Replicas, spread.Replica{Node: c.Placement.Nodes[node].Name, Ready: true, Pod: int32(len(c.Placement.Pods))})
			next++
		}
		c.Services = append(c.Services, svc)
	}
	return c
}

// BenchmarkCampaign is a 10-batch campaign of 10 nodes each, nodes
// returning, at 10,000 and 150,000 pods (5,000 nodes); the target
// at full size is 2 s and 200 MiB. It prints ms per campaign, the MiB a
// campaign allocates, and the heap's peak above the cluster's (sampled),
// measured, never asserted.
//
// The cluster is indexed and analysed before, as the handler's snapshot
// is for every question.
//
// The unsafe variant adds a Deployment of 2 replicas pinned (nodeSelector)
// to two nodes of the last batch: no change the remedy search tries can
// save it, so the search runs to its bound.
func BenchmarkCampaign(b *testing.B) {
	for _, pods := range []int{10_000, 150_000} {
		for _, unsafe := range []bool{false, true} {
			name := fmt.Sprintf("pods=%d", pods)
			if unsafe {
				name += "/unsafe"
			}
			b.Run(name, func(b *testing.B) { benchmarkCampaign(b, pods, unsafe) })
		}
	}
}

func benchmarkCampaign(b *testing.B, pods int, unsafe bool) {
	{
		{
			c := syntheticCampaignCluster(pods)
			nodes := len(c.Placement.Nodes)
			var batches [][]string
			for batch := range 10 {
				var names []string
				for k := range 10 {
					names = append(names, c.Placement.Nodes[(batch*10+k)*nodes/100].Name)
				}
				batches = append(batches, names)
			}
			if unsafe {
				pinTwoReplicas(c, batches[9][0], batches[9][9])
			}
			opts := spread.Options{DefaultMinNodes: 2}
			// As the handler does: its snapshot is indexed and analysed
			// once, for every question until the next change.
			c.Placement.Prepare()
			now := spread.Analyze(c, opts)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			// The heap's peak above the cluster's, sampled every 5 ms:
			// the extra memory a campaign question costs. HeapAlloc
			// counts the garbage not collected yet too, up to the
			// collector's headroom (GOGC: as much again as the live heap,
			// the cluster's included); the live heap, as the last
			// collection found it, is what the question keeps.
			liveBefore := liveHeap()
			done, peak, livePeak := make(chan struct{}), make(chan uint64), make(chan uint64)
			go func() {
				var highest, highestLive uint64
				var m runtime.MemStats
				ticker := time.NewTicker(5 * time.Millisecond)
				defer ticker.Stop()
				for {
					select {
					case <-done:
						peak <- highest
						livePeak <- highestLive
						return
					case <-ticker.C:
						runtime.ReadMemStats(&m)
						highest = max(highest, m.HeapAlloc)
						highestLive = max(highestLive, liveHeap())
					}
				}
			}()
			b.ReportAllocs()
			start := time.Now()
			var verdict spread.Verdict
			var remedy *Remedy
			for b.Loop() {
				campaign, err := askCampaign(c, now, batches, true, defaultRemedyBatches, opts)
				if err != nil {
					b.Fatal(err)
				}
				verdict, remedy = campaign.Verdict, campaign.Remedy
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/campaign")
			close(done)
			if highest := <-peak; highest > before.HeapAlloc {
				b.ReportMetric(float64(highest-before.HeapAlloc)/(1<<20), "MiB-peak-extra")
			}
			if highest := <-livePeak; highest > liveBefore {
				b.ReportMetric(float64(highest-liveBefore)/(1<<20), "MiB-live-peak-extra")
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MiB-alloc/campaign")
			b.Logf("pods=%d: verdict %s, remedy %+v", pods, verdict, remedy)
		}
	}
}

// pinTwoReplicas adds a Deployment "pinned" of two replicas that only the
// two named nodes may run.
func pinTwoReplicas(c *spread.Cluster, first, second string) {
	pinned := &placement.Template{
		Namespace: "pinned", Owner: "ReplicaSet/pinned-1", Labels: placement.Labels{{Key: "app", Value: "pinned"}},
		Requests: placement.Resources{MilliCPU: 100, Memory: 100 << 20, Pods: 1}, ScoreMilliCPU: 100, ScoreMemory: 100 << 20,
		NodeSelector: placement.Labels{{Key: "pin", Value: "yes"}}, Recreated: true,
	}
	svc := &spread.Service{Namespace: "pinned", Kind: spread.KindDeployment, Name: "pinned", DesiredReplicas: 2}
	for i := range c.Placement.Nodes {
		node := &c.Placement.Nodes[i]
		if node.Name != first && node.Name != second {
			continue
		}
		node.Labels = append(slices.Clone(node.Labels), placement.Label{Key: "pin", Value: "yes"})
		slices.SortFunc(node.Labels, func(a, b placement.Label) int { return strings.Compare(a.Key, b.Key) })
		c.Placement.Pods = append(c.Placement.Pods, placement.Pod{Template: pinned, Name: "pinned-1-" + node.Name, Node: int32(i), Ready: true})
		svc.Replicas = append(svc.Replicas, spread.Replica{Node: node.Name, Ready: true, Pod: int32(len(c.Placement.Pods))})
	}
	c.Services = append(c.Services, svc)
}

// liveHeap is the heap the last garbage collection found live.
func liveHeap() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
