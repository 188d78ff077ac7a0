package spread

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
)

// servicesByNode indexes the services of a report by the nodes their
// replicas run on, ready or not: what a change of those nodes can touch.
// Built on first use (ServicesOn), shared by every question asked of the
// report.
type servicesByNode struct {
	once   sync.Once
	byNode map[string][]int32
}

// ServicesOn returns the indexes in r.Services of the services with a
// replica, ready or not, on one of the named nodes, ascending, each once.
// Only these can see their figures, or the placement of their pods,
// change when those nodes change.
func (r *Report) ServicesOn(nodes []string) []int {
	x := r.indexByNode()
	x.once.Do(func() {
		x.byNode = make(map[string][]int32)
		for i := range r.Services {
			for _, replica := range r.Services[i].Service.Replicas {
				if replica.Node == "" {
					continue
				}
				// Services come in order: a service already listed for
				// the node is the last one.
				list := x.byNode[replica.Node]
				if len(list) == 0 || list[len(list)-1] != int32(i) {
					x.byNode[replica.Node] = append(list, int32(i))
				}
			}
		}
	})
	var out []int
	for _, name := range nodes {
		for _, i := range x.byNode[name] {
			out = append(out, int(i))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// indexByNode returns the report's index of services by node, not built
// yet on first use.
func (r *Report) indexByNode() *servicesByNode {
	if x := r.servicesByNode.Load(); x != nil {
		return x
	}
	r.servicesByNode.CompareAndSwap(nil, &servicesByNode{})
	return r.servicesByNode.Load()
}

// Reanalyze returns the report of c, a cluster that differs from the one
// base reports on only in the state of the named nodes (as
// WithNodesGone and WithNodesInService make it): the figures of the
// services with a replica on one of those nodes are computed anew, the
// others are base's, the cluster's domains are counted again. The result
// equals Analyze(c, opts) at the cost of the changed services: a what-if
// for ten nodes of 5,000 analyses some 300 services, not 30,000.
func Reanalyze(c *Cluster, base *Report, nodes []string, opts Options) *Report {
	report := &Report{
		TopologyKeys: c.TopologyKeys,
		Services:     slices.Clone(base.Services),
		Nodes:        slices.Clone(base.Nodes),
	}
	changed := base.ServicesOn(nodes)
	// The same services with the same replicas: base's index holds for
	// the new report, whose questions (a what-if of pending nodes asks
	// another) need not walk every replica again.
	report.servicesByNode.Store(base.indexByNode())
	replicas := 0
	for _, i := range changed {
		replicas += len(report.Services[i].Service.Replicas)
	}
	a := &analyzer{
		c:          c,
		nodeCounts: make([]NodeCount, 0, replicas),
		domainSlab: make([]Domains, 0, len(changed)*len(c.TopologyKeys)),
	}
	for _, i := range changed {
		report.Services[i] = a.service(report.Services[i].Service, opts)
	}
	// Which services are single-homed, and where, does not depend on
	// whether a node is schedulable: the node figures keep base's counts
	// and point at c's nodes.
	for _, name := range nodes {
		if i, found := slices.BinarySearchFunc(report.Nodes, name, func(n NodeFigures, name string) int {
			return strings.Compare(n.Node.Name, name)
		}); found {
			report.Nodes[i].Node = c.Nodes[name]
		}
	}
	all := make([]*Node, 0, len(c.Nodes))
	for _, node := range c.Nodes {
		all = append(all, node)
	}
	report.Domains = make([]Domains, len(c.TopologyKeys))
	for i, key := range c.TopologyKeys {
		report.Domains[i] = a.domains(key, i, all)
	}
	return report
}

// ReanalyzeAfter returns the report of next, a later state of the cluster
// base reports on in which the named nodes changed state and some
// services were replaced by moved copies (spread.Cluster.AfterDisplacement
// and AfterRestart give each moved service a new *Service, and keep the
// others): the services on those nodes and the replaced ones are analysed
// again, the single-homed counts and the cluster's domains recounted. A
// campaign asks this of each predicted state instead of a whole analysis.
// It equals Analyze(next, opts). When next has services base has not, or
// lacks some of base's (the exporter's snapshot after a Deployment was
// created or deleted), the services are matched by namespace, kind and
// name, in the order both list them.
func ReanalyzeAfter(next *Cluster, base *Report, nodes []string, opts Options) *Report {
	if len(next.Services) != len(base.Services) {
		return reanalyzeMatched(next, base, nodes, opts)
	}
	changed := base.ServicesOn(nodes)
	for i, svc := range next.Services {
		old := base.Services[i].Service
		if svc == old {
			continue
		}
		if compareServices(svc, old) != 0 {
			return reanalyzeMatched(next, base, nodes, opts)
		}
		changed = append(changed, i)
	}
	slices.Sort(changed)
	changed = slices.Compact(changed)

	report := &Report{TopologyKeys: next.TopologyKeys, Services: slices.Clone(base.Services)}
	replicas := 0
	for _, i := range changed {
		replicas += len(next.Services[i].Replicas)
	}
	a := &analyzer{
		c:          next,
		nodeCounts: make([]NodeCount, 0, replicas),
		domainSlab: make([]Domains, 0, len(changed)*len(next.TopologyKeys)),
	}
	for _, i := range changed {
		report.Services[i] = a.service(next.Services[i], opts)
	}
	report.Nodes, report.Domains = a.nodeFigures(report.Services)
	// A campaign asks ServicesOn of every state: moving base's index (built
	// above) by the changed services costs their replicas, building it
	// anew every replica of the cluster.
	report.servicesByNode.Store(base.indexByNode().moved(base.Services, report.Services, changed))
	return report
}

// moved returns the index of a report whose services are after, given
// this index of before, where only the services at the indexes changed
// (ascending) may differ.
func (x *servicesByNode) moved(before, after []Figures, changed []int) *servicesByNode {
	byNode := maps.Clone(x.byNode)
	// copied marks the lists already copied: x's lists are shared with
	// its report and never written.
	copied := make(map[string]bool)
	edit := func(node string) []int32 {
		list := byNode[node]
		if !copied[node] {
			list = slices.Clone(list)
			copied[node] = true
		}
		return list
	}
	for _, i := range changed {
		from, to := before[i].Service, after[i].Service
		if from == to {
			continue
		}
		id := int32(i)
		for _, r := range from.Replicas {
			if r.Node == "" {
				continue
			}
			if list := edit(r.Node); len(list) > 0 {
				if at, found := slices.BinarySearch(list, id); found {
					list = slices.Delete(list, at, at+1)
				}
				byNode[r.Node] = list
			}
		}
		for _, r := range to.Replicas {
			if r.Node == "" {
				continue
			}
			list := edit(r.Node)
			if at, found := slices.BinarySearch(list, id); !found {
				list = slices.Insert(list, at, id)
			}
			byNode[r.Node] = list
		}
	}
	for node := range copied {
		if len(byNode[node]) == 0 {
			delete(byNode, node)
		}
	}
	out := &servicesByNode{byNode: byNode}
	out.once.Do(func() {}) // complete: ServicesOn must not build it again
	return out
}

// reanalyzeMatched is ReanalyzeAfter for a next whose services are not
// base's one for one: each of next's services that base has, the same
// *Service, and on none of the nodes keeps its figures; the others are
// analysed. Both list their services sorted (see Analyze).
func reanalyzeMatched(next *Cluster, base *Report, nodes []string, opts Options) *Report {
	stale := make(map[int]bool)
	for _, i := range base.ServicesOn(nodes) {
		stale[i] = true
	}
	// kept[i] is the index in base of next's i-th service's figures, -1
	// when it is to be analysed.
	kept := make([]int, len(next.Services))
	replicas, analysed, j := 0, 0, 0
	for i, svc := range next.Services {
		for j < len(base.Services) && compareServices(base.Services[j].Service, svc) < 0 {
			j++
		}
		kept[i] = -1
		if j < len(base.Services) && base.Services[j].Service == svc && !stale[j] {
			kept[i] = j
			continue
		}
		replicas += len(svc.Replicas)
		analysed++
	}
	a := &analyzer{
		c:          next,
		nodeCounts: make([]NodeCount, 0, replicas),
		domainSlab: make([]Domains, 0, analysed*len(next.TopologyKeys)),
	}
	report := &Report{TopologyKeys: next.TopologyKeys, Services: make([]Figures, len(next.Services))}
	for i, svc := range next.Services {
		if kept[i] >= 0 {
			report.Services[i] = base.Services[kept[i]]
		} else {
			report.Services[i] = a.service(svc, opts)
		}
	}
	report.Nodes, report.Domains = a.nodeFigures(report.Services)
	// The index by node is built anew on first use: the services moved.
	return report
}

// compareServices orders services as a report lists them: by namespace,
// kind and name.
func compareServices(a, b *Service) int {
	return cmp.Or(
		strings.Compare(a.Namespace, b.Namespace),
		strings.Compare(string(a.Kind), string(b.Kind)),
		strings.Compare(a.Name, b.Name),
	)
}
