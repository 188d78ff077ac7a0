package admission

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// namespace is the exporter's metric namespace (collector.Namespace); this
// package does not import the collector, whose tests gather these metrics
// to check docs/metrics.md.
const namespace = "kube_spread"

// Metrics are the webhook's self-metrics. A Metrics is a
// prometheus.Collector: register it with the exporter's registry.
type Metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics returns the webhook's metrics, every result at zero so that
// rates and alerts work from the first request.
func NewMetrics() *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "admission_requests_total",
			Help:      "Admission requests received by the webhook, by result: invalid, unchanged, safe, warned, denied, overridden, not_judged.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "admission_duration_seconds",
			Help:      "Time to answer an admission request that takes a node out of service: reading it, the what-if, writing the answer. The other requests run no what-if and are not observed.",
			// Around the webhook's timeoutSeconds (3 as shipped) and the
			// 50 ms it should take.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for _, r := range results {
		m.requests.WithLabelValues(string(r))
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
}

// observe counts a request and, when it was judged, how long it took. A
// nil Metrics counts nothing.
func (m *Metrics) observe(r result, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(string(r)).Inc()
	if r.judged() {
		m.duration.Observe(took.Seconds())
	}
}
