// Package spread computes how the replicas of each service are spread over
// the nodes of a cluster, and how much of that spread survives the nodes that
// are going away for maintenance.
//
// It is the model of the whole project: the exporter's metrics, the check
// plugin, the what-if preflight and the benchmarks all call Analyze. It knows
// nothing about client-go or Prometheus: its input is plain nodes and
// replicas, its output plain figures, so it is cheap to test and to reuse.
package spread

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// Reason says why a node will not keep its replicas through maintenance.
type Reason string

// The reasons a node is unschedulable. They are metric label values: keep
// them stable.
const (
	// ReasonCordoned: spec.unschedulable is set (kubectl cordon / drain).
	ReasonCordoned Reason = "cordoned"
	// ReasonNotReady: the node's Ready condition is not True.
	ReasonNotReady Reason = "not_ready"
	// ReasonMaintenanceTaint: a NoSchedule or NoExecute taint with a
	// maintenance key is set.
	ReasonMaintenanceTaint Reason = "maintenance_taint"
	// ReasonMaintenanceLabel: the node matches the maintenance label
	// selector, so an operator has planned it into a batch.
	ReasonMaintenanceLabel Reason = "maintenance_label"
	// ReasonDeleting: the node object is being deleted.
	ReasonDeleting Reason = "deleting"
	// ReasonWhatIf: a what-if question takes the node away.
	ReasonWhatIf Reason = "what_if"
)

// Reasons lists every reason in the order they are reported.
var Reasons = []Reason{ReasonCordoned, ReasonNotReady, ReasonMaintenanceTaint, ReasonMaintenanceLabel, ReasonDeleting, ReasonWhatIf}

// Node is a cluster node as the analysis sees it.
type Node struct {
	Name string
	// Domains holds the node's value for each topology key of the cluster,
	// in the order of Cluster.TopologyKeys; "" when the node lacks the label.
	Domains []string
	// Unschedulable lists why the node will not keep its replicas; empty
	// means the node is schedulable.
	Unschedulable []Reason
}

// Schedulable reports whether the node's replicas survive maintenance.
func (n *Node) Schedulable() bool { return len(n.Unschedulable) == 0 }

// Kind tells a Kubernetes Service from the kinds of workload.
type Kind string

// The kinds of service. They are metric label values.
const (
	KindService               Kind = "Service"
	KindDeployment            Kind = "Deployment"
	KindStatefulSet           Kind = "StatefulSet"
	KindReplicaSet            Kind = "ReplicaSet"
	KindReplicationController Kind = "ReplicationController"
)

// Replica is one pod of a workload or one endpoint of a Service.
type Replica struct {
	// Node is the name of the node the replica runs on; "" when unknown
	// (an unscheduled pod, an endpoint without nodeName).
	Node string
	// Ready is true when the pod or endpoint is Ready and not terminating.
	Ready bool
	// Finished is true for a pod that Succeeded or Failed (an evicted
	// one): it holds no room and nothing recreates it where it is, so a
	// node going away displaces nothing of it. It fits in the padding
	// after Ready: a replica is still 24 bytes.
	Finished bool
	// Pod is the replica's pod in Cluster.Placement.Pods plus one; 0
	// when unknown (no placement input, an endpoint without a pod).
	Pod int32
}

// PlacementPod returns the index of the replica's pod in
// Cluster.Placement.Pods, and whether it is known.
func (r Replica) PlacementPod() (int32, bool) { return r.Pod - 1, r.Pod > 0 }

// Service is a unit whose replicas should not share one fate: a Kubernetes
// Service (replicas are its endpoints) or a workload (replicas are its pods).
type Service struct {
	Namespace string
	Kind      Kind
	Name      string
	// DesiredReplicas is spec.replicas of a workload; -1 for a Service,
	// which has no desired count of its own.
	DesiredReplicas int
	// MinNodes is the kube-spread.io/min-nodes annotation, 0 when absent
	// or invalid (the default then applies).
	MinNodes int
	Replicas []Replica
}

// Cluster is the input of the analysis: every node and every service.
type Cluster struct {
	// TopologyKeys are the node labels that define failure domains, such
	// as topology.kubernetes.io/zone.
	TopologyKeys []string
	Nodes        map[string]*Node
	Services     []*Service
	// Placement is the input of the placement model (package placement):
	// nodes with their room, the pods with their templates, the budgets.
	// Nil when the source does not provide it.
	Placement *placement.Cluster
}

