package collector

import (
	"bufio"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"

	"github.com/kube-spread-exporter/kube-spread-exporter/admission"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// metricDoc is one row of a metrics table in docs/metrics.md.
type metricDoc struct {
	Type   string
	Labels []string
}

// documentedMetrics reads the tables of docs/metrics.md: rows whose first
// cell is a backquoted kube_spread_ name.
func documentedMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	f, err := os.Open("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := make(map[string]metricDoc)
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		cells := strings.Split(scanner.Text(), "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`"+Namespace+"_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		var labels []string
		for _, label := range strings.Split(cells[3], ",") {
			if label = strings.Trim(strings.TrimSpace(label), "`"); label != "" {
				labels = append(labels, label)
			}
		}
		slices.Sort(labels)
		if _, dup := docs[name]; dup {
			t.Errorf("docs/metrics.md documents %s twice", name)
		}
		docs[name] = metricDoc{Type: strings.TrimSpace(cells[2]), Labels: labels}
	}
	return docs
}

// TestDocsMatchCode gathers every metric the exporter can publish and
// compares names, types and label names with docs/metrics.md, both ways.
// The families about displaced replicas need a cluster with placement
// input, so it gathers from two.
func TestDocsMatchCode(t *testing.T) {
	var families []*dto.MetricFamily
	for _, cluster := range []*spread.Cluster{mathoidDayTwo(), mathoidMaintenance(t)} {
		c := New(&fakeSource{cluster: cluster, status: syncedStatus, freshness: freshSource}, Options{Analysis: spread.Options{DefaultMinNodes: 2}, NodeReplicas: true}, slog.New(slog.DiscardHandler))
		// The admission webhook's, which the exporter registers with the
		// collector while the webhook listens.
		families = append(families, gather(t, c, versioncollector.NewCollector(Namespace), admission.NewMetrics())...)
	}
	published := make(map[string]metricDoc)
	for _, family := range families {
		labelSet := make(map[string]bool)
		for _, m := range family.GetMetric() {
			for _, pair := range m.GetLabel() {
				labelSet[pair.GetName()] = true
			}
		}
		labels := slices.Sorted(func(yield func(string) bool) {
			for label := range labelSet {
				if !yield(label) {
					return
				}
			}
		})
		published[family.GetName()] = metricDoc{Type: strings.ToLower(dto.MetricType_name[int32(family.GetType())]), Labels: labels}
	}

	documented := documentedMetrics(t)
	for name, got := range published {
		doc, ok := documented[name]
		switch {
		case !ok:
			t.Errorf("%s is published but not documented in docs/metrics.md", name)
		case doc.Type != got.Type:
			t.Errorf("%s: docs say type %s, code publishes %s", name, doc.Type, got.Type)
		case !slices.Equal(doc.Labels, got.Labels):
			t.Errorf("%s: docs say labels %v, code publishes %v", name, doc.Labels, got.Labels)
		}
	}
	for name := range documented {
		if _, ok := published[name]; !ok {
			t.Errorf("%s is documented in docs/metrics.md but not published", name)
		}
	}
}
