package placement

// Reason says why a displaced pod finds no node. The values are stable:
// they are JSON keys of the what-if answer and metric label values.
type Reason string

// The reasons, one per filter, in the order kube-scheduler's default
// profile runs its filters (TaintToleration, NodeAffinity,
// NodeResourcesFit, PodTopologySpread, InterPodAffinity). A resource the
// pod requests more of than a node has free is "insufficient_" and the
// resource's name (InsufficientResource).
const (
	ReasonTaint                        Reason = "taint"
	ReasonNodeSelector                 Reason = "node_selector"
	ReasonNodeAffinity                 Reason = "node_affinity"
	ReasonInsufficientPods             Reason = "insufficient_pods"
	ReasonInsufficientCPU              Reason = "insufficient_cpu"
	ReasonInsufficientMemory           Reason = "insufficient_memory"
	ReasonInsufficientEphemeralStorage Reason = "insufficient_ephemeral_storage"
	ReasonTopologySpread               Reason = "topology_spread"
	ReasonPodAntiAffinity              Reason = "pod_anti_affinity"
	// ReasonNoSchedulableNode: every node is gone, so no filter even ran.
	ReasonNoSchedulableNode Reason = "no_schedulable_node"
)

// InsufficientResource is the reason for an extended resource, such as
// "insufficient_nvidia.com/gpu".
func InsufficientResource(name string) Reason { return Reason("insufficient_" + name) }

// reasonID numbers the reasons in filter order, so that a tie between two
// reasons goes to the filter that runs first, and so that the per-node
// verdict of the placement loop is an integer, not a string. Resource
// reasons are reasonResources plus the resource's slot (see slots).
type reasonID uint16

const (
	fits reasonID = iota
	idTaint
	idNodeSelector
	idNodeAffinity
	idInsufficientPods
	reasonResources            // + slot: cpu, memory, ephemeral storage, then extended
	idTopologySpread  reasonID = 60000
	idPodAntiAffinity reasonID = 60001
	idNoNode          reasonID = 60002
)

// The fixed resource slots; extended resources follow.
const (
	slotCPU = iota
	slotMemory
	slotEphemeralStorage
	slotPods
	fixedSlots
)

// filterTaints is TaintToleration's filter: every NoSchedule and
// NoExecute taint of the node must be tolerated. PreferNoSchedule only
// scores.
func filterTaints(t *Template, node *Node) reasonID {
	for i := range node.Taints {
		taint := &node.Taints[i]
		if taint.Effect != EffectNoSchedule && taint.Effect != EffectNoExecute {
			continue
		}
		if !tolerated(t.Tolerations, taint) {
			return idTaint
		}
	}
	return fits
}

func tolerated(tolerations []Toleration, taint *Taint) bool {
	for i := range tolerations {
		if tolerations[i].tolerates(taint) {
			return true
		}
	}
	return false
}

// filterNodeSelector is the nodeSelector half of NodeAffinity's filter:
// every label must be set to the value.
func filterNodeSelector(t *Template, node *Node) reasonID {
	for _, want := range t.NodeSelector {
		if value, ok := node.Labels.Lookup(want.Key); !ok || value != want.Value {
			return idNodeSelector
		}
	}
	return fits
}

// filterNodeAffinity is the required-affinity half of NodeAffinity's
// filter: the node must match one term.
func filterNodeAffinity(t *Template, node *Node) reasonID {
	if t.NodeAffinity == nil {
		return fits
	}
	for i := range t.NodeAffinity {
		if t.NodeAffinity[i].matchesNode(node) {
			return fits
		}
	}
	return idNodeAffinity
}

// staticFilters runs the filters that depend on the template and the node
// only, never on what else is placed: their verdict is computed once per
// template and node.
func staticFilters(t *Template, node *Node) reasonID {
	if r := filterTaints(t, node); r != fits {
		return r
	}
	if r := filterNodeSelector(t, node); r != fits {
		return r
	}
	return filterNodeAffinity(t, node)
}

// nodeAffinityMatches: the node passes the template's node selector and
// required affinity, which topology spread's default nodeAffinityPolicy
// (Honor) asks of a node before counting it.
func nodeAffinityMatches(t *Template, node *Node) bool {
	return filterNodeSelector(t, node) == fits && filterNodeAffinity(t, node) == fits
}

// filterResources is NodeResourcesFit's filter on one node: the pod count
// first, then each requested resource against what is left of the
// allocatable. A resource the pod does not request is not checked, even
// when the node is over-committed already. request, used and allocatable
// hold one value per slot.
func filterResources(request, used, allocatable []int64) reasonID {
	if used[slotPods]+1 > allocatable[slotPods] {
		return idInsufficientPods
	}
	for slot := range request {
		if slot == slotPods {
			continue
		}
		if r := request[slot]; r > 0 && r > allocatable[slot]-used[slot] {
			return reasonResources + reasonID(slot)
		}
	}
	return fits
}
