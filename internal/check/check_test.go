package check

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/collector"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// fakeSource feeds the real collector a fixed cluster, so the tests read
// exactly what the exporter would publish for it.
type fakeSource struct {
	cluster *spread.Cluster
	status  []cluster.ResourceStatus
}

func (s *fakeSource) Snapshot() (*spread.Cluster, error) {
	for _, st := range s.status {
		if !st.Synced {
			return nil, cluster.ErrCacheNotSynced
		}
	}
	return s.cluster, nil
}

// SnapshotForScrape is Snapshot: the collector reads the same cluster.
func (s *fakeSource) SnapshotForScrape() (*spread.Cluster, error) { return s.Snapshot() }
func (s *fakeSource) Status() []cluster.ResourceStatus            { return s.status }
func (s *fakeSource) InvalidAnnotations() uint64                  { return 0 }
func (s *fakeSource) Generation() uint64                          { return 1 }
func (s *fakeSource) Freshness() cluster.Freshness {
	return cluster.Freshness{Probed: true, APIServerUp: true, Confirmed: time.Unix(1530688000, 0)}
}

var synced = []cluster.ResourceStatus{
	{Resource: "nodes", Synced: true, LastUpdate: time.Unix(1530688000, 0)},
	{Resource: "pods", Synced: true, ListWatchErrors: 2, LastUpdate: time.Unix(1530688030, 0)},
}

// expose renders the cluster through the exporter's collector, as text.
func expose(t testing.TB, c *spread.Cluster, status []cluster.ResourceStatus, nodeReplicas bool) []byte {
	t.Helper()
	figures := collector.New(&fakeSource{cluster: c, status: status},
		collector.Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: nodeReplicas},
		slog.New(slog.DiscardHandler))
	registry := prometheus.NewRegistry()
	registry.MustRegister(figures)
	var buf bytes.Buffer
	if err := collector.NewHandler(registry, figures, slog.New(slog.DiscardHandler)).Write(&buf, expfmt.NewFormat(expfmt.TypeTextPlain)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rebuild(t testing.TB, text []byte) *spread.Report {
	t.Helper()
	families, err := ParseText(text)
	if err != nil {
		t.Fatal(err)
	}
	report, err := Rebuild(families)
	if err != nil {
		t.Fatal(err)
	}
	return report
}

func findingStrings(findings []spread.Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, fmt.Sprintf("%s %s/%s %s", Key(f.Figures.Service), f.Alert, f.Severity, f.TopologyKey))
	}
	return out
}

// codfw is four nodes in two rows, the cordoned ones taken out.
func codfw(cordoned ...string) map[string]*spread.Node {
	nodes := map[string]*spread.Node{}
	for i, name := range []string{"kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"} {
		nodes[name] = &spread.Node{Name: name, Domains: []string{fmt.Sprintf("row-%c", 'a'+i%2)}}
	}
	for _, name := range cordoned {
		nodes[name].Unschedulable = []spread.Reason{spread.ReasonCordoned}
	}
	return nodes
}

func workload(kind spread.Kind, name string, desired, minNodes int, on ...string) *spread.Service {
	s := &spread.Service{Namespace: "ns", Kind: kind, Name: name, DesiredReplicas: desired, MinNodes: minNodes}
	if kind == spread.KindService {
		s.DesiredReplicas = -1
	}
	for _, node := range on {
		s.Replicas = append(s.Replicas, spread.Replica{Node: node, Ready: true})
	}
	return s
}

