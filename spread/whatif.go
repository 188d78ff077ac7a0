package spread

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoNodes is returned when a what-if question names no node.
var ErrNoNodes = errors.New("no node given")

// UnknownNodesError names nodes that a what-if question asked about but
// the cluster does not have. A typo must not read as "safe".
type UnknownNodesError struct{ Nodes []string }

// maxNamedInError bounds the names an UnknownNodesError spells out: a
// request with 10,000 typos must not get a 200 KB error line.
const maxNamedInError = 10

func (e *UnknownNodesError) Error() string {
	named := make([]string, 0, maxNamedInError)
	for _, name := range e.Nodes[:min(len(e.Nodes), maxNamedInError)] {
		// No node name is longer than a DNS subdomain (253 bytes); a
		// longer one is cut so the error stays one short line.
		if len(name) > 253 {
			name = name[:253] + "..."
		}
		named = append(named, name)
	}
	text := "unknown nodes: " + strings.Join(named, ", ")
	if more := len(e.Nodes) - len(named); more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	return text
}

// WithNodesGone returns a copy of the cluster in which the named nodes are
// unschedulable with ReasonWhatIf, as if they went down now. Nodes and
// services are shared with c where unchanged; c itself is not modified.
func (c *Cluster) WithNodesGone(names []string) (*Cluster, error) {
	return c.withNodes(names, func(node *Node) {
		if !slices.Contains(node.Unschedulable, ReasonWhatIf) {
			node.Unschedulable = append(slices.Clip(node.Unschedulable), ReasonWhatIf)
		}
	})
}

// WithNodesInService returns a copy of the cluster in which the named nodes
// are schedulable, whatever they are now. A what-if judges taking nodes
// down against this cluster: tooling that cordons or labels a batch before
// it asks about it must get the same answer as tooling that asks first.
func (c *Cluster) WithNodesInService(names []string) (*Cluster, error) {
	return c.withNodes(names, func(node *Node) { node.Unschedulable = nil })
}

// withNodes returns a copy of the cluster with change applied to a copy of
// each named node. It returns ErrNoNodes or an *UnknownNodesError when the
// names are empty or unknown.
func (c *Cluster) withNodes(names []string, change func(*Node)) (*Cluster, error) {
	if len(names) == 0 {
		return nil, ErrNoNodes
	}
	var unknown []string
	for _, name := range names {
		if c.Nodes[name] == nil {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, &UnknownNodesError{Nodes: slices.Compact(unknown)}
	}
	changed := *c
	changed.Nodes = make(map[string]*Node, len(c.Nodes))
	for name, node := range c.Nodes {
		changed.Nodes[name] = node
	}
	for _, name := range names {
		node := *c.Nodes[name]
		change(&node)
		changed.Nodes[name] = &node
	}
	return &changed, nil
}
