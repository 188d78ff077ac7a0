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
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"
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
}

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
}

// Analyze computes the figures of every service and node of the cluster.
func Analyze(c *Cluster, opts Options) *Report {
	report := &Report{
		TopologyKeys: c.TopologyKeys,
		Services:     make([]Figures, 0, len(c.Services)),
		Nodes:        make([]NodeFigures, 0, len(c.Nodes)),
	}
	singleHomed := make(map[string]map[Kind]int)
	for _, svc := range c.Services {
		f := analyzeService(c, svc, opts)
		if f.SingleHomed() {
			node := f.NodeReplicas[0].Node
			if singleHomed[node] == nil {
				singleHomed[node] = make(map[Kind]int)
			}
			singleHomed[node][svc.Kind]++
		}
		report.Services = append(report.Services, f)
	}
	sort.Slice(report.Services, func(i, j int) bool {
		a, b := report.Services[i].Service, report.Services[j].Service
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	for _, node := range c.Nodes {
		report.Nodes = append(report.Nodes, NodeFigures{Node: node, SingleHomedServices: singleHomed[node.Name]})
	}
	sort.Slice(report.Nodes, func(i, j int) bool { return report.Nodes[i].Node.Name < report.Nodes[j].Node.Name })

	report.Domains = make([]Domains, len(c.TopologyKeys))
	for i, key := range c.TopologyKeys {
		report.Domains[i] = countDomains(c, key, i, maps.Keys(c.Nodes))
	}
	return report
}

func analyzeService(c *Cluster, svc *Service, opts Options) Figures {
	f := Figures{Service: svc}
	perNode := make(map[string]int, len(svc.Replicas))
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
		perNode[r.Node]++
		if node := c.Nodes[r.Node]; node != nil && node.Schedulable() {
			f.ReplicasSchedulable++
		}
	}

	f.NodeReplicas = make([]NodeCount, 0, len(perNode))
	largest := 0
	if unknownNode > 0 {
		// Each replica on an unknown node is its own share of one.
		largest = 1
	}
	for name, count := range perNode {
		f.NodeReplicas = append(f.NodeReplicas, NodeCount{Node: name, Count: count})
		largest = max(largest, count)
		f.Nodes++
		if node := c.Nodes[name]; node != nil && node.Schedulable() {
			f.SchedulableNodes++
		}
	}
	slices.SortFunc(f.NodeReplicas, func(a, b NodeCount) int { return strings.Compare(a.Node, b.Node) })
	if f.ReplicasReady > 0 {
		f.ConcentrationRatio = float64(largest) / float64(f.ReplicasReady)
	}

	f.Domains = make([]Domains, len(c.TopologyKeys))
	for i, key := range c.TopologyKeys {
		f.Domains[i] = countDomains(c, key, i, maps.Keys(perNode))
	}
	f.MinNodes = minNodes(svc, opts)
	return f
}

// countDomains counts distinct values of the topology key among the named
// nodes. Nodes without the label belong to no domain.
func countDomains(c *Cluster, key string, index int, nodeNames iter.Seq[string]) Domains {
	all := make(map[string]struct{})
	schedulable := make(map[string]struct{})
	for name := range nodeNames {
		node := c.Nodes[name]
		if node == nil || index >= len(node.Domains) || node.Domains[index] == "" {
			continue
		}
		all[node.Domains[index]] = struct{}{}
		if node.Schedulable() {
			schedulable[node.Domains[index]] = struct{}{}
		}
	}
	return Domains{Key: key, All: len(all), Schedulable: len(schedulable)}
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
