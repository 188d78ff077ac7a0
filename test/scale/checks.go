package scale

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// CheckCost is what one check_kube_spread run costs, on the Icinga host
// and on the exporter.
type CheckCost struct {
	// Check is the command line after --url; Source says whether it read
	// the exporter's JSON API or /metrics (--no-api).
	Check, Source string
	// WallP50 and WallMax are over the runs, process start to exit.
	WallP50, WallMax time.Duration
	// PeakRSS is the largest VmHWM of the check process over the runs.
	PeakRSS uint64
	// ExporterCPU is the exporter's CPU time over the runs, divided by
	// them: what one request costs it, background work included.
	ExporterCPU time.Duration
}

// CheckTableHeader is the header of the check cost table of
// docs/check.md ("Cost per check").
const CheckTableHeader = "| commit | nodes | pods | services | check | reads | wall p50 / max | peak RSS of the check | exporter CPU per check |\n" +
	"| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"

// CheckRows are the check costs as rows of that table.
func (r *Result) CheckRows() []string {
	rows := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		rows[i] = fmt.Sprintf("| %s | %d | %d | %d | `%s` | %s | %s / %s ms | %.1f MiB | %.2f ms |",
			r.Commit, r.Size.Nodes, r.Size.Pods, r.Size.Services, c.Check, c.Source,
			fmt.Sprint(c.WallP50.Milliseconds()), fmt.Sprint(c.WallMax.Milliseconds()), float64(c.PeakRSS)/(1<<20),
			float64(c.ExporterCPU.Microseconds())/1000)
	}
	return rows
}

// measureChecks times a check of one service and the health check, each
// through the API and through /metrics, runs times each after one
// untimed run (which pays for an analysis if the caches changed).
func (r *Result) measureChecks(ctx context.Context, e *exporterproc.Exporter, cluster *synth.Cluster, runs int, logf func(string, ...any)) error {
	if runs < 1 {
		return nil
	}
	svc := cluster.Services[0]
	kind, name := "Deployment", ""
	switch {
	case svc.Deployment != nil:
		name = svc.Deployment.Name
	case svc.StatefulSet != nil:
		kind, name = "StatefulSet", svc.StatefulSet.Name
	}
	url := e.URL + "/metrics"
	checks := [][]string{
		{"service", "--namespace", svc.Namespace, "--kind", kind, "--name", name},
		{"health"},
	}
	for _, check := range checks {
		for _, source := range []string{"api", "metrics"} {
			args := append([]string{"--url", url}, check...)
			if source == "metrics" {
				args = append(args, "--no-api")
			}
			cost := CheckCost{Check: strings.Join(check, " "), Source: source}
			if _, _, err := r.runCheck(ctx, args); err != nil {
				return err
			}
			cpuBefore, err := cpuTime(e.PID())
			if err != nil {
				return err
			}
			var walls []time.Duration
			for range runs {
				wall, rss, err := r.runCheck(ctx, args)
				if err != nil {
					return err
				}
				walls = append(walls, wall)
				cost.PeakRSS = max(cost.PeakRSS, rss)
			}
			cpuAfter, err := cpuTime(e.PID())
			if err != nil {
				return err
			}
			cost.WallP50, cost.WallMax = percentile(walls, 50), slices.Max(walls)
			cost.ExporterCPU = (cpuAfter - cpuBefore) / time.Duration(runs)
			logf("check %s through %s: wall p50 %s, peak RSS %.1f MiB, exporter CPU %s per check",
				cost.Check, source, cost.WallP50.Round(time.Millisecond), float64(cost.PeakRSS)/(1<<20), cost.ExporterCPU)
			r.Checks = append(r.Checks, cost)
		}
	}
	return nil
}

// runCheck runs the check once and returns its wall time and peak RSS.
// Its state does not matter here, only that it reached one: an UNKNOWN
// (exit 3) means it measured a failure, which is an error.
func (r *Result) runCheck(ctx context.Context, args []string) (time.Duration, uint64, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, r.checkBinary, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	err := cmd.Run()
	wall := time.Since(began)
	if cmd.ProcessState == nil {
		return 0, 0, fmt.Errorf("run check_kube_spread %s: %w", strings.Join(args, " "), err)
	}
	if code := cmd.ProcessState.ExitCode(); code < 0 || code > 2 {
		return 0, 0, fmt.Errorf("check_kube_spread %s: exit %d: %s", strings.Join(args, " "), code, out.String())
	}
	usage, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, fmt.Errorf("no resource usage of check_kube_spread")
	}
	// ru_maxrss is in KiB on Linux.
	return wall, uint64(usage.Maxrss) << 10, nil
}
