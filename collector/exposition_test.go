package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// randomCluster is a cluster with the shapes the writer must order and
// escape: every kind, names that sort differently by kind, name and
// namespace, two topology keys given out of order, nodes with several
// reasons, and label values that need escaping.
func randomCluster(seed uint64) *spread.Cluster {
	r := rand.New(rand.NewPCG(seed, 1))
	kinds := []spread.Kind{spread.KindService, spread.KindDeployment, spread.KindStatefulSet, spread.KindReplicaSet, spread.KindReplicationController}
	c := &spread.Cluster{TopologyKeys: []string{"topology.kubernetes.io/zone", "example.com/rack"}, Nodes: map[string]*spread.Node{}}
	var nodes []string
	for i := range 40 {
		name := fmt.Sprintf("node-%d", r.IntN(1000))
		if i == 0 {
			name = "odd\"node\\with\nnewline"
		}
		node := &spread.Node{Name: name, Domains: []string{fmt.Sprintf("zone-%d", r.IntN(3)), fmt.Sprintf("rack-%d", r.IntN(8))}}
		for _, reason := range spread.Reasons {
			if r.IntN(5) == 0 {
				node.Unschedulable = append(node.Unschedulable, reason)
			}
		}
		c.Nodes[name] = node
		nodes = append(nodes, name)
	}
	for range 300 {
		svc := &spread.Service{
			Namespace:       fmt.Sprintf("ns-%d", r.IntN(20)),
			Kind:            kinds[r.IntN(len(kinds))],
			Name:            fmt.Sprintf("svc-%d", r.IntN(100)),
			DesiredReplicas: r.IntN(2_000_000),
			MinNodes:        r.IntN(4),
		}
		if svc.Kind == spread.KindService {
			svc.DesiredReplicas = -1
		}
		// Some services live on one node, so single-homed counts appear.
		home := nodes[r.IntN(len(nodes))]
		for range r.IntN(12) {
			node := home
			if r.IntN(3) == 0 {
				node = nodes[r.IntN(len(nodes))]
			}
			svc.Replicas = append(svc.Replicas, spread.Replica{Node: node, Ready: r.IntN(6) > 0})
		}
		c.Services = append(c.Services, svc)
	}
	// The analysis wants each service once.
	slices.SortFunc(c.Services, func(a, b *spread.Service) int {
		return strings.Compare(a.Namespace+"/"+string(a.Kind)+"/"+a.Name, b.Namespace+"/"+string(b.Kind)+"/"+b.Name)
	})
	c.Services = slices.CompactFunc(c.Services, func(a, b *spread.Service) bool {
		return a.Namespace == b.Namespace && a.Kind == b.Kind && a.Name == b.Name
	})
	return c
}

// TestExpositionIsWhatExpfmtWrites holds the hand-written exposition to
// the libraries: parsed back, sorted the way the registry sorts, and
// written again by expfmt, it must come out byte for byte the same.
func TestExpositionIsWhatExpfmtWrites(t *testing.T) {
	sources := map[string]*fakeSource{
		"mathoid-day-two": {cluster: mathoidDayTwo(), status: syncedStatus, freshness: freshSource},
	}
	for seed := range uint64(5) {
		sources[fmt.Sprintf("random-%d", seed)] = &fakeSource{cluster: randomCluster(seed), status: syncedStatus, freshness: freshSource}
	}
	for name, source := range sources {
		for _, nodeReplicas := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/node_replicas=%t", name, nodeReplicas), func(t *testing.T) {
				got := expose(t, New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: nodeReplicas}, slog.New(slog.DiscardHandler)))
				parsed, err := parseExposition(bytes.NewReader(got))
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				for _, family := range parsed {
					for _, m := range family.GetMetric() {
						slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
					}
				}
				// Gatherers checks every metric for consistency (valid names,
				// no duplicate label sets) and sorts families and metrics.
				families, err := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
					return slices.Collect(func(yield func(*dto.MetricFamily) bool) {
						for _, f := range parsed {
							if !yield(f) {
								return
							}
						}
					}), nil
				})}.Gather()
				if err != nil {
					t.Fatalf("gather the parsed exposition: %v", err)
				}
				var want bytes.Buffer
				for _, f := range families {
					if _, err := expfmt.MetricFamilyToText(&want, f); err != nil {
						t.Fatal(err)
					}
				}
				if diff := firstDifference(want.String(), string(got)); diff != "" {
					t.Errorf("the exposition is not what expfmt writes: %s", diff)
				}
				if series := strings.Count(string(got), "\n") - 2*len(families); series < 100 && strings.HasPrefix(name, "random") {
					t.Errorf("only %d series: the random cluster exercises nothing", series)
				}
			})
		}
	}
}

func TestHandlerNegotiates(t *testing.T) {
	c := New(&fakeSource{cluster: mathoidDayTwo(), status: syncedStatus, freshness: freshSource}, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	want := expose(t, c)
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(c)
	server := httptest.NewServer(NewHandler(registry, c, slog.New(slog.DiscardHandler)))
	defer server.Close()

	tests := []struct {
		name, accept, acceptEncoding string
		gzipped                      bool
	}{
		{name: "plain", gzipped: false},
		{name: "gzip", acceptEncoding: "gzip", gzipped: true},
		{name: "gzip among others", acceptEncoding: "br;q=1.0, gzip;q=0.8, *;q=0.1", gzipped: true},
		{name: "gzip refused", acceptEncoding: "gzip;q=0, identity", gzipped: false},
		{name: "only zstd", acceptEncoding: "zstd", gzipped: false},
		// Prometheus asks for OpenMetrics or protobuf first; the text
		// format is what it gets, and what it parses.
		{name: "prometheus", accept: "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", acceptEncoding: "gzip", gzipped: true},
		{name: "protobuf only", accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", gzipped: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, server.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", tc.acceptEncoding)
			}
			// A transport that leaves the body as it came.
			resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
				t.Errorf("Content-Type %q, want the text format", ct)
			}
			body := io.Reader(resp.Body)
			if gotGzip := resp.Header.Get("Content-Encoding") == "gzip"; gotGzip != tc.gzipped {
				t.Fatalf("Content-Encoding %q, want gzip %t", resp.Header.Get("Content-Encoding"), tc.gzipped)
			}
			if tc.gzipped {
				if body, err = gzip.NewReader(resp.Body); err != nil {
					t.Fatal(err)
				}
			}
			got, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := firstDifference(string(want), string(got)); diff != "" {
				t.Errorf("body: %s", diff)
			}
		})
	}
}
