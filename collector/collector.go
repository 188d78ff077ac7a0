// Package collector publishes the spread analysis as Prometheus metrics.
//
// A scrape writes the analysis of the informer caches as they are: it is
// redone from a fresh snapshot whenever the caches changed since the last
// one, so no series outlives the object it describes and deleted services
// and nodes disappear from the next scrape.
//
// The figures of services and nodes are written straight into the text
// exposition format (exposition.go) rather than built as constant metrics
// and gathered by a registry. At 150,000 pods that is half a million
// series, and client_golang's per-series work (label validation, dto
// messages, sorting, consistency hashing) took seconds and hundreds of
// megabytes per scrape; kube-state-metrics writes its own exposition for
// the same reason. The exporter's own metrics (cache health, build, Go and
// process) stay ordinary collectors in a registry, and Handler merges both
// into one exposition, family by family in name order, as the registry
// would.
package collector

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// Namespace prefixes every metric of the exporter.
const Namespace = "kube_spread"

// Source is what the collector reads: the informer caches and their health.
type Source interface {
	// SnapshotForScrape returns the analysis input, or
	// cluster.ErrCacheNotSynced. Its Placement may be nil when no
	// unschedulable node holds a pod (see
	// cluster.Watcher.SnapshotForScrape): nothing is displaced then.
	SnapshotForScrape() (*spread.Cluster, error)
	Status() []cluster.ResourceStatus
	InvalidAnnotations() uint64
	Freshness() cluster.Freshness
	// Generation changes whenever a snapshot's content may have: the
	// collector analyses again only then (see cluster.Watcher.Generation).
	Generation() uint64
}

// Options tune what the collector publishes.
type Options struct {
	// Analysis is passed to spread.Analyze.
	Analysis spread.Options
	// NodeReplicas publishes kube_spread_node_replicas, one series per
	// service and node: useful for dashboards, costly in large clusters.
	NodeReplicas bool
	// NodeReplicasAtRisk publishes it only for the services at risk
	// (see atRisk): the ones an operator looks at during maintenance,
	// and a small share of the cluster's pods.
	NodeReplicasAtRisk bool
	// FullAnalysis analyses the whole cluster after every change, from a
	// whole snapshot: the reference the incremental analysis is held to
	// (see Follower). Without it, a source that can be followed is.
	FullAnalysis bool
}

// Followable is a Source that can tell what changed between snapshots
// (cluster.Watcher): the collector then snapshots and analyses only the
// services a change touched.
type Followable interface {
	Follow() *cluster.Follower
}

// Collector publishes the spread figures and the health of the caches. As a
// prometheus.Collector it emits only the health; the figures reach a scrape
// through Handler, which writes them itself (see the package comment).
type Collector struct {
	source  Source
	options Options
	logger  *slog.Logger

	// last is the analysis of the caches at generation lastGeneration,
	// nil before the first one. mu makes concurrent scrapes (two
	// Prometheus servers, say) wait for one analysis and share it.
	mu             sync.Mutex
	last           *scrape
	lastGeneration uint64
	// analyses counts the analyses, for their ids; updates those built
	// from the one before (see analyse).
	analyses, updates uint64
	// follower is nil when the collector analyses the whole cluster
	// after every change; otherwise base is its last snapshot and
	// baseReport the analysis of it, which the next is built from. Both
	// keep the services' replicas, which the scrape alone would not.
	follower   *cluster.Follower
	base       *spread.Cluster
	baseReport *spread.Report
	// layout is the last analysis' order of services as written: the
	// next keeps it when it has the same services.
	layout *layout

	cacheSynced, listWatchErrors, lastUpdate, annotationErrors *prometheus.Desc
	apiServerUp, cacheConfirmed                                *prometheus.Desc
}

// New returns a collector reading from source.
func New(source Source, options Options, logger *slog.Logger) *Collector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	c := &Collector{
		source:  source,
		options: options,
		logger:  logger,

		cacheSynced:      desc("cache_synced", "1 once the informer cache of the resource has synced.", "resource"),
		listWatchErrors:  desc("list_watch_errors_total", "Failed lists and broken watches of the resource.", "resource"),
		lastUpdate:       desc("cache_last_update_timestamp_seconds", "When the cache of the resource last applied an event from the API server.", "resource"),
		annotationErrors: desc("min_nodes_annotation_errors_total", "Invalid kube-spread.io/min-nodes annotations seen; the default was used instead."),
		apiServerUp:      desc("api_server_up", "1 if the last probe of the API server's /readyz succeeded."),
		cacheConfirmed:   desc("cache_confirmed_timestamp_seconds", "When the caches were last confirmed fresh: API server ready, every cache synced, no list or watch failed since the probe before."),
	}
	if f, ok := source.(Followable); ok && !options.FullAnalysis {
		c.follower = f.Follow()
	}
	return c
}

