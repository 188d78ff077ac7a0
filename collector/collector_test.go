package collector

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeSource serves a fixed snapshot.
type fakeSource struct {
	cluster   *spread.Cluster
	err       error
	status    []cluster.ResourceStatus
	freshness cluster.Freshness
}

func (f *fakeSource) SnapshotForScrape() (*spread.Cluster, error) { return f.cluster, f.err }
func (f *fakeSource) Status() []cluster.ResourceStatus            { return f.status }
func (f *fakeSource) InvalidAnnotations() uint64                  { return 3 }
func (f *fakeSource) Freshness() cluster.Freshness                { return f.freshness }

// Generation never changes: the snapshot is fixed.
func (f *fakeSource) Generation() uint64 { return 1 }

var freshSource = cluster.Freshness{Probed: true, APIServerUp: true, Confirmed: time.Unix(1530688010, 0)}

var syncedStatus = []cluster.ResourceStatus{
	{Resource: "nodes", Synced: true, LastUpdate: time.Unix(1530688000, 500e6)},
	{Resource: "pods", Synced: true, ListWatchErrors: 2},
}

// mathoidDayTwo is the cluster of the 2018 incident the moment 2001 and
// 2002 are cordoned: every replica sits on them.
func mathoidDayTwo() *spread.Cluster {
	node := func(name, zone string, reasons ...spread.Reason) *spread.Node {
		return &spread.Node{Name: name, Domains: []string{zone}, Unschedulable: reasons}
	}
	ready := spread.Replica{Ready: true}
	on := func(r spread.Replica, node string) spread.Replica { r.Node = node; return r }
	return &spread.Cluster{
		TopologyKeys: []string{"topology.kubernetes.io/zone"},
		Nodes: map[string]*spread.Node{
			"kubernetes2001": node("kubernetes2001", "row-a", spread.ReasonCordoned),
			"kubernetes2002": node("kubernetes2002", "row-b", spread.ReasonCordoned, spread.ReasonMaintenanceLabel),
			"kubernetes2003": node("kubernetes2003", "row-c"),
			"kubernetes2004": node("kubernetes2004", "row-d"),
		},
		Services: []*spread.Service{
			{Namespace: "mathoid", Kind: spread.KindDeployment, Name: "mathoid", DesiredReplicas: 4, Replicas: []spread.Replica{
				on(ready, "kubernetes2001"), on(ready, "kubernetes2001"), on(ready, "kubernetes2002"), on(ready, "kubernetes2002"),
			}},
			{Namespace: "mathoid", Kind: spread.KindService, Name: "mathoid", DesiredReplicas: -1, MinNodes: 3, Replicas: []spread.Replica{
				on(ready, "kubernetes2001"), on(ready, "kubernetes2001"), on(ready, "kubernetes2002"), on(ready, "kubernetes2002"),
			}},
			{Namespace: "batch", Kind: spread.KindStatefulSet, Name: "queue", DesiredReplicas: 2, Replicas: []spread.Replica{
				on(ready, "kubernetes2003"), on(ready, "kubernetes2003"),
			}},
			{Namespace: "batch", Kind: spread.KindDeployment, Name: "idle", DesiredReplicas: 0},
		},
	}
}

func TestCollectorGolden(t *testing.T) {
	tests := []struct {
		name    string
		source  *fakeSource
		options Options
	}{
		{
			name:    "mathoid-day-two",
			source:  &fakeSource{cluster: mathoidDayTwo(), status: syncedStatus, freshness: freshSource},
			options: Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true},
		},
		{
			name:    "node-replicas-off",
			source:  &fakeSource{cluster: mathoidDayTwo(), status: syncedStatus},
			options: Options{Analysis: spread.Options{DefaultMinNodes: 2}},
		},
		{
			// Where the displaced replicas go: no room for two of
			// mathoid's, one warm node, the renderer not judged.
			name:    "maintenance-placement",
			source:  &fakeSource{cluster: mathoidMaintenance(t), status: syncedStatus, freshness: freshSource},
			options: Options{Analysis: spread.Options{DefaultMinNodes: 2}},
		},
		{
			// The default scope: mathoid (on cordoned nodes) and the queue
			// (single-homed) have their per-node series, the healthy
			// service none.
			name:    "node-replicas-at-risk",
			source:  &fakeSource{cluster: withHealthyService(mathoidDayTwo()), status: syncedStatus, freshness: freshSource},
			options: Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true, NodeReplicasAtRisk: true},
		},
		{
			// Before the caches sync, no figure may pretend to be complete.
			name: "not-synced",
			source: &fakeSource{err: cluster.ErrCacheNotSynced, status: []cluster.ResourceStatus{
				{Resource: "nodes", Synced: true}, {Resource: "pods", ListWatchErrors: 7},
			}, freshness: cluster.Freshness{Probed: true}},
			options: Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := expose(t, New(tc.source, tc.options, slog.New(slog.DiscardHandler)))
			golden := filepath.Join("testdata", tc.name+".prom")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test ./collector -update to create it): %v", err)
			}
			if diff := firstDifference(string(want), string(got)); diff != "" {
				t.Errorf("exposition differs from %s (go test ./collector -update rewrites it): %s", golden, diff)
			}
			problems, err := promlint.New(bytes.NewReader(got)).Lint()
			if err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %+v", err, problems)
			}
		})
	}
}

