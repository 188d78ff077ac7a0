package scale

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// pprofFlag is the exporter's flag that serves its runtime profiles; an
// exporter measured with it has its heap profiled at the steady state.
const pprofFlag = "--web.enable-pprof"

// heapProfile fetches the exporter's heap profile after a collection
// (?gc=1: what is live, not what the next collection will free), writes it
// to dir and logs the live heap by package and its largest functions. The
// resident set is about twice the live heap (the garbage collector's
// headroom), so this is what a smaller resident set has to shrink.
func heapProfile(ctx context.Context, exporter *exporterproc.Exporter, dir, name string, logf func(string, ...any)) error {
	status, body, err := exporter.Get(ctx, "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("heap profile: status %d (does this exporter have %s?): %.200s", status, pprofFlag, body)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	// -nodecount large enough for every function: the sums by package
	// must not miss the small ones.
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-sample_index=inuse_space", "-top", "-nodecount=100000", file)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		return fmt.Errorf("go tool pprof %s: %w: %s", file, err, strings.TrimSpace(string(stderr)))
	}
	top, err := parsePprofTop(string(out))
	if err != nil {
		return fmt.Errorf("go tool pprof %s: %w", file, err)
	}
	logf("heap profile at the steady state in %s: %s", file, top.summary(12, 15))
	return nil
}

// profileName names the heap profile of one exporter run.
func profileName(commit string, at time.Time) string {
	return fmt.Sprintf("heap-%s-%s.pb.gz", strings.ReplaceAll(commit, "+", "-"), at.UTC().Format("20060102T150405"))
}

// pprofTop is the live heap of a profile, by function.
type pprofTop struct {
	total     int64
	functions []pprofFunction
}

type pprofFunction struct {
	name  string
	bytes int64 // flat: allocated by the function itself
}

// parsePprofTop reads `go tool pprof -top` text: a header with the total
// ("... of 176.50MB total") and lines of flat, flat%, sum%, cum, cum% and
// the function.
func parsePprofTop(text string) (pprofTop, error) {
	var top pprofTop
	table := false
	scanner := bufio.NewScanner(strings.NewReader(text))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		switch {
		case !table && len(fields) >= 2 && fields[len(fields)-1] == "total" && fields[len(fields)-3] == "of":
			n, err := parseSize(fields[len(fields)-2])
			if err != nil {
				return top, err
			}
			top.total = n
		case !table && len(fields) > 0 && fields[0] == "flat":
			table = true
		case table && len(fields) >= 6:
			n, err := parseSize(fields[0])
			if err != nil {
				return top, err
			}
			top.functions = append(top.functions, pprofFunction{name: strings.Join(fields[5:], " "), bytes: n})
		}
	}
	if err := scanner.Err(); err != nil {
		return top, err
	}
	if top.total == 0 || len(top.functions) == 0 {
		return top, errors.New("no total or no functions in the -top output")
	}
	return top, nil
}

// parseSize reads pprof's sizes: 0, 512B, 1.50kB, 12.25MB, 1.02GB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		factor float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if number, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(number, 64)
			if err != nil {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			return int64(f * u.factor), nil
		}
	}
	if s == "0" {
		return 0, nil
	}
	return 0, fmt.Errorf("size %q: no unit", s)
}

// packageOf is the import path of a function's package:
// k8s.io/client-go/tools/cache.(*threadSafeMap).Add is k8s.io/client-go/tools/cache.
// Type arguments may name other packages (slices.SortFunc[...]): only the
// part before them counts.
func packageOf(function string) string {
	if i := strings.IndexAny(function, "[("); i >= 0 {
		function = function[:i]
	}
	slash := strings.LastIndex(function, "/")
	if dot := strings.Index(function[slash+1:], "."); dot >= 0 {
		return function[:slash+1+dot]
	}
	return function
}

// summary is the total, the packages holding the most and the functions
// holding the most, in MiB.
func (t pprofTop) summary(packages, functions int) string {
	byPackage := map[string]int64{}
	for _, f := range t.functions {
		byPackage[packageOf(f.name)] += f.bytes
	}
	type share struct {
		name  string
		bytes int64
	}
	var pkgs []share
	for name, n := range byPackage {
		pkgs = append(pkgs, share{name, n})
	}
	byBytes := func(a, b share) int {
		return cmp.Or(cmp.Compare(b.bytes, a.bytes), cmp.Compare(a.name, b.name))
	}
	slices.SortFunc(pkgs, byBytes)
	var fns []share
	for _, f := range t.functions {
		fns = append(fns, share{f.name, f.bytes})
	}
	slices.SortFunc(fns, byBytes)
	mib := func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) }
	var b strings.Builder
	fmt.Fprintf(&b, "live heap %s MiB; by package:", mib(t.total))
	for _, p := range pkgs[:min(packages, len(pkgs))] {
		fmt.Fprintf(&b, " %s %s,", p.name, mib(p.bytes))
	}
	b.WriteString(" by function:")
	for _, f := range fns[:min(functions, len(fns))] {
		fmt.Fprintf(&b, " %s %s,", f.name, mib(f.bytes))
	}
	return strings.TrimSuffix(b.String(), ",")
}
