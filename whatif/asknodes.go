package whatif

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// ErrBusy is returned by AskNodes when no analysis slot freed up before
// the context ended.
var ErrBusy = errors.New("too many what-if questions at once")

// AskNodes answers what GET /api/v1/whatif?node=... answers, for callers
// inside the exporter (the admission webhook), from the same shared
// snapshot and analysis and within the same bound on concurrent analyses:
// it waits for a slot until ctx ends (ErrBusy).
//
// gone names nodes to count as unschedulable although the caches still
// show them schedulable: changes admitted a moment ago that the watch has
// not delivered yet. Names the caches do not know, or show unschedulable
// already, are left out; the asked nodes are judged as asked. With gone
// empty the answer is exactly the API's.
//
// Errors: spread.ErrNoNodes, *spread.UnknownNodesError, the source's error
// while its caches sync, ErrBusy.
func (h *Handler) AskNodes(ctx context.Context, nodes, gone []string) (*Answer, error) {
	timer := time.NewTimer(slotWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return nil, ErrBusy
	case <-timer.C:
		return nil, ErrBusy
	}
	base, err := h.baseline()
	if err != nil {
		return nil, err
	}
	c, now := base.cluster, base.now
	if pending := pendingGone(c, nodes, gone); len(pending) > 0 {
		if c, err = c.WithNodesGone(pending); err != nil {
			return nil, err
		}
		now = spread.Analyze(c, h.options)
	}
	return ask(c, now, nodes, h.options)
}

// pendingGone returns the names of gone that c knows and shows schedulable,
// and that are not asked about.
func pendingGone(c *spread.Cluster, asked, gone []string) []string {
	var out []string
	for _, name := range gone {
		node := c.Nodes[name]
		if node == nil || !node.Schedulable() || slices.Contains(asked, name) || slices.Contains(out, name) {
			continue
		}
		out = append(out, name)
	}
	return out
}