// TestRebuildGivesTheSameFindings is the check's half of the promise that
// Icinga and the alert rules agree: for each cluster, the findings of the
// report rebuilt from the exporter's metrics are the findings of the
// exporter's own analysis, with and without node_replicas series.
func TestRebuildGivesTheSameFindings(t *testing.T) {
	tests := []struct {
		name     string
		nodes    map[string]*spread.Node
		services []*spread.Service
	}{
		{"spread over four nodes", codfw(), []*spread.Service{workload(spread.KindDeployment, "a", 4, 0, "kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004")}},
		{"mathoid day one, min_nodes 3", codfw(), []*spread.Service{workload(spread.KindDeployment, "mathoid", 4, 3, "kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")}},
		{"mathoid day two", codfw("kubernetes2001", "kubernetes2002"), []*spread.Service{
			workload(spread.KindDeployment, "mathoid", 4, 0, "kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002"),
			workload(spread.KindService, "mathoid", 0, 0, "kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002"),
		}},
		{"sequential reimage", codfw("kubernetes2001"), []*spread.Service{workload(spread.KindStatefulSet, "db", 4, 0, "kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")}},
		{"single-homed, one row, unknown node", codfw("kubernetes2003"), []*spread.Service{
			workload(spread.KindReplicaSet, "rs", 3, 0, "kubernetes2001", "kubernetes2001", "kubernetes2001"),
			workload(spread.KindService, "svc", 0, 0, "kubernetes2001", "kubernetes2003", ""),
			workload(spread.KindReplicationController, "one", 1, 0, "kubernetes2001"),
			workload(spread.KindDeployment, "down", 3, 0),
		}},
		{"one row cordoned", codfw("kubernetes2002", "kubernetes2004"), []*spread.Service{workload(spread.KindDeployment, "a", 2, 0, "kubernetes2001", "kubernetes2003")}},
	}
	for _, tc := range tests {
		for _, nodeReplicas := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/node_replicas=%t", tc.name, nodeReplicas), func(t *testing.T) {
				c := &spread.Cluster{TopologyKeys: []string{"topology.kubernetes.io/zone"}, Nodes: tc.nodes, Services: tc.services}
				want := findingStrings(spread.Analyze(c, spread.Options{DefaultMinNodes: 2}).Findings())
				got := findingStrings(rebuild(t, expose(t, c, synced, nodeReplicas)).Findings())
				if !reflect.DeepEqual(got, want) {
					t.Errorf("findings from the metrics = %q\nfindings of the analysis = %q", got, want)
				}
			})
		}
	}
}

func mathoidDayTwo(t testing.TB) *spread.Report {
	text, err := os.ReadFile("../../collector/testdata/mathoid-day-two.prom")
	if err != nil {
		t.Fatal(err)
	}
	return rebuild(t, text)
}

func resultText(t *testing.T, r *nagios.Result) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func mustRange(s string) *nagios.Range {
	r := nagios.MustParseRange(s)
	return &r
}

