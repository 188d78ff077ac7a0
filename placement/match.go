package placement

import (
	"slices"
	"strconv"
)

// Matches reports whether labels satisfy the selector.
func (s *Selector) Matches(labels Labels) bool {
	if s.Nothing {
		return false
	}
	for i := range s.Requirements {
		if !s.Requirements[i].matchesLabels(labels) {
			return false
		}
	}
	return true
}

// empty: the selector matches everything, which topology spread counts
// as matching no pod at all (kube-scheduler's countPodsMatchSelector).
func (s *Selector) empty() bool { return !s.Nothing && len(s.Requirements) == 0 }

// matchesLabels applies a label requirement as apimachinery's labels
// package does: NotIn and DoesNotExist hold when the key is absent; Gt
// and Lt compare whole numbers and fail on anything else.
func (r *Requirement) matchesLabels(labels Labels) bool {
	value, has := labels.Lookup(r.Key)
	return r.matchesValue(value, has)
}

func (r *Requirement) matchesValue(value string, has bool) bool {
	switch r.Operator {
	case OpIn:
		return has && slices.Contains(r.Values, value)
	case OpNotIn:
		return !has || !slices.Contains(r.Values, value)
	case OpExists:
		return has
	case OpDoesNotExist:
		return !has
	case OpGt, OpLt:
		if !has || len(r.Values) != 1 {
			return false
		}
		have, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		want, err := strconv.ParseInt(r.Values[0], 10, 64)
		if err != nil {
			return false
		}
		if r.Operator == OpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// matchesNode applies a node selector term: an empty term matches no node
// (the API's rule, so that a term left empty by mistake selects nothing).
func (t *NodeSelectorTerm) matchesNode(node *Node) bool {
	if len(t.Expressions) == 0 && len(t.Fields) == 0 {
		return false
	}
	for i := range t.Expressions {
		if !t.Expressions[i].matchesLabels(node.Labels) {
			return false
		}
	}
	for i := range t.Fields {
		// metadata.name is the only field a node selector may name; the
		// API server refuses others.
		if !t.Fields[i].matchesValue(node.Name, true) {
			return false
		}
	}
	return true
}

// tolerates reports whether a toleration tolerates a taint, as
// corev1.Toleration.ToleratesTaint does.
func (t *Toleration) tolerates(taint *Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "Exists":
		return true
	case "", "Equal":
		return t.Value == taint.Value
	}
	return false
}

// namespaceMatches reports whether a term of a pod in ownNamespace looks
// at pods of namespace.
func (t *AffinityTerm) namespaceMatches(ownNamespace, namespace string) bool {
	if t.AllNamespaces || t.NamespaceSelector {
		return true
	}
	if len(t.Namespaces) == 0 {
		return namespace == ownNamespace
	}
	return slices.Contains(t.Namespaces, namespace)
}
