package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/collector"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// clusterSource is a fixed cluster for the exporter's real handlers.
type clusterSource struct{ cluster *spread.Cluster }

func (s clusterSource) Snapshot() (*spread.Cluster, error)          { return s.cluster, nil }
func (s clusterSource) SnapshotForScrape() (*spread.Cluster, error) { return s.cluster, nil }
func (s clusterSource) Status() []cluster.ResourceStatus {
	return []cluster.ResourceStatus{{Resource: "nodes", Synced: true, LastUpdate: time.Now()}, {Resource: "pods", Synced: true}}
}
func (clusterSource) InvalidAnnotations() uint64 { return 0 }
func (clusterSource) Generation() uint64         { return 1 }
func (clusterSource) Freshness() cluster.Freshness {
	return cluster.Freshness{Probed: true, APIServerUp: true, Confirmed: time.Now()}
}

// exporter serves a cluster as the exporter does: /metrics and the API
// from one collector.
func exporter(t *testing.T, c *spread.Cluster) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	figures := collector.New(clusterSource{c}, collector.Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, logger)
	registry := prometheus.NewRegistry()
	registry.MustRegister(figures)
	mux := http.NewServeMux()
	mux.Handle("/metrics", collector.NewHandler(registry, figures, logger))
	checks := collector.NewAPI(figures, time.Now(), logger)
	mux.Handle(api.PathServices, checks)
	mux.Handle(api.PathHealth, checks)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL + "/metrics"
}

// troubledCluster is mathoid's day two plus services whose names hold
// what a label value may hold and a plugin line must not: CR, LF, '|'.
func troubledCluster() *spread.Cluster {
	nodes := map[string]*spread.Node{
		"kubernetes2001": {Name: "kubernetes2001", Domains: []string{"row-a"}, Unschedulable: []spread.Reason{spread.ReasonCordoned}},
		"kubernetes2002": {Name: "kubernetes2002", Domains: []string{"row-b"}, Unschedulable: []spread.Reason{spread.ReasonCordoned}},
		"kubernetes2003": {Name: "kubernetes2003", Domains: []string{"row-c"}},
		"kubernetes2004": {Name: "kubernetes2004", Domains: []string{"row-d"}},
	}
	on := func(nodes ...string) []spread.Replica {
		replicas := make([]spread.Replica, len(nodes))
		for i, n := range nodes {
			replicas[i] = spread.Replica{Node: n, Ready: true}
		}
		return replicas
	}
	return &spread.Cluster{
		TopologyKeys: []string{"topology.kubernetes.io/zone"},
		Nodes:        nodes,
		Services: []*spread.Service{
			{Namespace: "mathoid", Kind: spread.KindDeployment, Name: "mathoid", DesiredReplicas: 4, Replicas: on("kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")},
			{Namespace: "mathoid", Kind: spread.KindService, Name: "mathoid", DesiredReplicas: -1, Replicas: on("kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")},
			{Namespace: "odd", Kind: spread.KindDeployment, Name: "line\nbreak", DesiredReplicas: 2, Replicas: on("kubernetes2003", "kubernetes2004")},
			{Namespace: "odd", Kind: spread.KindDeployment, Name: "carriage\rreturn|pipe", DesiredReplicas: 2, Replicas: on("kubernetes2003", "kubernetes2003")},
			{Namespace: "odd", Kind: spread.KindDeployment, Name: "v1x2", DesiredReplicas: 2, Replicas: on("kubernetes2003", "kubernetes2004")},
		},
	}
}

// TestAPIAndMetricsAgree runs each check through the exporter's API and,
// with --no-api, through /metrics: the outputs are the same, byte for
// byte, and no label text breaks a line.
func TestAPIAndMetricsAgree(t *testing.T) {
	url := exporter(t, troubledCluster())
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantFirst string
	}{
		{"every service, the odd names included", []string{"services"}, 2,
			`CRITICAL - 2 critical, 1 warning of 5 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance, odd/Deployment/carriage\rreturn/pipe all 2 replicas on node kubernetes2003 | 'services'=5;;;0 'critical'=2;;0;0;5 'warning'=1;;;0;5 'not_ok'=3;0;;0;5 'replicas_ready'=14;;;0 'replicas_schedulable'=6;;;0`},
		{"a namespace", []string{"services", "--namespace", "odd"}, 1,
			`WARNING - 0 critical, 1 warning of 3 services: odd/Deployment/carriage\rreturn/pipe all 2 replicas on node kubernetes2003 | 'services'=3;;;0 'critical'=0;;0;0;3 'warning'=1;;;0;3 'not_ok'=1;0;;0;3 'replicas_ready'=6;;;0 'replicas_schedulable'=6;;;0`},
		{"one service", []string{"service", "--namespace", "mathoid", "--kind", "Deployment", "--name", "mathoid"}, 2,
			`CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=0;;;0 'nodes'=2;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=2;;;0`},
		{"a name with a newline", []string{"service", "--namespace", "odd", "--kind", "Deployment", "--name", "line\nbreak"}, 0,
			`OK - odd/Deployment/line\nbreak: 2 ready replicas on 2 nodes, 2 survive maintenance on 2 nodes, needs 2 nodes | 'replicas_desired'=2;;;0 'replicas_ready'=2;;;0 'replicas_schedulable'=2;;;0 'nodes'=2;;;0 'schedulable_nodes'=2;;;0 'min_nodes'=2;;;0`},
		{"a dot in a name is a dot", []string{"service", "--namespace", "odd", "--kind", "Deployment", "--name", "v1.2"}, 3,
			`UNKNOWN - odd/Deployment/v1.2 is not published by the exporter: check the names (kind is one of Service, Deployment, StatefulSet, ReplicaSet, ReplicationController) and the exporter's --namespaces.include`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCheck(append([]string{"--url", url}, tc.args...)...)
			first, _, _ := strings.Cut(out, "\n")
			if code != tc.wantCode || first != tc.wantFirst {
				t.Errorf("through the API: exit %d\n%s\nwant exit %d\n%s", code, first, tc.wantCode, tc.wantFirst)
			}
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if strings.ContainsAny(line, "\r\u2028\u2029") || strings.Count(line, "|") > 1 {
					t.Errorf("a label broke the output line %q", line)
				}
			}
			metricsCode, metricsOut := runCheck(append([]string{"--url", url, "--no-api"}, tc.args...)...)
			if metricsCode != code || metricsOut != out {
				t.Errorf("through /metrics: exit %d\n%s\nthrough the API: exit %d\n%s", metricsCode, metricsOut, code, out)
			}
		})
	}
}

// TestHealthThroughAPI: the API adds the error streaks /metrics lacks.
func TestHealthThroughAPI(t *testing.T) {
	url := exporter(t, troubledCluster())
	code, out := runCheck("health", "--url", url)
	const want = "OK - kube-spread-exporter: 2 of 2 caches synced, confirmed fresh 0s ago, 0 list/watch errors | 'caches_synced'=2;;;0;2 'not_synced_for'=0s;600;;0 'confirmed_age'="
	if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, "'list_watch_errors_for'=0s;900;;0") {
		t.Errorf("health through the API: exit %d\n%s\nwant exit 0, starting\n%s", code, out, want)
	}
	code, out = runCheck("health", "--url", url, "--no-api")
	if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, "KubeSpreadListWatchErrors is not judged") {
		t.Errorf("health through /metrics: exit %d\n%s", code, out)
	}
}