// TestServices pins the whole output for the exporter's own day-two
// golden file (collector/testdata), under default and overridden
// thresholds and filters.
func TestServices(t *testing.T) {
	all, _ := NewFilter(".*", ".*", ".*")
	workloads, _ := NewFilter(".*", "Deployment|StatefulSet", ".*")
	batch, _ := NewFilter("batch", ".*", ".*")
	const mathoidLines = `CRITICAL mathoid/Deployment/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 2
CRITICAL mathoid/Service/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 3
`
	const queueLine = `WARNING batch/StatefulSet/queue: all 2 replicas on node kubernetes2003 (KubeSpreadSingleHomed); all replicas in one topology.kubernetes.io/zone domain (KubeSpreadSingleTopologyDomain); ready 2, schedulable 2, nodes 1, schedulable nodes 1, min_nodes 2
`
	tests := []struct {
		name string
		opts ServicesOptions
		want string
	}{
		{"defaults: the rules' severities", ServicesOptions{Filter: all, Critical: mustRange("0"), Warning: mustRange("0")},
			`CRITICAL - 2 critical, 1 warning of 4 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance, batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=4;;;0 'critical'=2;;0;0;4 'warning'=1;;;0;4 'not_ok'=3;0;;0;4 'replicas_ready'=10;;;0 'replicas_schedulable'=2;;;0
` + mathoidLines + queueLine},
		{"two critical services tolerated: WARNING", ServicesOptions{Filter: all, Critical: mustRange("2"), Warning: mustRange("0")},
			`WARNING - 2 critical, 1 warning of 4 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance, batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=4;;;0 'critical'=2;;2;0;4 'warning'=1;;;0;4 'not_ok'=3;0;;0;4 'replicas_ready'=10;;;0 'replicas_schedulable'=2;;;0
` + mathoidLines + queueLine},
		{"no thresholds: OK but the troubles still listed", ServicesOptions{Filter: all},
			`OK - 2 critical, 1 warning of 4 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance, batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=4;;;0 'critical'=2;;;0;4 'warning'=1;;;0;4 'not_ok'=3;;;0;4 'replicas_ready'=10;;;0 'replicas_schedulable'=2;;;0
` + mathoidLines + queueLine},
		{"workloads only", ServicesOptions{Filter: workloads, Critical: mustRange("0"), Warning: mustRange("0")},
			`CRITICAL - 1 critical, 1 warning of 3 services: mathoid/Deployment/mathoid no replica survives maintenance, batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=3;;;0 'critical'=1;;0;0;3 'warning'=1;;;0;3 'not_ok'=2;0;;0;3 'replicas_ready'=6;;;0 'replicas_schedulable'=2;;;0
` + mathoidLines[:strings.Index(mathoidLines, "\n")+1] + queueLine},
		{"namespace batch: only a warning", ServicesOptions{Filter: batch, Critical: mustRange("0"), Warning: mustRange("0")},
			`WARNING - 0 critical, 1 warning of 2 services: batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=2;;;0 'critical'=0;;0;0;2 'warning'=1;;;0;2 'not_ok'=1;0;;0;2 'replicas_ready'=2;;;0 'replicas_schedulable'=2;;;0
` + queueLine},
		{"one warning tolerated: OK", ServicesOptions{Filter: batch, Critical: mustRange("0"), Warning: mustRange("1")},
			`OK - 0 critical, 1 warning of 2 services: batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=2;;;0 'critical'=0;;0;0;2 'warning'=1;;;0;2 'not_ok'=1;1;;0;2 'replicas_ready'=2;;;0 'replicas_schedulable'=2;;;0
` + queueLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resultText(t, Services(mathoidDayTwo(t), tc.opts)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestServicesNamesAtMostThree: the first line stays short however many
// services are in trouble; every one still has its detail line.
func TestServicesNamesAtMostThree(t *testing.T) {
	var services []*spread.Service
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		services = append(services, workload(spread.KindDeployment, name, 2, 0, "kubernetes2001", "kubernetes2003"))
	}
	c := &spread.Cluster{TopologyKeys: []string{"topology.kubernetes.io/zone"}, Nodes: codfw("kubernetes2001", "kubernetes2003"), Services: services}
	all, _ := NewFilter(".*", ".*", ".*")
	r := Services(rebuild(t, expose(t, c, synced, true)), ServicesOptions{Filter: all, Critical: mustRange("0"), Warning: mustRange("0")})
	first, _, _ := strings.Cut(resultText(t, r), "\n")
	const want = "CRITICAL - 5 critical, 0 warning of 5 services: ns/Deployment/a no replica survives maintenance, ns/Deployment/b no replica survives maintenance, ns/Deployment/c no replica survives maintenance, and 2 more | 'services'=5;;;0 'critical'=5;;0;0;5 'warning'=0;;;0;5 'not_ok'=5;0;;0;5 'replicas_ready'=10;;;0 'replicas_schedulable'=0;;;0"
	if first != want {
		t.Errorf("first line:\n%s\nwant:\n%s", first, want)
	}
	if len(r.Details) != 5 {
		t.Errorf("%d detail lines, want 5: %q", len(r.Details), r.Details)
	}
}

func TestService(t *testing.T) {
	tests := []struct {
		name string
		key  ServiceKey
		want string
	}{
		{"mathoid on day two", ServiceKey{"mathoid", "Deployment", "mathoid"},
			`CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=0;;;0 'nodes'=2;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=2;;;0
CRITICAL mathoid/Deployment/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 2
`},
		{"a Service has no desired replicas", ServiceKey{"mathoid", "Service", "mathoid"},
			`CRITICAL - mathoid/Service/mathoid: no replica survives maintenance | 'replicas_ready'=4;;;0 'replicas_schedulable'=0;;;0 'nodes'=2;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=3;;;0
CRITICAL mathoid/Service/mathoid: no replica survives maintenance (KubeSpreadNoReplicaSurvivesMaintenance); ready 4, schedulable 0, nodes 2, schedulable nodes 0, min_nodes 3
`},
		{"two findings, the worst decides", ServiceKey{"batch", "StatefulSet", "queue"},
			`WARNING - batch/StatefulSet/queue: all 2 replicas on node kubernetes2003; all replicas in one topology.kubernetes.io/zone domain | 'replicas_desired'=2;;;0 'replicas_ready'=2;;;0 'replicas_schedulable'=2;;;0 'nodes'=1;;;0 'schedulable_nodes'=1;;;0 'min_nodes'=2;;;0
WARNING batch/StatefulSet/queue: all 2 replicas on node kubernetes2003 (KubeSpreadSingleHomed); all replicas in one topology.kubernetes.io/zone domain (KubeSpreadSingleTopologyDomain); ready 2, schedulable 2, nodes 1, schedulable nodes 1, min_nodes 2
`},
		{"nothing ready: other monitoring pages", ServiceKey{"batch", "Deployment", "idle"},
			`OK - batch/Deployment/idle: 0 ready replicas on 0 nodes, 0 survive maintenance on 0 nodes, needs 0 nodes | 'replicas_desired'=0;;;0 'replicas_ready'=0;;;0 'replicas_schedulable'=0;;;0 'nodes'=0;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=0;;;0
`},
		{"not published: UNKNOWN", ServiceKey{"mathoid", "Deployment", "mathiod"},
			`UNKNOWN - mathoid/Deployment/mathiod is not published by the exporter: check the names (kind is one of Service, Deployment, StatefulSet, ReplicaSet, ReplicationController) and the exporter's --namespaces.include
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resultText(t, Service(mathoidDayTwo(t), tc.key)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestHealth pins down the health verdicts: each alert's condition with
// its default threshold, just before and after it holds, from the facts of
// /api/v1/health.
func TestHealth(t *testing.T) {
	now := time.Unix(1530690000, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	up := true
	healthy := func() HealthFacts {
		return HealthFacts{
			Version: "0.3.0", Now: now, Started: ago(time.Hour), Confirmed: ago(5 * time.Second), APIServerUp: &up,
			Streaks: true, Window: 5 * time.Minute,
			Caches: []CacheStatus{
				{Resource: "nodes", Synced: true, LastUpdate: float64(ago(90 * time.Second).Unix())},
				{Resource: "pods", Synced: true, ListWatchErrors: 2, LastUpdate: float64(ago(time.Minute).Unix()), ErrorsSince: ago(50 * time.Minute), LastError: ago(50 * time.Minute)},
			},
		}
	}
	with := func(change func(f *HealthFacts)) HealthFacts {
		f := healthy()
		change(&f)
		return f
	}
	defaults := func() HealthOptions {
		var o HealthOptions
		o.NotSynced, _ = nagios.ParseThreshold(DefaultWarningNotSynced, "")
		o.Stale, _ = nagios.ParseThreshold(DefaultWarningStale, "")
		o.ListWatchErrorsFor, _ = nagios.ParseThreshold(DefaultWarningListWatchErrorsFor, "")
		return o
	}
	// readiness is the thresholds of the chart's exec readiness probe:
	// --critical-not-synced=0 and every warning off.
	readiness := func() HealthOptions {
		var o HealthOptions
		o.NotSynced, _ = nagios.ParseThreshold("", "0")
		return o
	}
	down := false
	tests := []struct {
		name  string
		facts HealthFacts
		opts  HealthOptions
		want  string
	}{
		{"healthy", healthy(), defaults(),
			`OK - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 5s ago, 2 list/watch errors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'=5s;300;;0 'list_watch_errors'=2c;;;0 'list_watch_errors_for'=0s;900;;0 'cache_update_age'=60s;;;0
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 2 list/watch errors (this streak since 50m0s ago, last 50m0s ago), last update 1m0s ago
`},
		{"not synced for 9m: the alert is still pending", with(func(f *HealthFacts) {
			f.Started, f.Confirmed = ago(9*time.Minute), time.Time{}
			f.Caches[1].Synced = false
		}), defaults(),
			`OK - kube-spread-exporter 0.3.0: 1 of 2 caches synced (not synced: pods, for 9m0s), not confirmed fresh yet, 2 list/watch errors | 'caches_synced'=1;;;0;2 'not_synced_for'=540s;600;;0 'list_watch_errors'=2c;;;0 'list_watch_errors_for'=0s;900;;0 'cache_update_age'=60s;;;0
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: NOT synced, 2 list/watch errors (this streak since 50m0s ago, last 50m0s ago), last update 1m0s ago
`},
		{"not synced for 11m: KubeSpreadCacheNotSynced", with(func(f *HealthFacts) {
			f.Started, f.Confirmed = ago(11*time.Minute), time.Time{}
			f.Caches[1].Synced = false
		}), defaults(),
			`WARNING - kube-spread-exporter 0.3.0: 1 of 2 caches synced (not synced: pods, for 11m0s) KubeSpreadCacheNotSynced, not confirmed fresh yet, 2 list/watch errors | 'caches_synced'=1;;;0;2 'not_synced_for'=660s;600;;0 'list_watch_errors'=2c;;;0 'list_watch_errors_for'=0s;900;;0 'cache_update_age'=60s;;;0
firing as the alert rules would: KubeSpreadCacheNotSynced (docs/runbooks.md)
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: NOT synced, 2 list/watch errors (this streak since 50m0s ago, last 50m0s ago), last update 1m0s ago
`},
		{"not confirmed for 4m: pending", with(func(f *HealthFacts) { f.Confirmed = ago(4 * time.Minute); f.APIServerUp = &down }), defaults(),
			`OK - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 4m0s ago, API server unreachable, 2 list/watch errors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'=240s;300;;0 'list_watch_errors'=2c;;;0 'list_watch_errors_for'=0s;900;;0 'cache_update_age'=60s;;;0
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 2 list/watch errors (this streak since 50m0s ago, last 50m0s ago), last update 1m0s ago
`},
		{"errors for 20m, not confirmed for 20m: stale and list/watch errors", with(func(f *HealthFacts) {
			f.Confirmed, f.APIServerUp = ago(20*time.Minute), &down
			f.Caches[1].ErrorsSince, f.Caches[1].LastError, f.Caches[1].ListWatchErrors = ago(20*time.Minute), ago(3*time.Second), 400
		}), defaults(),
			`WARNING - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 20m0s ago KubeSpreadCacheStale, API server unreachable, 400 list/watch errors, failing for 20m0s KubeSpreadListWatchErrors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'=1200s;300;;0 'list_watch_errors'=400c;;;0 'list_watch_errors_for'=1200s;900;;0 'cache_update_age'=60s;;;0
firing as the alert rules would: KubeSpreadCacheStale, KubeSpreadListWatchErrors (docs/runbooks.md)
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 400 list/watch errors (this streak since 20m0s ago, last 3s ago), last update 1m0s ago
`},
		{"errors for 20m that stopped 6m ago: resolved", with(func(f *HealthFacts) {
			f.Caches[1].ErrorsSince, f.Caches[1].LastError = ago(26*time.Minute), ago(6*time.Minute)
		}), defaults(),
			`OK - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 5s ago, 2 list/watch errors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'=5s;300;;0 'list_watch_errors'=2c;;;0 'list_watch_errors_for'=0s;900;;0 'cache_update_age'=60s;;;0
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 2 list/watch errors (this streak since 26m0s ago, last 6m0s ago), last update 1m0s ago
`},
		{"critical thresholds and the old ones", with(func(f *HealthFacts) { f.Confirmed = ago(2 * time.Hour) }), func() HealthOptions {
			o := defaults()
			o.Stale, _ = nagios.ParseThreshold("300", "3600")
			o.ListWatchErrors, _ = nagios.ParseThreshold("1", "")
			o.CacheAge, _ = nagios.ParseThreshold("30", "")
			return o
		}(),
			`CRITICAL - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 2h0m0s ago KubeSpreadCacheStale, 2 list/watch errors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'=7200s;300;3600;0 'list_watch_errors'=2c;1;;0 'list_watch_errors_for'=0s;900;;0 'cache_update_age'=60s;30;;0
firing as the alert rules would: KubeSpreadCacheStale (docs/runbooks.md)
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 2 list/watch errors (this streak since 50m0s ago, last 50m0s ago), last update 1m0s ago
`},
		// The chart's readiness probe with credentials (docs/deploy.md):
		// /readyz's judgement, CRITICAL while a cache has not synced, from
		// the first second, and nothing else.
		{"the readiness probe: not synced for 4s", with(func(f *HealthFacts) {
			f.Started, f.Confirmed = ago(4*time.Second), time.Time{}
			f.Caches[1].Synced = false
		}), readiness(),
			`CRITICAL - kube-spread-exporter 0.3.0: 1 of 2 caches synced (not synced: pods, for 4s) KubeSpreadCacheNotSynced, not confirmed fresh yet, 2 list/watch errors | 'caches_synced'=1;;;0;2 'not_synced_for'=4s;;0;0 'list_watch_errors'=2c;;;0 'list_watch_errors_for'=0s;;;0 'cache_update_age'=60s;;;0
firing as the alert rules would: KubeSpreadCacheNotSynced (docs/runbooks.md)
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: NOT synced, 2 list/watch errors (this streak since 50m0s ago, last 50m0s ago), last update 1m0s ago
`},
		{"the readiness probe: synced, stale and failing", with(func(f *HealthFacts) {
			f.Confirmed, f.APIServerUp = ago(20*time.Minute), &down
			f.Caches[1].ErrorsSince, f.Caches[1].LastError, f.Caches[1].ListWatchErrors = ago(20*time.Minute), ago(3*time.Second), 400
		}), readiness(),
			`OK - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 20m0s ago, API server unreachable, 400 list/watch errors, failing for 20m0s | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;;0;0 'confirmed_age'=1200s;;;0 'list_watch_errors'=400c;;;0 'list_watch_errors_for'=1200s;;;0 'cache_update_age'=60s;;;0
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 400 list/watch errors (this streak since 20m0s ago, last 3s ago), last update 1m0s ago
`},
		{"from /metrics: no streaks, no start time", with(func(f *HealthFacts) {
			f.Streaks, f.Started = false, time.Time{}
			f.Caches[0].Synced = false
		}), defaults(),
			`WARNING - kube-spread-exporter 0.3.0: 1 of 2 caches synced (not synced: nodes, since an unknown time) KubeSpreadCacheNotSynced, confirmed fresh 5s ago, 2 list/watch errors | 'caches_synced'=1;;;0;2 'not_synced_for'=U;600;;0 'confirmed_age'=5s;300;;0 'list_watch_errors'=2c;;;0 'cache_update_age'=60s;;;0
firing as the alert rules would: KubeSpreadCacheNotSynced (docs/runbooks.md)
nodes: NOT synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 2 list/watch errors, last update 1m0s ago
list/watch error streaks: /metrics does not tell them, so KubeSpreadListWatchErrors is not judged (the exporter serves no /api/v1/health)
`},
		{"from /metrics by --no-api: the reason says so", with(func(f *HealthFacts) {
			f.Streaks, f.NoAPI = false, true
		}), defaults(),
			`OK - kube-spread-exporter 0.3.0: 2 of 2 caches synced, confirmed fresh 5s ago, 2 list/watch errors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'=5s;300;;0 'list_watch_errors'=2c;;;0 'cache_update_age'=60s;;;0
nodes: synced, 0 list/watch errors, last update 1m30s ago
pods: synced, 2 list/watch errors, last update 1m0s ago
list/watch error streaks: /metrics does not tell them, so KubeSpreadListWatchErrors is not judged (--no-api reads /metrics only)
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resultText(t, Health(tc.facts, tc.opts)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestHealthFactsFromMetrics: /metrics gives the same facts as the API,
// but for the error streaks.
func TestHealthFactsFromMetrics(t *testing.T) {
	families, err := ParseText([]byte(`kube_spread_build_info{version="0.3.0"} 1
kube_spread_cache_synced{resource="pods"} 1
kube_spread_list_watch_errors_total{resource="pods"} 3
kube_spread_cache_last_update_timestamp_seconds{resource="pods"} 1530689900
kube_spread_cache_confirmed_timestamp_seconds 1530689990
kube_spread_api_server_up 0
process_start_time_seconds 1530680000
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1530690000, 0)
	got, err := HealthFactsFromMetrics(families, now)
	if err != nil {
		t.Fatal(err)
	}
	down := false
	want := HealthFacts{Version: "0.3.0", Now: now, Started: time.Unix(1530680000, 0), Confirmed: time.Unix(1530689990, 0), APIServerUp: &down,
		Caches: []CacheStatus{{Resource: "pods", Synced: true, ListWatchErrors: 3, LastUpdate: 1530689900}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestRebuildErrors: an exposition that breaks the contract is an error,
// never a report with zeros that would read as OK.
func TestRebuildErrors(t *testing.T) {
	const synced = "kube_spread_cache_synced{resource=\"pods\"} 1\n"
	const figures = `kube_spread_replicas_ready{namespace="a",kind="Deployment",name="x"} 2
kube_spread_replicas_schedulable{namespace="a",kind="Deployment",name="x"} 2
kube_spread_nodes{namespace="a",kind="Deployment",name="x"} 2
kube_spread_schedulable_nodes{namespace="a",kind="Deployment",name="x"} 2
`
	tests := []struct {
		name, text, want string
	}{
		{"another exporter", "node_load1 0.5\n", ErrNotExporter.Error()},
		{"not synced", "kube_spread_cache_synced{resource=\"pods\"} 0\nkube_spread_cache_synced{resource=\"nodes\"} 1\n", "exporter caches not synced yet, no figures published (waiting for pods)"},
		{"a required series missing", synced + figures, "service a/Deployment/x: no kube_spread_min_nodes series"},
		{"a fraction of a replica", synced + figures + `kube_spread_min_nodes{namespace="a",kind="Deployment",name="x"} 1.5` + "\n",
			`kube_spread_min_nodes{namespace="a",kind="Deployment",name="x"} = 1.5, want a whole number from 0`},
		{"NaN", synced + figures + `kube_spread_min_nodes{namespace="a",kind="Deployment",name="x"} NaN` + "\n",
			`kube_spread_min_nodes{namespace="a",kind="Deployment",name="x"} = NaN, want a finite number`},
		{"no labels", synced + "kube_spread_nodes 2\n", "kube_spread_nodes without namespace, kind or name label"},
		{"unschedulable without a reason", synced + "kube_spread_node_schedulable{node=\"n1\"} 0\n", "node n1: kube_spread_node_schedulable is 0 but it has no unschedulable reason"},
		{"a reason for an unknown node", synced + "kube_spread_node_unschedulable_reason{node=\"n1\",reason=\"cordoned\"} 1\n", "node n1: kube_spread_node_unschedulable_reason without kube_spread_node_schedulable"},
		{"a service domain without the cluster's", synced + figures + `kube_spread_min_nodes{namespace="a",kind="Deployment",name="x"} 2` + "\n" + `kube_spread_topology_domains{namespace="a",kind="Deployment",name="x",topology_key="zone"} 1` + "\n",
			`kube_spread_topology_domains{topology_key="zone"}: no kube_spread_cluster_topology_domains for that key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			families, err := ParseText([]byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Rebuild(families)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v, want %s", err, tc.want)
			}
		})
	}
	if _, err := Rebuild(map[string]*dto.MetricFamily{}); !errors.Is(err, ErrNotExporter) {
		t.Errorf("empty exposition: error = %v, want ErrNotExporter", err)
	}
}

// FuzzRebuild: whatever the page holds, parsing and rebuilding never
// panic, and a report that rebuilds is one Findings can judge.
func FuzzRebuild(f *testing.F) {
	day2, err := os.ReadFile("../../collector/testdata/mathoid-day-two.prom")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(day2)
	f.Fuzz(func(t *testing.T, text []byte) {
		families, err := ParseText(text)
		if err != nil {
			return
		}
		report, err := Rebuild(families)
		if err != nil {
			return
		}
		for _, s := range report.Services {
			if len(s.Domains) != len(report.Domains) {
				t.Fatalf("service %s has %d domains, cluster %d", Key(s.Service), len(s.Domains), len(report.Domains))
			}
		}
		for _, finding := range report.Findings() {
			if finding.Severity != spread.SeverityCritical && finding.Severity != spread.SeverityWarning {
				t.Fatalf("finding with severity %q", finding.Severity)
			}
		}
		all, _ := NewFilter(".*", ".*", ".*")
		r := Services(report, ServicesOptions{Filter: all, Critical: mustRange("0"), Warning: mustRange("0")})
		var buf bytes.Buffer
		if err := r.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(buf.String(), "\n"); strings.Count(first, "|") != 1 {
			t.Fatalf("first line has %d '|': %q", strings.Count(first, "|"), first)
		}
	})
}
