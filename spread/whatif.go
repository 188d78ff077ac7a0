package spread

import (
	"errors"
	"slices"
	"strings"
)

// ErrNoNodes is returned when a what-if question names no node.
var ErrNoNodes = errors.New("no node given")

// UnknownNodesError names nodes that a what-if question asked about but
// the cluster does not have. A typo must not read as "safe".
type UnknownNodesError struct{ Nodes []string }

func (e *UnknownNodesError) Error() string {
	return "unknown nodes: " + strings.Join(e.Nodes, ", ")
}

// WithNodesGone returns a copy of the cluster in which the named nodes are
// unschedulable with ReasonWhatIf, as if they went down now. Nodes and
// services are shared with c where unchanged; c itself is not modified.
func (c *Cluster) WithNodesGone(names []string) (*Cluster, error) {
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
	gone := *c
	gone.Nodes = make(map[string]*Node, len(c.Nodes))
	for name, node := range c.Nodes {
		gone.Nodes[name] = node
	}
	for _, name := range names {
		node := *c.Nodes[name]
		if !slices.Contains(node.Unschedulable, ReasonWhatIf) {
			node.Unschedulable = append(slices.Clip(node.Unschedulable), ReasonWhatIf)
		}
		gone.Nodes[name] = &node
	}
	return &gone, nil
}
