package collector

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

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

func (f *fakeSource) Snapshot() (*spread.Cluster, error) { return f.cluster, f.err }
func (f *fakeSource) Status() []cluster.ResourceStatus   { return f.status }
func (f *fakeSource) InvalidAnnotations() uint64         { return 3 }
func (f *fakeSource) Freshness() cluster.Freshness       { return f.freshness }

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
			c := New(tc.source, tc.options, slog.New(slog.DiscardHandler))
			golden := filepath.Join("testdata", tc.name+".prom")
			if *update {
				registry := prometheus.NewPedanticRegistry()
				registry.MustRegister(c)
				writeExposition(t, registry, golden)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test ./collector -update to create it): %v", err)
			}
			if err := testutil.CollectAndCompare(c, strings.NewReader(string(want))); err != nil {
				t.Error(err)
			}
			if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %+v", err, problems)
			}
		})
	}
}

// writeExposition writes what the registry gathers in the text format.
func writeExposition(t *testing.T, registry *prometheus.Registry, path string) {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out strings.Builder
	encoder := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, family := range families {
		if err := encoder.Encode(family); err != nil {
			t.Fatalf("encode: %v", err)
		}
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