// Describe sends the descriptors of the health metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.cacheSynced, c.listWatchErrors, c.lastUpdate, c.annotationErrors,
		c.apiServerUp, c.cacheConfirmed,
	} {
		ch <- d
	}
}

// Collect emits the health of the caches.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.source.Status() {
		ch <- prometheus.MustNewConstMetric(c.cacheSynced, prometheus.GaugeValue, boolValue(s.Synced), s.Resource)
		ch <- prometheus.MustNewConstMetric(c.listWatchErrors, prometheus.CounterValue, float64(s.ListWatchErrors), s.Resource)
		if !s.LastUpdate.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastUpdate, prometheus.GaugeValue, float64(s.LastUpdate.UnixNano())/1e9, s.Resource)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.annotationErrors, prometheus.CounterValue, float64(c.source.InvalidAnnotations()))
	freshness := c.source.Freshness()
	if freshness.Probed {
		ch <- prometheus.MustNewConstMetric(c.apiServerUp, prometheus.GaugeValue, boolValue(freshness.APIServerUp))
	}
	if !freshness.Confirmed.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.cacheConfirmed, prometheus.GaugeValue, float64(freshness.Confirmed.UnixNano())/1e9)
	}
}

// analysis returns the analysis of the caches as they are, reusing the
// last one while the caches have not changed since. It returns nil before
// the caches have synced: a partial cache would report services as missing
// or single-homed that are neither, so no figure is published at all.
//
// Reuse is what saves work between changes, and it is only as good as
// Generation's promise: read before the snapshot, the generation can only
// be older than what the snapshot holds, never newer.
func (c *Collector) analysis() *scrape {
	c.mu.Lock()
	defer c.mu.Unlock()
	generation := c.source.Generation()
	if c.last != nil && generation == c.lastGeneration {
		return c.last
	}
	// Drop the old analysis before building the next one: the garbage
	// collector sizes the heap at twice what it finds live, and holding
	// both while the next is built made it find both live at 150,000 pods
	// (about 25 MB each). A concurrent reader that got the old one keeps
	// it as long as it needs.
	c.last = nil
	snapshot, report, whole, err := c.analyse()
	if err != nil {
		if !errors.Is(err, cluster.ErrCacheNotSynced) {
			c.logger.Error("snapshot failed", "err", err)
		}
		return nil
	}
	c.last, c.lastGeneration = newScrape(snapshot, report, spread.PlaceDisplaced(snapshot.Placement, snapshot), c.layout), generation
	if whole {
		// An update's figures are few, and point at its own small slab.
		c.last.compact(c.follower == nil)
	}
	c.layout = c.last.layout(c.follower != nil)
	c.analyses++
	c.last.id = c.analyses
	return c.last
}

// analyse snapshots and analyses the caches: the whole cluster, or, with
// a follower, what changed since the last analysis, which then stands for
// the whole (whole is false).
func (c *Collector) analyse() (snapshot *spread.Cluster, report *spread.Report, whole bool, err error) {
	if c.follower == nil {
		if snapshot, err = c.source.SnapshotForScrape(); err != nil {
			return nil, nil, false, err
		}
		return snapshot, spread.Analyze(snapshot, c.options.Analysis), true, nil
	}
	snapshot, nodes, whole, err := c.follower.SnapshotForScrape(c.base)
	if err != nil {
		c.base, c.baseReport = nil, nil
		return nil, nil, false, err
	}
	if whole {
		// Drop the old analysis before making the next (see analysis).
		c.base, c.baseReport = nil, nil
		report = spread.Analyze(snapshot, c.options.Analysis)
	} else {
		report = spread.ReanalyzeAfter(snapshot, c.baseReport, nodes, c.options.Analysis)
		c.updates++
	}
	c.base, c.baseReport = snapshot, report
	return snapshot, report, whole, nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
