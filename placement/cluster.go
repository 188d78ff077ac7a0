// Package placement answers where the replicas displaced by maintenance go:
// for a set of nodes going away, which of their pods the remaining
// schedulable nodes have room for, all displaced pods competing for that
// room; why the others do not fit; which nodes already hold a service's
// images (a warm start rather than a pull from the registry); and which
// PodDisruptionBudgets the evictions would exceed.
//
// It mimics kube-scheduler's default profile where that changes how many
// pods fit: each constraint is one filter function with a stable reason,
// in the scheduler's filter order; pods are placed one at a time, highest
// priority first, then by namespace, owner name (not kind) and pod name,
// the order of a scheduler that finds every replacement created (see
// Order); each goes to the feasible node with the best score of the
// default profile's score plugins (score.go) among the sample of nodes
// the scheduler would look at. It is a model, read from
// the scheduler's sources and never copied: what it does not understand
// (required pod affinity, volumes, DRA claims, other schedulers, host
// ports) makes the answer unknown, never "fits".
//
// Like package spread it knows nothing about client-go or Prometheus: its
// input is plain nodes, pod templates and pods, with quantities already
// parsed into int64 milli-CPU and bytes by the caller.
package placement

// Resources are amounts of the resources a pod requests and a node
// offers. CPU is in millicores, memory and storage in bytes, pods a count;
// extended resources (GPUs, hugepages, device plugins) in their own unit.
type Resources struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	Pods             int64
	// Extended holds the other resources, sorted by name, each once, none
	// zero.
	Extended []Quantity
}

// Quantity is an amount of a named extended resource.
type Quantity struct {
	Name  string
	Value int64
}

// Label is one label of a node or pod.
type Label struct{ Key, Value string }

// Labels are labels sorted by key, each key once.
type Labels []Label

// Lookup returns the value of a label and whether it is set.
func (l Labels) Lookup(key string) (string, bool) {
	// Linear for the few labels of a pod; binary beyond, for nodes.
	if len(l) <= 8 {
		for _, label := range l {
			if label.Key == key {
				return label.Value, true
			}
		}
		return "", false
	}
	lo, hi := 0, len(l)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l[mid].Key < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(l) && l[lo].Key == key {
		return l[lo].Value, true
	}
	return "", false
}

// TaintEffect is the effect of a taint or toleration.
type TaintEffect string

// The effects, as in the Kubernetes API. PreferNoSchedule keeps no pod
// away, so the filters ignore it.
const (
	EffectNoSchedule       TaintEffect = "NoSchedule"
	EffectPreferNoSchedule TaintEffect = "PreferNoSchedule"
	EffectNoExecute        TaintEffect = "NoExecute"
)

// Taint is a node's taint.
type Taint struct {
	Key, Value string
	Effect     TaintEffect
}

// Toleration is a pod's toleration. Operator is "Exists" or "Equal"
// (the API's default when empty); an empty Effect tolerates every effect,
// an empty Key with Exists every taint.
type Toleration struct {
	Key, Operator, Value string
	Effect               TaintEffect
}

// Operator is the operator of a selector requirement.
type Operator string

// The operators of label and node selector requirements. Gt and Lt are
// for node selectors only.
const (
	OpIn           Operator = "In"
	OpNotIn        Operator = "NotIn"
	OpExists       Operator = "Exists"
	OpDoesNotExist Operator = "DoesNotExist"
	OpGt           Operator = "Gt"
	OpLt           Operator = "Lt"
)

// Requirement is one requirement of a selector.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string
}

// Selector is a label selector: every requirement must hold. The
// matchLabels of the API are requirements with OpIn and one value.
type Selector struct {
	Requirements []Requirement
	// Nothing: the selector matches no object (the API's nil selector).
	Nothing bool
}

// NodeSelectorTerm is one term of a required node affinity: every
// expression on the node's labels and every field requirement (the only
// field is metadata.name) must hold. An empty term matches no node.
type NodeSelectorTerm struct {
	Expressions []Requirement
	Fields      []Requirement
}

// SpreadConstraint is a hard topology spread constraint
// (whenUnsatisfiable: DoNotSchedule). The caller has merged matchLabelKeys
// into the selector, as the API server does.
type SpreadConstraint struct {
	MaxSkew     int32
	TopologyKey string
	Selector    Selector
	// MinDomains is 1 when the API leaves it unset.
	MinDomains int32
	// IgnoreNodeAffinity is nodeAffinityPolicy Ignore; the default,
	// Honor, counts only the nodes the pod's node selector and affinity
	// allow.
	IgnoreNodeAffinity bool
	// HonorNodeTaints is nodeTaintsPolicy Honor; the default, Ignore,
	// counts tainted nodes too.
	HonorNodeTaints bool
}