// Options tune the analysis.
type Options struct {
	// DefaultMinNodes is how many nodes a service needs when it does not
	// say so with an annotation.
	DefaultMinNodes int
}

// Domains counts the distinct topology domains of one topology key that
// hold ready replicas.
type Domains struct {
	Key         string
	All         int
	Schedulable int
}

// Figures is what the analysis says about one service.
type Figures struct {
	Service *Service
	// ReplicasReady counts ready replicas wherever they run.
	ReplicasReady int
	// ReplicasSchedulable counts ready replicas on schedulable nodes: the
	// ones that survive maintenance.
	ReplicasSchedulable int
	// Nodes and SchedulableNodes count distinct nodes holding ready replicas.
	Nodes            int
	SchedulableNodes int
	// ConcentrationRatio is the largest share of ready replicas on one
	// node (1 means single-homed); meaningful only when ReplicasReady > 0.
	ConcentrationRatio float64
	// Domains has one entry per topology key of the cluster.
	Domains []Domains
	// MinNodes is the number of nodes the service needs, after the cap.
	MinNodes int
	// NodeReplicas counts ready replicas per node, sorted by node name.
	NodeReplicas []NodeCount
}

// NodeCount is a number of ready replicas on one node.
type NodeCount struct {
	Node  string
	Count int
}

// SingleHomed reports whether two or more ready replicas all run on one node.
func (f *Figures) SingleHomed() bool {
	return f.ReplicasReady >= 2 && f.Nodes == 1 && len(f.NodeReplicas) == 1 && f.NodeReplicas[0].Count == f.ReplicasReady
}

// NodeFigures is what the analysis says about one node.
type NodeFigures struct {
	Node *Node
	// SingleHomedServices counts, per kind, the services with two or more
	// ready replicas that all run on this node.
	SingleHomedServices map[Kind]int
}

// Report is the result of Analyze: services sorted by namespace, kind and
// name, nodes sorted by name.
type Report struct {
	TopologyKeys []string
	Services     []Figures
	Nodes        []NodeFigures
	// Domains counts, per topology key, the distinct domains of all nodes
	// and of schedulable nodes: what the cluster could offer a service.
	Domains []Domains

	servicesByNode atomic.Pointer[servicesByNode]
}

// Analyze computes the figures of every service and node of the cluster.
func Analyze(c *Cluster, opts Options) *Report {
	report := &Report{
		TopologyKeys: c.TopologyKeys,
		Services:     make([]Figures, 0, len(c.Services)),
		Nodes:        make([]NodeFigures, 0, len(c.Nodes)),
	}
	a := newAnalyzer(c)
	for _, svc := range c.Services {
		report.Services = append(report.Services, a.service(svc, opts))
	}
	slices.SortFunc(report.Services, func(x, y Figures) int { return compareServices(x.Service, y.Service) })
	report.Nodes, report.Domains = a.nodeFigures(report.Services)
	return report
}

// nodeFigures counts, per node of the cluster, the single-homed services
// among figures, and the cluster's topology domains.
func (a *analyzer) nodeFigures(figures []Figures) ([]NodeFigures, []Domains) {
	c := a.c
	singleHomed := make(map[string]map[Kind]int)
	for i := range figures {
		if f := &figures[i]; f.SingleHomed() {
			node := f.NodeReplicas[0].Node
			if singleHomed[node] == nil {
				singleHomed[node] = make(map[Kind]int)
			}
			singleHomed[node][f.Service.Kind]++
		}
	}
	nodes := make([]NodeFigures, 0, len(c.Nodes))
	for _, node := range c.Nodes {
		nodes = append(nodes, NodeFigures{Node: node, SingleHomedServices: singleHomed[node.Name]})
	}
	slices.SortFunc(nodes, func(x, y NodeFigures) int { return strings.Compare(x.Node.Name, y.Node.Name) })

	all := make([]*Node, 0, len(c.Nodes))
	for _, node := range c.Nodes {
		all = append(all, node)
	}
	domains := make([]Domains, len(c.TopologyKeys))
	for i, key := range c.TopologyKeys {
		domains[i] = a.domains(key, i, all)
	}
	return nodes, domains
}

