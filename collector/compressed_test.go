package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// changingSource serves a cluster the test changes, moving the generation
// with each change.
type changingSource struct {
	fakeSource
	generation uint64
}

func (c *changingSource) Generation() uint64 { return c.generation }

// scrapeBoth returns a plain and a gzip scrape of h, the gzip one
// decompressed as one gzip member: readers that stop after the first
// member, such as curl --compressed, must get it all.
func scrapeBoth(t *testing.T, h *Handler) (plain, gzipped []byte) {
	t.Helper()
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var p, g bytes.Buffer
	if err := h.Write(&p, format); err != nil {
		t.Fatalf("plain scrape: %v", err)
	}
	if err := h.writeGzip(&g, format); err != nil {
		t.Fatalf("gzip scrape: %v", err)
	}
	gzipped = gunzipOneMember(t, g.Bytes())
	return p.Bytes(), gzipped
}

// gunzipOneMember decompresses the one gzip member that body must be,
// checking its CRC and length, and that nothing follows it.
func gunzipOneMember(t *testing.T, body []byte) []byte {
	t.Helper()
	in := bytes.NewReader(body)
	r, err := gzip.NewReader(in)
	if err != nil {
		t.Fatalf("gzip scrape: %v", err)
	}
	r.Multistream(false)
	text, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompress the gzip scrape: %v", err)
	}
	if in.Len() > 0 {
		t.Fatalf("%d bytes after the first gzip member", in.Len())
	}
	return text
}

// TestGzipScrapesFollowChanges: a gzip scrape reuses the pieces of
// services whose figures did not change, and after every random change of
// the cluster it decompresses to exactly the plain scrape, which renders
// every sample afresh.
func TestGzipScrapesFollowChanges(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			source := &changingSource{fakeSource: fakeSource{cluster: randomCluster(seed), status: syncedStatus, freshness: freshSource}, generation: 1}
			// Both scopes of kube_spread_node_replicas.
			options := Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true, NodeReplicasAtRisk: seed%2 == 0}
			c := New(source, options, slog.New(slog.DiscardHandler))
			registry := prometheus.NewPedanticRegistry()
			registry.MustRegister(c)
			h := NewHandler(registry, c, slog.New(slog.DiscardHandler))
			h.compressor.marker = 7 // chunks of 8 services on average
			var applied []string
			for step := range 150 {
				if step > 0 {
					applied = append(applied, mutate(r, source.cluster))
					source.generation++
				}
				plain, gzipped := scrapeBoth(t, h)
				if diff := firstDifference(string(plain), string(gzipped)); diff != "" {
					t.Fatalf("after %d changes (the last: %s), the gzip scrape is not the plain one: %s", step, strings.Join(applied[max(0, len(applied)-5):], ", "), diff)
				}
			}
			// The changes touch a few services each: most pieces must have
			// been reused, or this test proved nothing about reuse.
			if h.compressor.reused < 4*h.compressor.compressed {
				t.Errorf("%d pieces reused, %d compressed: reuse is not exercised", h.compressor.reused, h.compressor.compressed)
			}
		})
	}
}