// PreferredTerm is a preferred node affinity term: a node that matches it
// scores its weight (1 to 100).
type PreferredTerm struct {
	Weight int32
	Term   NodeSelectorTerm
}

// AffinityTerm is a required pod anti-affinity term: no pod matching the
// selector in the term's namespaces may run in the same topology domain.
type AffinityTerm struct {
	// Namespaces are the namespaces of the pods the term looks at; empty
	// means the pod's own. AllNamespaces is the empty namespaceSelector.
	Namespaces    []string
	AllNamespaces bool
	// NamespaceSelector: the term selects namespaces by their labels,
	// which the model does not know. Its owner's template is unknown, and
	// so is any displaced template whose pods its selector matches: in
	// whichever namespace, they may be the pods it keeps away.
	NamespaceSelector bool
	Selector          Selector
	TopologyKey       string
}

// Template is what the pods of one ReplicaSet, StatefulSet revision or
// ReplicationController share: the scheduler sees them alike, so the cost
// of the model is per template, not per pod. The caller interns templates
// so that equal ones are one pointer.
type Template struct {
	Namespace string
	// Owner names the controller: "Kind/name", "" for a bare pod. The
	// placement order uses the name only (see Order).
	Owner string
	// Labels are the pods' labels (per-pod ones such as a StatefulSet's
	// pod name left out).
	Labels   Labels
	Priority int32
	// PreemptNever is preemptionPolicy Never: the pod waits rather than
	// evict lower-priority pods.
	PreemptNever bool
	// Requests is the effective request of one pod: the larger of the
	// containers' sum and the largest init container, plus the pod
	// overhead, and one pod.
	Requests Resources
	// ScoreMilliCPU and ScoreMemory are the requests the scheduler scores
	// with: a container without a request counts as 100m CPU and 200 MB,
	// so that free-looking pods still spread.
	ScoreMilliCPU, ScoreMemory int64
	Tolerations                []Toleration
	// NodeSelector is spec.nodeSelector: every label must equal.
	NodeSelector Labels
	// NodeAffinity is the required node affinity; nil when none. A node
	// must match one term.
	NodeAffinity []NodeSelectorTerm
	Spread       []SpreadConstraint
	// SoftSpread are the topology spread constraints with
	// whenUnsatisfiable ScheduleAnyway: they only score (see score.go). A
	// template without any constraint, hard or soft, is spread by the
	// scheduler's system defaults instead.
	SoftSpread []SpreadConstraint
	// PreferredAffinity are the preferred node affinity terms: they only
	// score.
	PreferredAffinity []PreferredTerm
	AntiAffinity      []AffinityTerm
	// Images are the images of the containers and init containers.
	Images []string
	// Recreated: a controller recreates the pod elsewhere when its node
	// goes (ReplicaSet, StatefulSet, ReplicationController). DaemonSet
	// pods, Job pods and bare pods are not displaced, only occupy room.
	Recreated bool
	// Unknown, when set, says which constraint of the template the model
	// does not understand: its pods are never reported as fitting.
	Unknown string
}

// Pod is a pod that is scheduled to a node and not finished (Succeeded and
// Failed pods hold no resources and are left out by the caller).
type Pod struct {
	Template *Template
	Name     string
	// Node is the index of the pod's node in Cluster.Nodes.
	Node int32
	// Ready: the Ready condition is True (a PodDisruptionBudget counts
	// only healthy pods).
	Ready bool
	// Pending: the pod is a replacement no node had room for when it was
	// created (Node is -1). A campaign (spread.AfterBatch) keeps such
	// pods, and every later simulation places them again, as the
	// scheduler retries them when nodes come back.
	Pending bool
	// Terminating pods still hold their resources but are not displaced
	// (their replacement exists already) and do not count for topology
	// spread, as for the scheduler.
	Terminating bool
}

// Image is an image a node holds, under each of its names. Nodes share
// the Image of an image they all hold (the caller interns them): one image
// is on many nodes, and a pointer is a fifth of a copy.
type Image struct {
	Names     []string
	SizeBytes int64
}

// Node is a node.
type Node struct {
	Name        string
	Labels      Labels
	Taints      []Taint
	Allocatable Resources
	Images      []*Image
}

// PDB is a PodDisruptionBudget.
type PDB struct {
	Namespace, Name string
	Selector        Selector
	// DisruptionsAllowed is status.disruptionsAllowed, as the disruption
	// controller computed it from minAvailable or maxUnavailable and the
	// pods healthy now: the evictions the Eviction API grants before it
	// refuses.
	DisruptionsAllowed int32
}

// Cluster is the input of the model. Nodes should be sorted by name: a
// tie between equally good nodes goes to the first.
type Cluster struct {
	Nodes []Node
	Pods  []Pod
	PDBs  []PDB

	// idx is built by the first simulation (see clusterIndex): set the
	// fields above before it, and change none after.
	idx clusterIndex
}
