// Package fidelity proves the what-if's placement model against the real
// kube-scheduler (issue 16).
//
// TestPlacementMatchesScheduler generates clusters from seeds (Generate):
// 3 to 30 nodes in zones and racks with mixed allocatable, taints and
// labels; Deployments and StatefulSets with mixed requests, tolerations,
// nodeSelector, required node affinity, hard topology spread
// (DoNotSchedule, on hostname or zone, with either node taints policy) and
// required pod anti-affinity on hostname. For each case it creates the
// cluster on one shared control plane (internal/controlplane), waits until
// every pod runs, scaling down what the scheduler cannot place at all
// (Runner.Settle), picks a batch among the nodes that hold pods, starts the
// exporter and asks GET /api/v1/whatif for the batch. Then it does what a
// maintenance does: cordons the batch and deletes its pods, waits until the
// controllers have replaced every one and the scheduler has placed each
// replacement or marked it Unschedulable, and compares, service by service,
// the replacements placed with placement.placed. Summary prints the
// agreement and every disagreement with the seed that replays it
// (-fidelity.seed=SEED -fidelity.cases=1). `go test` runs 5 cases; `make
// fidelity` runs enough for more than 200 services.
//
// A seed fixes the case, not the scheduler's initial placement, which
// breaks ties between equally good nodes at random: a replayed case can
// start from another placement. The placement before and after the
// take-down is printed with each disagreement for that reason.
//
// TestPDBBlocksDrainWherePredicted drains a batch through the Eviction API
// and checks that the budgets refuse exactly the evictions the what-if's
// pdb field says exceed them. TestMathoidColdStart replays the 2018
// incident (internal/replay) and checks warm_nodes: 0 for {2001, 2002}
// after day one, when 2003 and 2004 are freshly reimaged.
//
// # kwok keeps the node status a test sets
//
// The cases need nodes with real allocatable and images. kwok v0.8.0
// (tools/kwok) runs two node stages, taken unchanged from its module by
// tools/build-all.sh:
//   - node-initialize (node/fast) patches the status of a node that is not
//     Ready yet. Its template copies .status.allocatable and
//     .status.capacity when they are set (1k CPUs, 1Ti, 1M pods only when
//     they are not) and does not mention images.
//   - node-heartbeat (node/heartbeat) patches only the conditions, every 20
//     to 45 seconds.
//
// Both are strategic merge patches of the status, so fields they leave out
// (images) are kept. The stage configuration needs no change, provided the
// status is set when the Node is created (the API server keeps a new
// Node's status, as when a kubelet registers): node-initialize renders its
// patch from the Node it last saw, so a status written through the
// subresource while the node is still coming up could be overwritten with
// what kwok saw before. Once the node is Ready, writes through the status
// subresource stay. TestKwokKeepsNodeResourcesAndImages checks all of this
// on the pinned kwok: a node created with its status, then changed through
// the subresource, keeps every value after becoming Ready and after a
// heartbeat.
package fidelity
