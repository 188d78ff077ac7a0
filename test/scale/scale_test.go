package scale

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// TestHarnessMeasuresEveryFigure runs the harness at a small size so that
// it cannot rot between full-size runs. It asserts that every figure was
// measured, never how good it is: timing depends on the machine.
func TestHarnessMeasuresEveryFigure(t *testing.T) {
	cfg := DefaultConfig(synth.Size{Nodes: 50, Pods: 1500, Services: 150})
	cfg.Scrapes, cfg.Reactions = 10, 3
	cfg.ChurnDuration, cfg.Burst = 5*time.Second, 200
	// One scrape during the loaded churn.
	cfg.LoadedChurnDuration = 16 * time.Second
	// The code under test, uncommitted changes included.
	cfg.ExporterRevs = []string{""}
	// The exporter's CPU is read in 10 ms ticks: five what-ifs of this
	// small cluster took under one tick in all (WhatIfCPU = 0, CI of
	// ecb356e); 30 take several.
	cfg.WhatIfRuns = 30
	cfg.AdmissionRuns, cfg.AdmissionChangedRuns = 20, 5
	var (
		mu     sync.Mutex
		logged []string
	)
	cfg.Logf = func(format string, args ...any) {
		t.Logf(format, args...)
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Two exporters on the same cluster, as a full-size run compares them.
	// The second with its heap profiled at the steady state. Go samples
	// the heap once per 512 KiB allocated on average: this small
	// exporter's 6 MiB live heap gives a dozen samples, and whether one
	// falls in the exporter's own packages is chance (CI of 12f6441
	// failed on it). Sampling every 4 KiB makes the profile detailed
	// enough to name them.
	cfg.Exporters = [][]string{nil, {"GOGC=50", "GODEBUG=memprofilerate=4096", "--collector.node-replicas.scope=all", "--web.enable-pprof"}}
	cfg.ProfileDir = t.TempDir()
	results, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results for 2 exporters", len(results))
	}
	for _, result := range results {
		t.Log("\n" + TableHeader + "\n" + result.Row())
		t.Log("\n" + WhatIfTableHeader + "\n" + result.WhatIfRow())
		t.Log("\n" + AdmissionTableHeader + "\n" + result.AdmissionRow())
		t.Log("\n" + ChurnTableHeader + "\n" + result.ChurnRow())
		t.Log("\n" + ReactionTableHeader + "\n" + result.ReactionRow())
		t.Log("\n" + SyncTableHeader + "\n" + result.SyncRow())
		checkMeasured(t, result)
	}
	// Each reaction is listed with the exporter's garbage collections in
	// it, read from its Go metrics: two exporters, plain and gzip, each
	// with 3 cordons and 3 uncordons, 3 pods unready and ready again.
	list := regexp.MustCompile(`^reaction \((plain|gzip)\), in order, .*: cordon/uncordon (\d+\**( |;)){6} unready/ready (\d+\**( |$)){6}$`)
	listed := 0
	for _, line := range logged {
		if strings.HasPrefix(line, "reaction (") && strings.Contains(line, "in order") {
			listed++
			if !list.MatchString(line) {
				t.Errorf("reaction list %q: want 6 cordons and 6 readiness changes, each in ms with a star per garbage collection", line)
			}
		}
	}
	if listed != 4 {
		t.Errorf("%d reaction lists logged, want 4 (plain and gzip for each of 2 exporters)", listed)
	}
	// One heap profile, of the exporter run with --web.enable-pprof: kept
	// in ProfileDir, summed by package, the exporter's own among them.
	profiled := regexp.MustCompile(`^heap profile at the steady state in (\S+): live heap \d+\.\d MiB; by package: .*github\.com/kube-spread-exporter/kube-spread-exporter/\w+ \d+\.\d.* by function: `)
	var profiles []string
	for _, line := range logged {
		if m := profiled.FindStringSubmatch(line); m != nil {
			profiles = append(profiles, m[1])
		} else if strings.HasPrefix(line, "heap profile") {
			t.Errorf("heap profile line %q does not match %s", line, profiled)
		}
	}
	if len(profiles) != 1 {
		t.Errorf("%d heap profiles logged, want 1 (the exporter with --web.enable-pprof): %q", len(profiles), profiles)
	}
	for _, file := range profiles {
		if info, err := os.Stat(file); err != nil || info.Size() == 0 || filepath.Dir(file) != cfg.ProfileDir {
			t.Errorf("heap profile %s: not kept in %s (%v)", file, cfg.ProfileDir, err)
		}
	}
	// The defaults publish per-node series of the services at risk only,
	// a few of the synthetic cluster's.
	if atRisk, all := results[0].Series, results[1].Series; atRisk >= all {
		t.Errorf("%d series with node_replicas of the services at risk, %d with every service's: the flags did not reach the exporter", atRisk, all)
	}
}

