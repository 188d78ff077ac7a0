package fidelity

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// The sample `go test` runs; `make fidelity` runs more (docs/whatif.md).
var (
	flagCases = flag.Int("fidelity.cases", 5, "how many generated cases to run")
	flagSeed  = flag.Uint64("fidelity.seed", 1, "seed of the first case; case i has seed+i, so -fidelity.seed=S -fidelity.cases=1 replays case S")
)

// ServiceResult is what happened to the displaced replicas of one service
// of one case, predicted and real.
type ServiceResult struct {
	Seed        uint64
	Kind, Name  string
	Constraints string
	// Displaced replicas were Running on the batch; the scheduler Placed
	// that many replacements, the others are Unschedulable.
	Displaced, Placed, Unschedulable int
	// Predicted is the what-if's placement; nil when the answer had none.
	Predicted *PlacementAnswer
	// Before and After are the case's placement around the take-down,
	// printed with a disagreement so it can be understood without a rerun.
	Before, After string
	Batch         []string
}

// Agrees says whether the prediction claimed a count and it is the one of
// the scheduler.
func (r *ServiceResult) Agrees() bool {
	p := r.Predicted
	return p != nil && p.State != StateUnknown && p.Displaced == r.Displaced && p.Placed == r.Placed
}

// TestPlacementMatchesScheduler generates clusters, asks the exporter's
// what-if what happens to each service's displaced replicas when a batch of
// nodes goes down, does it for real on the control plane, and compares the
// number of replacements the kube-scheduler placed with the prediction,
// service by service.
func TestPlacementMatchesScheduler(t *testing.T) {
	t.Parallel()
	binary := exporterproc.BuildForTest(t, "kube-spread-exporter")
	runner := &Runner{Client: client(t), Scheduler: cp, Logf: t.Logf}
	var results []*ServiceResult
	for i := range *flagCases {
		c := Generate(*flagSeed + uint64(i))
		t.Run(fmt.Sprintf("seed=%d", c.Seed), func(t *testing.T) {
			results = append(results, runCase(t, runner, binary, c)...)
		})
	}
	t.Log("\n" + Summary(*flagSeed, *flagCases, results))
}

