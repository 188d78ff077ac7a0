package scale

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
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
// through the API (10 × runs times) and through /metrics (runs times),
// after one untimed run (which pays for an analysis if the caches changed).
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
			// A check through the API costs the exporter well under the
			// 10 ms tick its CPU time is counted in, and the exporter's own
			// background work (GC, probes) lands in the same window: ten
			// times the runs resolve a tenth of a millisecond per check.
			count := runs
			if source == "api" {
				count = 10 * runs
			}
			var walls []time.Duration
			for range count {
				wall, rss, err := r.runCheck(ctx, args)
				if err != nil {
					return err
				}
				walls = append(walls, wall)
				cost.PeakRSS = max(cost.PeakRSS, rss)
			}
			if cost.PeakRSS == 0 {
				return fmt.Errorf("check_kube_spread %s: no memory figure at its exit in %d runs", strings.Join(args, " "), count)
			}
			cpuAfter, err := cpuTime(e.PID())
			if err != nil {
				return err
			}
			cost.WallP50, cost.WallMax = percentile(walls, 50), slices.Max(walls)
			cost.ExporterCPU = (cpuAfter - cpuBefore) / time.Duration(count)
			logf("check %s through %s: wall p50 %s, peak RSS %.1f MiB, exporter CPU %s per check",
				cost.Check, source, cost.WallP50.Round(time.Millisecond), float64(cost.PeakRSS)/(1<<20), cost.ExporterCPU)
			r.Checks = append(r.Checks, cost)
		}
	}
	return nil
}

// runCheck runs the check once and returns its wall time and peak RSS (0
// when it could not be read).
// Its state does not matter here, only that it reached one: an UNKNOWN
// (exit 3) means it measured a failure, which is an error.
//
// The peak is VmHWM of the check's own memory, read when it exits: the
// process is traced (ptrace) and stopped at its exit, before its memory
// is released. getrusage's ru_maxrss cannot tell: it keeps the high-water
// mark of the harness's memory, which the child shared until its exec.
func (r *Result) runCheck(ctx context.Context, args []string) (time.Duration, uint64, error) {
	what := "check_kube_spread " + strings.Join(args, " ")
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	out, err := os.CreateTemp("", "kse-check-output-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()

	// Every ptrace request must come from the thread that started the
	// tracee.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(r.checkBinary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("run %s: %w", what, err)
	}
	pid := cmd.Process.Pid
	var status syscall.WaitStatus
	// The first stop is the exec's SIGTRAP.
	if _, err := syscall.Wait4(pid, &status, 0, nil); err != nil {
		return 0, 0, fmt.Errorf("run %s: wait for exec: %w", what, err)
	}
	if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT); err != nil {
		_ = cmd.Process.Kill()
		return 0, 0, fmt.Errorf("run %s: trace: %w", what, err)
	}
	var hwm uint64
	signal := 0
	for {
		// ESRCH: the check left the stop we saw before we continued it:
		// another of its threads exited the process, whose SIGKILL takes
		// every thread out of a signal stop. The wait below gets its exit
		// stop (PTRACE_O_TRACEEXIT) as usual.
		if err := syscall.PtraceCont(pid, signal); err != nil && !errors.Is(err, syscall.ESRCH) {
			return 0, 0, fmt.Errorf("run %s: continue: %w", what, err)
		}
		if _, err := syscall.Wait4(pid, &status, syscall.WALL, nil); err != nil {
			return 0, 0, fmt.Errorf("run %s: wait: %w", what, err)
		}
		if status.Exited() || status.Signaled() {
			break
		}
		signal = 0
		switch {
		case status.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			if _, hwm, err = memory(pid); err != nil {
				return 0, 0, err
			}
		case status.StopSignal() != syscall.SIGTRAP:
			// Signals the check gets (the Go runtime's SIGURG) go on.
			signal = int(status.StopSignal())
		}
	}
	wall := time.Since(began)
	_ = cmd.Process.Release() // reaped above; frees the process handle
	if code := status.ExitStatus(); code < 0 || code > 2 {
		text, _ := os.ReadFile(out.Name())
		return 0, 0, fmt.Errorf("%s: exit %d: %s", what, code, text)
	}
	// hwm stays 0 when the check exited without the exit stop: seen once
	// in a loaded run, when another thread's exit took the traced one
	// down first. The caller takes the peak over many runs and fails only
	// when none had a figure.
	return wall, hwm, nil
}