// mutate changes c at random the way the caches change, and says how.
func mutate(r *rand.Rand, c *spread.Cluster) string {
	nodes := slices.Sorted(func(yield func(string) bool) {
		for name := range c.Nodes {
			if !yield(name) {
				return
			}
		}
	})
	svc := c.Services[r.IntN(len(c.Services))]
	switch r.IntN(8) {
	case 0:
		if len(svc.Replicas) == 0 {
			return "nothing"
		}
		i := r.IntN(len(svc.Replicas))
		svc.Replicas[i].Ready = !svc.Replicas[i].Ready
		return "readiness"
	case 1:
		if len(svc.Replicas) == 0 {
			return "nothing"
		}
		svc.Replicas[r.IntN(len(svc.Replicas))].Node = nodes[r.IntN(len(nodes))]
		return "replica moved"
	case 2:
		node := c.Nodes[nodes[r.IntN(len(nodes))]]
		if node.Schedulable() {
			node.Unschedulable = []spread.Reason{spread.ReasonCordoned}
		} else {
			node.Unschedulable = nil
		}
		return "cordon"
	case 3:
		svc.MinNodes = r.IntN(5)
		return "min nodes"
	case 4:
		if svc.Kind != spread.KindService {
			svc.DesiredReplicas = r.IntN(10)
		}
		return "desired"
	case 5:
		svc.Replicas = append(svc.Replicas, spread.Replica{Node: nodes[r.IntN(len(nodes))], Ready: true})
		return "replica added"
	case 6:
		name := fmt.Sprintf("new-%d", r.Uint64())
		added := &spread.Service{Namespace: svc.Namespace, Kind: spread.KindDeployment, Name: name, DesiredReplicas: 2, Replicas: []spread.Replica{
			{Node: nodes[r.IntN(len(nodes))], Ready: true}, {Node: nodes[r.IntN(len(nodes))], Ready: true},
		}}
		c.Services = append(c.Services, added)
		slices.SortFunc(c.Services, func(a, b *spread.Service) int {
			return strings.Compare(a.Namespace+"/"+string(a.Kind)+"/"+a.Name, b.Namespace+"/"+string(b.Kind)+"/"+b.Name)
		})
		return "service created"
	default:
		c.Services = slices.DeleteFunc(c.Services, func(s *spread.Service) bool { return s == svc })
		return "service deleted"
	}
}

// TestGzipScrapeWithPlacement: the families of displaced replicas come out
// of a gzip scrape as out of a plain one.
func TestGzipScrapeWithPlacement(t *testing.T) {
	source := &fakeSource{cluster: mathoidMaintenance(t), status: syncedStatus, freshness: freshSource}
	c := New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(c)
	plain, gzipped := scrapeBoth(t, NewHandler(registry, c, slog.New(slog.DiscardHandler)))
	if diff := firstDifference(string(plain), string(gzipped)); diff != "" {
		t.Fatalf("the gzip scrape is not the plain one: %s", diff)
	}
	for _, want := range []string{"kube_spread_replicas_unplaceable{", "kube_spread_warm_nodes{"} {
		if !bytes.Contains(gzipped, []byte(want)) {
			t.Errorf("the gzip scrape has no %s sample", want)
		}
	}
}

// TestGzipScrapeBeforeSync: with no figures and nothing gathered, a gzip
// scrape is still a valid, empty gzip stream.
func TestGzipScrapeBeforeSync(t *testing.T) {
	c := New(&fakeSource{err: fmt.Errorf("not synced")}, Options{}, slog.New(slog.DiscardHandler))
	var out bytes.Buffer
	if err := NewHandler(prometheus.NewRegistry(), c, slog.New(slog.DiscardHandler)).writeGzip(&out, expfmt.NewFormat(expfmt.TypeTextPlain)); err != nil {
		t.Fatal(err)
	}
	if body := gunzipOneMember(t, out.Bytes()); len(body) != 0 {
		t.Fatalf("read %q, want an empty body", body)
	}
}