// runCase creates the case, asks, takes the batch down, and compares.
func runCase(t *testing.T, runner *Runner, binary string, c *Case) []*ServiceResult {
	ctx := context.Background()
	t.Log(c.Describe())
	t.Log("nodes: " + c.DescribeNodes())
	t.Cleanup(func() {
		if err := runner.Cleanup(context.Background(), c); err != nil {
			t.Errorf("clean up seed %d: %v", c.Seed, err)
		}
	})
	if err := runner.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	before, replicas, err := runner.Settle(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	batch := c.PickBatch(before.Occupied())
	displaced := map[string]int{}
	for name, p := range before {
		if n := p.RunningTotal() - p.RunningTotal(batch...); n > 0 {
			displaced[name] = n
		}
	}
	t.Logf("placed: %s", describe(before))
	if len(displaced) == 0 {
		t.Logf("seed %d: no pod runs on the batch: nothing to compare", c.Seed)
		return nil
	}
	t.Logf("batch %s displaces %v", strings.Join(batch, ", "), displaced)

	answer := askConsistent(t, binary, c, batch, replicas, displaced)
	after, err := runner.TakeDown(ctx, c, batch, replicas)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the take-down: %s", describe(after))

	var results []*ServiceResult
	missing := false
	for _, w := range c.Workloads {
		if displaced[w.Name()] == 0 {
			continue
		}
		p := after[w.Name()]
		placed := p.RunningTotal(batch...) - (replicas[w.Name()] - displaced[w.Name()])
		r := &ServiceResult{
			Seed: c.Seed, Kind: w.Kind(), Name: w.Name(), Constraints: constraints(w.Template()),
			Displaced: displaced[w.Name()], Placed: placed, Unschedulable: p.Unschedulable,
			Predicted: answer.Service(c.Namespace, w.Kind(), w.Name()).Placement,
			Before:    describe(Observed{w.Name(): before[w.Name()]}), After: describe(Observed{w.Name(): p}),
			Batch: batch,
		}
		results = append(results, r)
		switch {
		case r.Predicted == nil:
			missing = true
		case r.Predicted.State == StateUnknown:
			t.Logf("%s %s: the model says unknown (%s); the scheduler placed %d of %d", r.Kind, r.Name, r.Predicted.UnknownReason, r.Placed, r.Displaced)
		case !r.Agrees():
			t.Errorf("%s", r.Disagreement())
		}
	}
	if missing {
		t.Errorf("seed %d: %s", c.Seed, ErrNoPlacement)
	}
	return results
}

// askConsistent starts an exporter on the settled case and asks the
// what-if for the batch, until the answer shows the replicas the API server
// shows (the exporter's caches are a snapshot of the same objects).
func askConsistent(t *testing.T, binary string, c *Case, batch []string, replicas, displaced map[string]int) *Answer {
	t.Helper()
	ctx := context.Background()
	e, err := exporterproc.Start(ctx, binary, cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", e.Log())
		}
	}()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var answer *Answer
	var body string
	err = poll(ctx, 30*time.Second, "a what-if answer with the case's replicas", func(ctx context.Context) error {
		if answer, body, err = AskWhatIf(ctx, e, batch); err != nil {
			return err
		}
		for _, w := range c.Workloads {
			name := w.Name()
			if displaced[name] == 0 {
				continue
			}
			s := answer.Service(c.Namespace, w.Kind(), name)
			if s == nil {
				return fmt.Errorf("%s %s not in the answer", w.Kind(), name)
			}
			if s.Now.Replicas != replicas[name] || s.After.Replicas != replicas[name]-displaced[name] {
				return fmt.Errorf("%s %s: now %d, after %d replicas; the API server has %d, %d on the batch",
					w.Kind(), name, s.Now.Replicas, s.After.Replicas, replicas[name], displaced[name])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed %d: %v\nlast answer: %s", c.Seed, err, body)
	}
	return answer
}

// Disagreement explains a prediction the scheduler did not bear out, with
// what it takes to replay it.
func (r *ServiceResult) Disagreement() string {
	p := r.Predicted
	return fmt.Sprintf("seed %d %s %s [%s]: batch %s displaces %d; predicted %s placed=%d unplaced=%d reasons=%v (displaced %d); scheduler placed %d, %d unschedulable\n  before: %s\n  after:  %s",
		r.Seed, r.Kind, r.Name, r.Constraints, strings.Join(r.Batch, ","), r.Displaced,
		p.State, p.Placed, p.Unplaced, p.Reasons, p.Displaced, r.Placed, r.Unschedulable, r.Before, r.After)
}

// Summary is the table `make fidelity` prints: cases, services, agreement,
// and every disagreement with the seed that replays it.
func Summary(firstSeed uint64, cases int, results []*ServiceResult) string {
	var agree, unknown, missing, someUnplaced int
	var disagreements []*ServiceResult
	casesWithServices := map[uint64]bool{}
	for _, r := range results {
		casesWithServices[r.Seed] = true
		if r.Unschedulable > 0 {
			someUnplaced++
		}
		switch {
		case r.Predicted == nil:
			missing++
		case r.Predicted.State == StateUnknown:
			unknown++
		case r.Agrees():
			agree++
		default:
			disagreements = append(disagreements, r)
		}
	}
	claimed := agree + len(disagreements)
	var b strings.Builder
	fmt.Fprintf(&b, "fidelity against kube-scheduler, seeds %d to %d\n", firstSeed, firstSeed+uint64(cases)-1)
	fmt.Fprintf(&b, "%-44s %d\n", "cases", cases)
	fmt.Fprintf(&b, "%-44s %d\n", "cases with displaced replicas", len(casesWithServices))
	fmt.Fprintf(&b, "%-44s %d\n", "services with displaced replicas", len(results))
	fmt.Fprintf(&b, "%-44s %d\n", "  the scheduler could not place them all", someUnplaced)
	fmt.Fprintf(&b, "%-44s %d\n", "  predicted fit or no_room", claimed)
	fmt.Fprintf(&b, "%-44s %d\n", "  predicted unknown", unknown)
	fmt.Fprintf(&b, "%-44s %d\n", "  no placement in the answer", missing)
	share := "n/a"
	if claimed > 0 {
		share = fmt.Sprintf("%.1f%% (%d of %d)", 100*float64(agree)/float64(claimed), agree, claimed)
	}
	fmt.Fprintf(&b, "%-44s %s\n", "agreement on placed replicas", share)
	if len(disagreements) > 0 {
		fmt.Fprintf(&b, "disagreements (replay one with -fidelity.seed=SEED -fidelity.cases=1):\n")
		fmt.Fprintf(&b, "%-6s %-24s %-9s %-9s %-9s %s\n", "seed", "service", "displaced", "predicted", "scheduler", "constraints")
		for _, r := range disagreements {
			fmt.Fprintf(&b, "%-6d %-24s %-9d %-9d %-9d %s\n", r.Seed, r.Kind+"/"+r.Name, r.Displaced, r.Predicted.Placed, r.Placed, r.Constraints)
		}
	}
	if missing > 0 {
		fmt.Fprintf(&b, "%s\n", ErrNoPlacement)
	}
	reasons := map[string]int{}
	for _, r := range results {
		if r.Predicted != nil {
			for reason, n := range r.Predicted.Reasons {
				reasons[reason] += n
			}
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&b, "predicted reasons for unplaced replicas:")
		for _, reason := range slices.Sorted(maps.Keys(reasons)) {
			fmt.Fprintf(&b, " %s=%d", reason, reasons[reason])
		}
		b.WriteString("\n")
	}
	return b.String()
}