func checkMeasured(t *testing.T, result *Result) {
	t.Helper()
	v := reflect.ValueOf(*result)
	for i := range v.NumField() {
		name, field := v.Type().Field(i).Name, v.Field(i)
		var value float64
		switch field.Kind() {
		case reflect.Int, reflect.Int64:
			if name == "AdmissionNotJudged" {
				// Zero is the figure hoped for: every cordon judged in time.
				continue
			}
			value = float64(field.Int())
		case reflect.Uint64:
			value = float64(field.Uint())
		case reflect.Float64:
			value = field.Float()
		default:
			continue // Size and Flags are the input; Commit is checked below.
		}
		if value <= 0 || math.IsInf(value, 0) || math.IsNaN(value) {
			t.Errorf("%s = %v, want a measured (positive, finite) figure", name, value)
		}
	}
	if result.Commit == "" {
		t.Error("Commit is empty")
	}
	// A service check and the health check, each through the API and
	// through /metrics.
	if len(result.Checks) != 4 {
		t.Errorf("%d check costs, want 4: %+v", len(result.Checks), result.Checks)
	}
	for _, c := range result.Checks {
		if c.WallP50 <= 0 || c.PeakRSS == 0 || c.ExporterCPU < 0 {
			t.Errorf("check cost not measured: %+v", c)
		}
	}
	if bpp := result.BytesPerPod(); bpp <= 0 || math.IsInf(bpp, 0) {
		t.Errorf("BytesPerPod = %v", bpp)
	}
}

func TestSplitEnv(t *testing.T) {
	tests := []struct {
		words, env, flags []string
	}{
		{},
		{words: []string{"--a", "--b=c"}, flags: []string{"--a", "--b=c"}},
		{words: []string{"GOGC=50"}, env: []string{"GOGC=50"}},
		{words: []string{"GOGC=50", "GOMEMLIMIT=1GiB", "--a=b", "X=1"}, env: []string{"GOGC=50", "GOMEMLIMIT=1GiB"}, flags: []string{"--a=b", "X=1"}},
	}
	for _, tc := range tests {
		env, flags := splitEnv(tc.words)
		if !slices.Equal(env, tc.env) || !slices.Equal(flags, tc.flags) {
			t.Errorf("splitEnv(%q) = %q, %q; want %q, %q", tc.words, env, flags, tc.env, tc.flags)
		}
	}
}