// TestNodeReplicasAtRisk: with NodeReplicasAtRisk, a service has
// kube_spread_node_replicas series exactly when its own published figures
// say it is at risk (replicas on unschedulable nodes; or min_nodes of two
// or more and no more surviving nodes than that, or all replicas in one
// topology domain of a cluster with two or more), and every other sample
// is unchanged.
func TestNodeReplicasAtRisk(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			source := &fakeSource{cluster: randomCluster(seed), status: syncedStatus, freshness: freshSource}
			all := gather(t, New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler)))
			atRisk := gather(t, New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true, NodeReplicasAtRisk: true}, slog.New(slog.DiscardHandler)))

			values := map[string]map[string]float64{} // family, series -> value
			for _, f := range all {
				values[f.GetName()] = map[string]float64{}
				for _, m := range f.GetMetric() {
					values[f.GetName()][seriesKey(m)] = m.GetGauge().GetValue()
				}
			}
			at := func(family, service string) float64 { return values["kube_spread_"+family][service] }
			risky := func(service string) bool {
				ready, min := at("replicas_ready", service), at("min_nodes", service)
				if at("replicas_schedulable", service) < ready {
					return true
				}
				if min < 2 || ready == 0 {
					return false
				}
				if at("schedulable_nodes", service) <= min {
					return true
				}
				for series, domains := range values["kube_spread_topology_domains"] {
					service2, key, _ := strings.Cut(series, "|")
					if service2 == service && domains == 1 && ready >= 2 && values["kube_spread_cluster_schedulable_topology_domains"]["|"+key] >= 2 {
						return true
					}
				}
				return false
			}

			published, left := map[string]bool{}, 0
			for _, f := range all {
				var kept []*dto.Metric
				for _, m := range f.GetMetric() {
					if f.GetName() != "kube_spread_node_replicas" || risky(serviceKey(m)) {
						kept = append(kept, m)
						if f.GetName() == "kube_spread_node_replicas" {
							published[serviceKey(m)] = true
						}
					} else {
						left++
					}
				}
				f.Metric = kept
			}
			if len(published) == 0 || left == 0 {
				t.Fatalf("%d services at risk, %d node series left out: the cluster exercises nothing", len(published), left)
			}
			var want, got bytes.Buffer
			for _, f := range all {
				if len(f.GetMetric()) > 0 {
					if _, err := expfmt.MetricFamilyToText(&want, f); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, f := range atRisk {
				f.Help = all[slices.IndexFunc(all, func(a *dto.MetricFamily) bool { return a.GetName() == f.GetName() })].Help
				if _, err := expfmt.MetricFamilyToText(&got, f); err != nil {
					t.Fatal(err)
				}
			}
			if diff := firstDifference(want.String(), got.String()); diff != "" {
				t.Errorf("at-risk scope: %s", diff)
			}
		})
	}
}

// serviceKey is a metric's namespace, kind and name; "" for a metric
// without them.
func serviceKey(m *dto.Metric) string {
	var namespace, kind, name string
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "namespace":
			namespace = l.GetValue()
		case "kind":
			kind = l.GetValue()
		case "name":
			name = l.GetValue()
		}
	}
	if name == "" {
		return ""
	}
	return namespace + "/" + kind + "/" + name
}

// seriesKey is serviceKey, then "|" and the topology key when the metric
// has one.
func seriesKey(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "topology_key" {
			return serviceKey(m) + "|" + l.GetValue()
		}
	}
	return serviceKey(m)
}

// TestGzipScrapeReadByCurl: curl --compressed, which stops after the first
// gzip member, reads the whole exposition.
func TestGzipScrapeReadByCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl not found (%v): run `make system-deps`", err)
	}
	source := &fakeSource{cluster: randomCluster(3), status: syncedStatus, freshness: freshSource}
	c := New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(c)
	h := NewHandler(registry, c, slog.New(slog.DiscardHandler))
	h.compressor.marker = 7
	server := httptest.NewServer(h)
	defer server.Close()
	var plain bytes.Buffer
	if err := h.Write(&plain, expfmt.NewFormat(expfmt.TypeTextPlain)); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(curl, "--silent", "--show-error", "--fail", "--compressed", server.URL).Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	if diff := firstDifference(plain.String(), string(got)); diff != "" {
		t.Fatalf("curl --compressed read another exposition: %s", diff)
	}
}

// TestPrepare: after Prepare, the first gzip scrape compresses nothing of
// the figures, and is still the plain exposition.
func TestPrepare(t *testing.T) {
	source := &changingSource{fakeSource: fakeSource{cluster: randomCluster(3), status: syncedStatus, freshness: freshSource}, generation: 1}
	c := New(source, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
	registry := prometheus.NewRegistry()
	registry.MustRegister(c)
	h := NewHandler(registry, c, slog.New(slog.DiscardHandler))
	h.Prepare()
	prepared := h.compressor.compressed
	if prepared == 0 {
		t.Fatal("Prepare compressed nothing")
	}
	plain, gzipped := scrapeBoth(t, h)
	if h.compressor.compressed != prepared {
		t.Errorf("the first scrape compressed %d pieces of figures after Prepare, want none", h.compressor.compressed-prepared)
	}
	if !bytes.Equal(plain, gzipped) {
		t.Errorf("gzip scrape after Prepare differs from the plain one: %s", firstDifference(string(plain), string(gzipped)))
	}
}