// analyzer holds what the figures of many services share: the cluster,
// scratch space, and slabs the per-service slices are cut from. At 150,000
// pods a map and three slices per service were most of the analysis' time
// and garbage; a service has a handful of replicas, so sorting a small
// slice beats hashing.
type analyzer struct {
	c *Cluster
	// names and nodes are scratch: the ready replicas' node names, and the
	// distinct nodes among them that the cluster has.
	names []string
	nodes []*Node
	// values is scratch for counting distinct topology domains.
	values []string
	// nodeCounts and domains are slabs: each service's NodeReplicas and
	// Domains are cut from them with their capacity capped, so appending
	// to one cannot overwrite another's.
	nodeCounts []NodeCount
	domainSlab []Domains
}

func newAnalyzer(c *Cluster) *analyzer {
	replicas := 0
	for _, svc := range c.Services {
		replicas += len(svc.Replicas)
	}
	return &analyzer{
		c:          c,
		nodeCounts: make([]NodeCount, 0, replicas),
		domainSlab: make([]Domains, 0, len(c.Services)*len(c.TopologyKeys)),
	}
}

func (a *analyzer) service(svc *Service, opts Options) Figures {
	f := Figures{Service: svc}
	a.names = a.names[:0]
	unknownNode := 0
	for _, r := range svc.Replicas {
		if !r.Ready {
			continue
		}
		f.ReplicasReady++
		if r.Node == "" {
			// Where a ready replica runs is unknown, so nobody can promise
			// it survives: it counts as ready but on no node.
			unknownNode++
			continue
		}
		a.names = append(a.names, r.Node)
	}
	slices.Sort(a.names)

	start := len(a.nodeCounts)
	a.nodes = a.nodes[:0]
	largest := 0
	if unknownNode > 0 {
		largest = 1
	}
	for i := 0; i < len(a.names); {
		name := a.names[i]
		count := 1
		for i+count < len(a.names) && a.names[i+count] == name {
			count++
		}
		i += count
		node := a.c.Nodes[name]
		if node == nil {
			// The node is gone (deleted; its pods linger until the pod
			// garbage collector removes them) or never was: a replica on
			// a node that does not exist is on no node.
			largest = max(largest, 1)
			continue
		}
		a.nodeCounts = append(a.nodeCounts, NodeCount{Node: name, Count: count})
		largest = max(largest, count)
		a.nodes = append(a.nodes, node)
		if node.Schedulable() {
			f.ReplicasSchedulable += count
			f.SchedulableNodes++
		}
	}
	f.NodeReplicas = a.nodeCounts[start:len(a.nodeCounts):len(a.nodeCounts)]
	f.Nodes = len(f.NodeReplicas)
	if f.ReplicasReady > 0 {
		f.ConcentrationRatio = float64(largest) / float64(f.ReplicasReady)
	}

	start = len(a.domainSlab)
	for i, key := range a.c.TopologyKeys {
		a.domainSlab = append(a.domainSlab, a.domains(key, i, a.nodes))
	}
	f.Domains = a.domainSlab[start:len(a.domainSlab):len(a.domainSlab)]
	f.MinNodes = minNodes(svc, opts)
	return f
}

// domains counts distinct values of the topology key (the index-th of the
// cluster) among nodes, and among the schedulable ones. Nodes without the
// label, and names the cluster does not know (nil), belong to no domain.
func (a *analyzer) domains(key string, index int, nodes []*Node) Domains {
	a.values = a.values[:0]
	for _, node := range nodes {
		if node != nil && index < len(node.Domains) && node.Domains[index] != "" && node.Schedulable() {
			a.values = append(a.values, node.Domains[index])
		}
	}
	slices.Sort(a.values)
	a.values = slices.Compact(a.values)
	schedulable := len(a.values)
	for _, node := range nodes {
		if node != nil && index < len(node.Domains) && node.Domains[index] != "" && !node.Schedulable() {
			a.values = append(a.values, node.Domains[index])
		}
	}
	slices.Sort(a.values)
	a.values = slices.Compact(a.values)
	return Domains{Key: key, All: len(a.values), Schedulable: schedulable}
}

// minNodes is how many nodes a service needs: its annotation or the
// default, capped at what it can reach. A workload cannot use more nodes
// than it desires replicas, a Service no more than it has endpoints, ready
// or not; otherwise a one-replica Deployment would page for ever.
func minNodes(svc *Service, opts Options) int {
	wanted := opts.DefaultMinNodes
	if svc.MinNodes > 0 {
		wanted = svc.MinNodes
	}
	possible := svc.DesiredReplicas
	if svc.DesiredReplicas < 0 {
		possible = len(svc.Replicas)
	}
	return max(0, min(wanted, possible))
}