// TestRunCheckMeasuresTheCheckAlone: the peak memory of a check is its
// own, not the harness's it was forked from. A check of an address where
// nothing listens is CRITICAL at once, having allocated little.
func TestRunCheckMeasuresTheCheckAlone(t *testing.T) {
	binary, err := exporterproc.BuildCommand(context.Background(), repo.RootForTest(t), t.TempDir(), "check_kube_spread")
	if err != nil {
		t.Fatal(err)
	}
	// Grow the harness's own memory well past a check's.
	ballast := make([]byte, 200<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	r := &Result{checkBinary: binary}
	wall, peak, err := r.runCheck(context.Background(), []string{"health", "--url", "http://127.0.0.1:1/metrics"})
	runtime.KeepAlive(ballast)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("check: wall %s, peak RSS %.1f MiB", wall, float64(peak)/(1<<20))
	if wall <= 0 || peak == 0 || peak > 100<<20 {
		t.Errorf("wall %s, peak %d MiB: want a positive time and the check's own few MiB, not the harness's 200", wall, peak>>20)
	}
}

func TestReactionList(t *testing.T) {
	for _, tc := range []struct {
		reactions []reaction
		want      string
	}{
		{nil, ""},
		{[]reaction{{took: 89 * time.Millisecond}}, "89"},
		{[]reaction{{took: 89 * time.Millisecond}, {took: 310500 * time.Microsecond, gcs: 2}, {took: 102 * time.Millisecond, gcs: -1}}, "89 310** 102?"},
	} {
		if got := reactionList(tc.reactions); got != tc.want {
			t.Errorf("reactionList(%v) = %q, want %q", tc.reactions, got, tc.want)
		}
	}
}

func TestSampleValue(t *testing.T) {
	body := []byte(`# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds_sum 0.0121
go_gc_duration_seconds_count 57
go_memstats_heap_inuse_bytes 1.4155776e+08
`)
	for _, tc := range []struct {
		name  string
		want  float64
		found bool
	}{
		{"go_gc_duration_seconds_count", 57, true},
		{"go_memstats_heap_inuse_bytes", 141557760, true},
		// A prefix of a name, or a name with labels, is not the sample.
		{"go_gc_duration_seconds", 0, false},
		{"go_memstats_heap", 0, false},
	} {
		got, found, err := sampleValue(body, tc.name)
		if err != nil || got != tc.want || found != tc.found {
			t.Errorf("sampleValue(%q) = %v, %t, %v; want %v, %t, nil", tc.name, got, found, err, tc.want, tc.found)
		}
	}
	if _, _, err := sampleValue([]byte("go_gc_duration_seconds_count many\n"), "go_gc_duration_seconds_count"); err == nil {
		t.Error("sampleValue read a value that is not a number")
	}
}

func TestReadMemoryParts(t *testing.T) {
	body := []byte(`go_memstats_heap_idle_bytes 1.2e+08
go_memstats_heap_inuse_bytes 2.5e+08
go_memstats_heap_released_bytes 9e+07
go_memstats_heap_sys_bytes 3.7e+08
go_memstats_next_gc_bytes 2.8e+08
go_memstats_stack_sys_bytes 2e+06
go_memstats_sys_bytes 3.9e+08
`)
	parts, err := readMemoryParts(body, 330<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := memoryParts{rss: 330 << 20, heapInUse: 250e6, nextGC: 280e6, idleKept: 30e6, stacks: 2e6, runtime: 18e6}
	if parts != want {
		t.Errorf("readMemoryParts = %+v, want %+v", parts, want)
	}
	// 330 MiB less 250, 30, 2 and 18 million bytes: 43.9 MiB.
	const line = "RSS 330 MiB: heap in use 238 (next collection at 267), freed and not yet returned 28, stacks 1, runtime 17, rest 43"
	if got := parts.String(); got != line {
		t.Errorf("String() = %q, want %q", got, line)
	}
	for name, bad := range map[string][]byte{
		"a sample missing":     bytes.ReplaceAll(body, []byte("go_memstats_stack_sys_bytes"), []byte("go_memstats_stack_inuse_bytes")),
		"released beyond idle": bytes.ReplaceAll(body, []byte("heap_released_bytes 9e+07"), []byte("heap_released_bytes 2e+08")),
		"not a number":         bytes.ReplaceAll(body, []byte("sys_bytes 3.9e+08"), []byte("sys_bytes many")),
	} {
		if _, err := readMemoryParts(bad, 330<<20); err == nil {
			t.Errorf("%s: readMemoryParts returned no error", name)
		}
	}
}

// TestParsePprofTop reads go tool pprof -top of a real heap profile of the
// exporter (a few lines of it) and sums it by package.
func TestParsePprofTop(t *testing.T) {
	const text = `File: kube-spread-exporter
Type: inuse_space
Time: 2026-12-04 22:57:32 UTC
Showing nodes accounting for 5673.81kB, 100% of 5673.81kB total
      flat  flat%   sum%        cum   cum%
 2084.21kB 36.73% 36.73%  2084.21kB 36.73%  k8s.io/utils/buffer.NewTypedRingGrowing[go.shape.interface {}] (inline)
 1.50MB  9.11% 45.84%   516.64kB  9.11%  k8s.io/utils/buffer.(*TypedRingGrowing[go.shape.interface {}]).WriteOne
  512.28kB  9.03% 54.87%   512.28kB  9.03%  crypto/x509/pkix.map.init.0
  512B  9.03% 63.90%   512.23kB  9.03%  slices.SortFunc[go.shape.[]github.com/a/b.T]
         0     0%   100%   512.28kB  9.03%  crypto/x509/pkix.init
         0     0%   100%  2084.21kB 36.73%  github.com/kube-spread-exporter/kube-spread-exporter/cluster.New
`
	top, err := parsePprofTop(text)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(5809981); top.total != want { // 5673.81 kB, as parseSize rounds it down
		t.Errorf("total = %d, want %d", top.total, want)
	}
	if len(top.functions) != 6 {
		t.Errorf("%d functions, want 6: %+v", len(top.functions), top.functions)
	}
	want := "live heap 5.5 MiB; by package: k8s.io/utils/buffer 3.5, crypto/x509/pkix 0.5, by function: " +
		"k8s.io/utils/buffer.NewTypedRingGrowing[go.shape.interface {}] (inline) 2.0, k8s.io/utils/buffer.(*TypedRingGrowing[go.shape.interface {}]).WriteOne 1.5"
	if got := top.summary(2, 2); got != want {
		t.Errorf("summary:\n got %s\nwant %s", got, want)
	}
	for function, want := range map[string]string{
		"runtime.malg": "runtime",
		"k8s.io/client-go/tools/cache.(*threadSafeMap).Add":                 "k8s.io/client-go/tools/cache",
		"slices.SortFunc[go.shape.[]github.com/a/b.T]":                      "slices",
		"github.com/kube-spread-exporter/kube-spread-exporter/cluster.trim": "github.com/kube-spread-exporter/kube-spread-exporter/cluster",
	} {
		if got := packageOf(function); got != want {
			t.Errorf("packageOf(%q) = %q, want %q", function, got, want)
		}
	}
	for _, bad := range []string{"", "File: x\n", "Showing nodes accounting for 1MB, 100% of 1MB total\n      flat  flat%   sum%        cum   cum%\n 12XB 1% 1% 1MB 1% f\n"} {
		if _, err := parsePprofTop(bad); err == nil {
			t.Errorf("parsePprofTop(%q): no error", bad)
		}
	}
}
