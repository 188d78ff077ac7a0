package spread

import (
	"fmt"
	"testing"
)

// benchmarkSizes are the pod counts of the benchmarks: a small cluster, a
// medium one and the Kubernetes scalability limit (150,000 pods on 5,000
// nodes).
var benchmarkSizes = []int{1_000, 10_000, 150_000}

// syntheticCluster builds what cluster.Snapshot returns for a cluster of
// pods pods, 30 per node and 10 per service: every service appears twice,
// as its workload and as the Service in front of it, with the same replicas.
// Pods are dealt to nodes round-robin over three zones.
func syntheticCluster(pods int) *Cluster {
	nodeCount, serviceCount := max(1, pods/30), max(1, pods/10)
	c := &Cluster{TopologyKeys: []string{"topology.kubernetes.io/zone"}, Nodes: make(map[string]*Node, nodeCount)}
	names := make([]string, nodeCount)
	for i := range nodeCount {
		names[i] = fmt.Sprintf("node-%05d", i)
		c.Nodes[names[i]] = &Node{Name: names[i], Domains: []string{fmt.Sprintf("zone-%d", i%3)}}
	}
	next := 0
	for i := range serviceCount {
		replicas := make([]Replica, 0, pods/serviceCount)
		for range pods / serviceCount {
			replicas = append(replicas, Replica{Node: names[next%nodeCount], Ready: true})
			next++
		}
		ns, name := fmt.Sprintf("ns-%03d", i/100), fmt.Sprintf("svc-%05d", i)
		c.Services = append(c.Services,
			&Service{Namespace: ns, Kind: KindDeployment, Name: name, DesiredReplicas: len(replicas), Replicas: replicas},
			&Service{Namespace: ns, Kind: KindService, Name: name, DesiredReplicas: -1, Replicas: replicas},
		)
	}
	return c
}

func BenchmarkAnalyze(b *testing.B) {
	for _, pods := range benchmarkSizes {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			c := syntheticCluster(pods)
			b.ReportAllocs()
			for b.Loop() {
				Analyze(c, Options{DefaultMinNodes: 2})
			}
		})
	}
}