// withHealthyService adds to c a node and a Deployment whose three
// replicas run on three schedulable nodes in three zones: one more node
// than it needs, nothing puts it at risk.
func withHealthyService(c *spread.Cluster) *spread.Cluster {
	c.Nodes["kubernetes2005"] = &spread.Node{Name: "kubernetes2005", Domains: []string{"row-e"}}
	c.Services = append(c.Services, &spread.Service{Namespace: "web", Kind: spread.KindDeployment, Name: "healthy", DesiredReplicas: 3, Replicas: []spread.Replica{
		{Node: "kubernetes2003", Ready: true}, {Node: "kubernetes2004", Ready: true}, {Node: "kubernetes2005", Ready: true},
	}})
	return c
}

// expose returns the whole exposition of c as the /metrics handler writes
// it, c and others registered in a pedantic registry.
func expose(t testing.TB, c *Collector, others ...prometheus.Collector) []byte {
	t.Helper()
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(append(others, c)...)
	var out bytes.Buffer
	if err := NewHandler(registry, c, slog.New(slog.DiscardHandler)).Write(&out, expfmt.NewFormat(expfmt.TypeTextPlain)); err != nil {
		t.Fatalf("write the exposition: %v", err)
	}
	return out.Bytes()
}

// gather parses the exposition of c (and others) back into metric families, as
// Prometheus would read it.
func gather(t testing.TB, c *Collector, others ...prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	parsed, err := parseExposition(bytes.NewReader(expose(t, c, others...)))
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return slices.SortedFunc(maps.Values(parsed), func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
}

// firstDifference describes the first line where two texts differ, or
// returns "" when they are equal.
func firstDifference(want, got string) string {
	if want == got {
		return ""
	}
	wantLines, gotLines := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wantLines), len(gotLines)) {
		var w, g string
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if w != g {
			return fmt.Sprintf("line %d: want %q, got %q", i+1, w, g)
		}
	}
	return "texts differ"
}

// parseExposition parses the text format as Prometheus does, holding metric
// and label names to the classic character set the exporter promises.
func parseExposition(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	return parser.TextToMetricFamilies(r)
}

// countingSource counts snapshots and lets the test move the generation.
type countingSource struct {
	fakeSource
	generation, snapshots int
}

func (c *countingSource) Generation() uint64 { return uint64(c.generation) }
func (c *countingSource) SnapshotForScrape() (*spread.Cluster, error) {
	c.snapshots++
	return c.fakeSource.SnapshotForScrape()
}

// TestAnalysisFollowsGeneration: scrapes reuse the analysis while the
// caches are unchanged and analyse again when they change; a failed
// snapshot is never reused.
func TestAnalysisFollowsGeneration(t *testing.T) {
	source := &countingSource{fakeSource: fakeSource{err: cluster.ErrCacheNotSynced, status: syncedStatus}}
	c := New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	series := func() int {
		count := 0
		for _, f := range gather(t, c) {
			if strings.HasPrefix(f.GetName(), "kube_spread_replicas_ready") {
				count += len(f.GetMetric())
			}
		}
		return count
	}
	steps := []struct {
		name            string
		change          func()
		snapshots, want int
	}{
		{name: "not synced", change: func() {}, snapshots: 1, want: 0},
		{name: "synced, same generation: the failure is not reused", change: func() { source.err, source.cluster = nil, mathoidDayTwo() }, snapshots: 2, want: 4},
		{name: "unchanged", change: func() {}, snapshots: 2, want: 4},
		{name: "unchanged again", change: func() { source.cluster = &spread.Cluster{} }, snapshots: 2, want: 4},
		{name: "changed", change: func() { source.generation++ }, snapshots: 3, want: 0},
	}
	for _, step := range steps {
		step.change()
		if got := series(); got != step.want {
			t.Errorf("%s: %d replicas_ready series, want %d", step.name, got, step.want)
		}
		if source.snapshots != step.snapshots {
			t.Errorf("%s: %d snapshots so far, want %d", step.name, source.snapshots, step.snapshots)
		}
	}
}

// TestKeptScrapeHoldsNoReplicas: the analysis kept between changes points
// at no replica (they are most of its memory and serve nothing once the
// figures are worked out) and shares equal per-node counts, and the
// source's snapshot keeps its replicas: a source may share it.
func TestKeptScrapeHoldsNoReplicas(t *testing.T) {
	snapshot := mathoidDayTwo()
	replicas := 0
	for _, svc := range snapshot.Services {
		replicas += len(svc.Replicas)
	}
	c := New(&fakeSource{cluster: snapshot, status: syncedStatus}, Options{Analysis: spread.Options{DefaultMinNodes: 2}}, slog.New(slog.DiscardHandler))
	s := c.analysis()
	if s == nil || len(s.report.Services) == 0 {
		t.Fatal("no analysis")
	}
	ready := 0
	for _, f := range s.report.Services {
		if f.Service.Replicas != nil {
			t.Errorf("the kept analysis of %s/%s holds %d replicas", f.Service.Namespace, f.Service.Name, len(f.Service.Replicas))
		}
		ready += f.ReplicasReady
	}
	if ready != replicas {
		t.Errorf("the kept figures count %d ready replicas, the snapshot has %d (all ready)", ready, replicas)
	}
	// The mathoid Deployment and Service count the same replicas on the
	// same nodes: one copy of the counts serves both.
	var mathoid [][]spread.NodeCount
	for _, f := range s.report.Services {
		if f.Service.Namespace == "mathoid" {
			mathoid = append(mathoid, f.NodeReplicas)
		}
	}
	if len(mathoid) != 2 || len(mathoid[0]) != 2 || &mathoid[0][0] != &mathoid[1][0] {
		t.Errorf("the mathoid Deployment and Service do not share their per-node counts: %v", mathoid)
	}
	after := 0
	for _, svc := range snapshot.Services {
		after += len(svc.Replicas)
	}
	if after != replicas || replicas == 0 {
		t.Errorf("the source's snapshot holds %d replicas after the scrape, %d before", after, replicas)
	}
}
