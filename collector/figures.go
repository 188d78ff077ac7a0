package collector

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// family is one metric family of the figures: its name, help, and how to
// write its samples from one analysis. Every family is a gauge.
type family struct {
	name, help string
	// labels are the family's label names in the order they are written:
	// alphabetical, as the registry sorts them.
	labels []string
	// service writes the samples of one service, for the families with
	// samples per service; write writes all samples of the others. A
	// family has one of the two. Per-service samples depend on nothing
	// but the service and the topology keys, which is what lets a gzip
	// scrape reuse them while they do not change (compressed.go).
	service func(w *textWriter, s *scrape, svc *service)
	write   func(w *textWriter, s *scrape)
}

// writeAll writes every sample of the family from s.
func (f *family) writeAll(w *textWriter, s *scrape) {
	if f.service == nil {
		f.write(w, s)
		return
	}
	for i := range s.services {
		f.service(w, s, &s.services[i])
	}
}

// scrape is one analysis and the orders its families are written in. It
// is read by every scrape until the caches change, so nothing may modify it.
type scrape struct {
	// id tells the analyses of a collector apart: each has a new one.
	id     uint64
	report *spread.Report
	// services are the figures of every service in the order the registry
	// sorts samples: by label values, labels taken alphabetically (kind,
	// name, namespace). The report is sorted by namespace, kind and name
	// for its other readers.
	services []service
	// order is the index in report.Services of each of services.
	order []int32
	// keys are indexes into report.TopologyKeys, sorted by key.
	keys []int

	// schedulable counts the report's schedulable nodes, worked out once
	// for the JSON API (api.go) on its first request, never for /metrics.
	schedulableOnce sync.Once
	schedulable     int
}

// service is the figures of one service and its labels as written, which
// every per-service family repeats: escaped once per scrape rather than
// once per sample.
type service struct {
	*spread.Figures
	labels string
	// labelsHash hashes labels, figuresHash labels and figures (see
	// hashFigures): what a gzip scrape tells changed services by.
	labelsHash, figuresHash uint64
	placed
	// atRisk: see atRisk.
	atRisk bool
}

// atRisk reports whether some ready replicas of the service are on nodes
// going away, or the service needs two nodes or more and is at most one
// node from fewer than it needs (its surviving replicas on min_nodes
// nodes or fewer: single-homed and none surviving included), or has all
// its replicas in one topology domain while the cluster's schedulable
// nodes span two or more. These are the services the spread alerts
// (rules/) are about or one node's maintenance away from, such as mathoid
// the day before the 2018 outage, on exactly its two nodes; their number
// of per-node series is bounded by min_nodes, not by their replicas.
// clusterDomains are the report's Domains. A service whose displaced
// replicas find no room is at risk as well (placeDisplaced, once they are
// placed).
func atRisk(f *spread.Figures, clusterDomains []spread.Domains) bool {
	if f.ReplicasSchedulable < f.ReplicasReady {
		return true
	}
	if f.MinNodes < 2 || f.ReplicasReady == 0 {
		return false
	}
	if f.SchedulableNodes <= f.MinNodes {
		return true
	}
	if f.ReplicasReady >= 2 {
		for k, d := range f.Domains {
			if d.All == 1 && k < len(clusterDomains) && clusterDomains[k].Schedulable >= 2 {
				return true
			}
		}
	}
	return false
}

// placed is where the service's replicas on unschedulable nodes go, as
// the placement model sees it.
type placed struct {
	// unplaceable counts the replicas on unschedulable nodes that find no
	// room on the schedulable ones, when the model can judge them all
	// (unplaceableKnown).
	unplaceable      int
	unplaceableKnown bool
	// warmNodes counts the schedulable nodes that admit the service's pods
	// and hold all their images, when some of its pods are displaced
	// (displaced).
	warmNodes int
	displaced bool
}

// newScrape prepares the analysis of c for writing. displacement is where
// the pods of c's unschedulable nodes go; nil when c came without
// placement input. before is the layout of the scrape before, nil for
// the first: when the report has the same services, the order they are
// written in and their labels are before's, not sorted and escaped again.
func newScrape(c *spread.Cluster, report *spread.Report, displacement *spread.Displacement, before *layout) *scrape {
	s := &scrape{report: report, services: make([]service, len(report.Services))}
	fits := before.fits(report)
	if fits {
		for i, at := range before.order {
			s.services[i] = service{Figures: &report.Services[at], labels: before.labels[i], labelsHash: before.labelsHashes[i]}
		}
		s.order = before.order
	} else {
		s.order = sortServices(s, report)
	}
	for i := range s.services {
		svc := &s.services[i]
		svc.atRisk = atRisk(svc.Figures, report.Domains)
		if at := s.order[i]; fits && before.report != nil && sameFigures(svc.Figures, &before.report.Services[at]) {
			svc.figuresHash = before.figuresHashes[i]
		} else {
			svc.figuresHash = hashFigures(svc)
		}
	}
	placeDisplaced(c, s.services, displacement)
	s.keys = make([]int, len(report.TopologyKeys))
	for i := range s.keys {
		s.keys[i] = i
	}
	slices.SortFunc(s.keys, func(a, b int) int { return strings.Compare(report.TopologyKeys[a], report.TopologyKeys[b]) })
	return s
}

// sortServices fills in the services of s from report in the order they
// are written, with their labels, and returns the index in the report of
// each.
func sortServices(s *scrape, report *spread.Report) []int32 {
	order := make([]int32, len(report.Services))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := report.Services[a].Service, report.Services[b].Service
		return cmp.Or(
			strings.Compare(string(x.Kind), string(y.Kind)),
			strings.Compare(x.Name, y.Name),
			strings.Compare(x.Namespace, y.Namespace),
		)
	})
	// All label blocks live in one string, each service's a slice of it.
	var labels []byte
	ends := make([]int, len(order))
	for i, at := range order {
		svc := report.Services[at].Service
		labels = appendLabel(labels, "kind", string(svc.Kind))
		labels = append(labels, ',')
		labels = appendLabel(labels, "name", svc.Name)
		labels = append(labels, ',')
		labels = appendLabel(labels, "namespace", svc.Namespace)
		ends[i] = len(labels)
	}
	all, start := string(labels), 0
	for i, at := range order {
		s.services[i] = service{Figures: &report.Services[at], labels: all[start:ends[i]]}
		s.services[i].labelsHash = maphash.String(serviceSeed, s.services[i].labels)
		start = ends[i]
	}
	return order
}

// layout is what the next scrape may keep of one: the services of its
// report, in the report's order, and the order and labels they are
// written with. Most analyses have the same services as the one before,
// and sorting and escaping 30,000 of them took a third of a scrape after
// one pod changed at 150,000 pods.
//
// With report, the analysis itself, the next scrape also keeps the hashes
// of the figures it took unchanged from this one (spread.ReanalyzeAfter
// does): hashing every service's figures was most of what remained.
// The report is kept only when the collector keeps it anyway, as the base
// of its next analysis: else the old analysis would stay live while the
// next is built.
type layout struct {
	services     []*spread.Service
	order        []int32
	labels       []string
	labelsHashes []uint64
	report       *spread.Report
	// figuresHashes are by written position, as labels.
	figuresHashes []uint64
}

// layout returns the layout of s, with its report when keepReport. The
// services are the report's as they are now: call it after compact.
func (s *scrape) layout(keepReport bool) *layout {
	l := &layout{
		services: make([]*spread.Service, len(s.report.Services)), order: s.order,
		labels: make([]string, len(s.services)), labelsHashes: make([]uint64, len(s.services)),
	}
	for i := range s.report.Services {
		l.services[i] = s.report.Services[i].Service
	}
	for i := range s.services {
		l.labels[i], l.labelsHashes[i] = s.services[i].labels, s.services[i].labelsHash
	}
	if keepReport {
		l.report = s.report
		l.figuresHashes = make([]uint64, len(s.services))
		for i := range s.services {
			l.figuresHashes[i] = s.services[i].figuresHash
		}
	}
	return l
}

// sameFigures reports whether f are the figures b, copied: the same
// service and counts, their per-node and per-domain counts the same
// slices. Figures analysed again have slices of their own; equal empty
// ones say nothing more than the counts do.
func sameFigures(f, b *spread.Figures) bool {
	return f.Service == b.Service &&
		f.ReplicasReady == b.ReplicasReady && f.ReplicasSchedulable == b.ReplicasSchedulable &&
		f.Nodes == b.Nodes && f.SchedulableNodes == b.SchedulableNodes &&
		f.ConcentrationRatio == b.ConcentrationRatio && f.MinNodes == b.MinNodes &&
		sameSlice(f.NodeReplicas, b.NodeReplicas) && sameSlice(f.Domains, b.Domains)
}

func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// serviceSeed seeds the hashes of services' labels and figures.
var serviceSeed = maphash.MakeSeed()

// hashFigures hashes whatever a per-service family writes of svc that
// comes from its labels and figures; the rest (atRisk and placed, which
// the cluster's domains and the placement model decide) is hashed by the
// compressor. A field a family starts to write must be added here or
// there, or a gzip scrape goes on writing its old value:
// TestGzipScrapesFollowChanges compares gzip and plain scrapes across
// random changes.
func hashFigures(svc *service) uint64 {
	var h maphash.Hash
	h.SetSeed(serviceSeed)
	h.WriteString(svc.labels)
	h.WriteByte(0)
	f := svc.Figures
	values := [...]int{
		svc.Service.DesiredReplicas, f.ReplicasReady, f.ReplicasSchedulable, f.Nodes, f.SchedulableNodes, f.MinNodes,
		len(f.Domains), len(f.NodeReplicas), int(math.Float64bits(f.ConcentrationRatio)),
	}
	var b [len(values) * 8]byte
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[i*8:], uint64(v))
	}
	h.Write(b[:])
	for _, d := range f.Domains {
		h.WriteString(d.Key)
		h.WriteByte(0)
		var n [16]byte
		binary.LittleEndian.PutUint64(n[:8], uint64(d.All))
		binary.LittleEndian.PutUint64(n[8:], uint64(d.Schedulable))
		h.Write(n[:])
	}
	for _, n := range f.NodeReplicas {
		h.WriteString(n.Node)
		var count [8]byte
		binary.LittleEndian.PutUint64(count[:], uint64(n.Count))
		h.Write(count[:])
	}
	return h.Sum64()
}

// fits reports whether report has the services of l, in l's order.
func (l *layout) fits(report *spread.Report) bool {
	if l == nil || len(l.services) != len(report.Services) {
		return false
	}
	for i, svc := range l.services {
		other := report.Services[i].Service
		if svc != other && (svc.Namespace != other.Namespace || svc.Kind != other.Kind || svc.Name != other.Name) {
			return false
		}
	}
	return true
}

// compact leaves the scrape only what its readers need, for it is kept
// until the caches change. At 150,000 pods it was a third of the
// exporter's live heap beyond its caches:
//   - the figures point at copies of their services without the replicas
//     they were counted from (24 bytes for every pod and every endpoint);
//   - the per-node counts move from the analysis's slab, sized for a node
//     per replica, to one of their exact size, and services with the same
//     counts (a Deployment and the Service in front of it) share them.
//
// The snapshot is left as it is: its source may share it. Without
// replicas, the kept report cannot be given to spread.Reanalyze (it
// indexes services by their replicas' nodes): dropReplicas is false when
// the collector builds its next analysis from this one, and keeps the
// snapshot anyway.
func (s *scrape) compact(dropReplicas bool) {
	figures := s.report.Services
	// same[i] is the first service with the counts of service i, or i.
	same := make([]int32, len(figures))
	byHash := make(map[uint64][]int32, len(figures))
	var h maphash.Hash
	size := 0
	for i := range figures {
		counts := figures[i].NodeReplicas
		same[i] = int32(i)
		if len(counts) == 0 {
			continue
		}
		h.Reset()
		for _, n := range counts {
			h.WriteString(n.Node)
			maphash.WriteComparable(&h, n.Count)
		}
		sum := h.Sum64()
		for _, j := range byHash[sum] {
			if slices.Equal(figures[j].NodeReplicas, counts) {
				same[i] = j
				break
			}
		}
		if same[i] == int32(i) {
			byHash[sum] = append(byHash[sum], int32(i))
			size += len(counts)
		}
	}
	slab := make([]spread.NodeCount, 0, size)
	var headers []spread.Service
	if dropReplicas {
		headers = make([]spread.Service, len(figures))
	}
	for i := range figures {
		f := &figures[i]
		switch {
		case len(f.NodeReplicas) == 0:
			// Even empty, a slice of the analysis's slab keeps it alive.
			f.NodeReplicas = nil
		case same[i] != int32(i):
			f.NodeReplicas = figures[same[i]].NodeReplicas // moved already
		default:
			start := len(slab)
			slab = append(slab, f.NodeReplicas...)
			f.NodeReplicas = slab[start:len(slab):len(slab)]
		}
		if dropReplicas {
			headers[i] = *f.Service
			headers[i].Replicas = nil
			f.Service = &headers[i]
		}
	}
}

var serviceLabels = []string{"kind", "name", "namespace"}

// placeDisplaced fills in where each service's displaced replicas go.
//
// Without placement input (the watcher builds none while no unschedulable
// node holds a pod) a service none of whose replicas is on an
// unschedulable node has nothing to place, so 0 unplaceable; one that has
// some, from a source without the input, is not judged. Warm nodes are
// counted for the services with displaced pods only: theirs are the
// replicas about to start elsewhere, and counting them for every service
// would need the placement input on every scrape.
func placeDisplaced(c *spread.Cluster, services []service, displacement *spread.Displacement) {
	if displacement == nil && !anyUnschedulable(c) {
		// Nothing to place, and no replica to look at to know it.
		for i := range services {
			services[i].unplaceableKnown = true
		}
		return
	}
	var displaced []*spread.Service
	var displacedIndex []int
	for i := range services {
		svc := &services[i]
		if !displacement.HasDisplaced(svc.Service) {
			svc.unplaceableKnown = displacement != nil || !onUnschedulableNode(c, svc.Service)
			continue
		}
		summary := displacement.Summary(svc.Service)
		// The replicas certain to find no room: with some the model cannot
		// judge, the service is no_room all the same, and they are not
		// counted.
		svc.unplaceable, svc.unplaceableKnown = summary.NoRoom(), summary.State != placement.StateUnknown
		// KubeSpreadMaintenanceNoRoom pages for a service whose displaced
		// replicas find no room, ready or not: at risk too, so that its
		// runbook's per-node query has data. The compressor hashes atRisk,
		// so setting it after the figures' hash is safe.
		if svc.unplaceableKnown && svc.unplaceable > 0 && svc.MinNodes >= 2 {
			svc.atRisk = true
		}
		svc.displaced = true
		displaced = append(displaced, svc.Service)
		displacedIndex = append(displacedIndex, i)
	}
	if len(displaced) == 0 {
		return
	}
	for i, warm := range displacement.WarmNodes(displaced) {
		services[displacedIndex[i]].warmNodes = warm
	}
}

// anyUnschedulable reports whether some node of c is unschedulable.
func anyUnschedulable(c *spread.Cluster) bool {
	for _, n := range c.Nodes {
		if !n.Schedulable() {
			return true
		}
	}
	return false
}

// onUnschedulableNode reports whether some replica of the service that a
// node going away would displace (not a finished pod: the watcher builds
// no placement input for those, and they need none) is on an
// unschedulable node of c.
func onUnschedulableNode(c *spread.Cluster, svc *spread.Service) bool {
	for _, r := range svc.Replicas {
		if n, ok := c.Nodes[r.Node]; ok && !r.Finished && !n.Schedulable() {
			return true
		}
	}
	return false
}

// perService is a family with one sample per service, when value says so.
func perService(name, help string, value func(f *service) (float64, bool)) family {
	return family{name: name, help: help, labels: serviceLabels, service: func(w *textWriter, _ *scrape, svc *service) {
		if v, ok := value(svc); ok {
			w.serviceSample(svc.labels, "", "", v)
		}
	}}
}

// perServiceDomain is a family with one sample per service and topology key.
func perServiceDomain(name, help string, value func(d spread.Domains) int) family {
	return family{name: name, help: help, labels: append(slices.Clone(serviceLabels), "topology_key"), service: func(w *textWriter, s *scrape, svc *service) {
		for _, k := range s.keys {
			if k < len(svc.Domains) {
				w.serviceSample(svc.labels, "topology_key", svc.Domains[k].Key, float64(value(svc.Domains[k])))
			}
		}
	}}
}

// perClusterDomain is a family with one sample per topology key.
func perClusterDomain(name, help string, value func(d spread.Domains) int) family {
	return family{name: name, help: help, labels: []string{"topology_key"}, write: func(w *textWriter, s *scrape) {
		for _, k := range s.keys {
			if k < len(s.report.Domains) {
				d := s.report.Domains[k]
				w.sample(float64(value(d)), "topology_key", d.Key)
			}
		}
	}}
}

// figureFamilies returns the families the options ask for, sorted by name
// as the registry sorts families.
func figureFamilies(options Options) []family {
	name := func(n string) string { return Namespace + "_" + n }
	families := []family{
		perService(name("replicas_desired"), "Replicas the workload asks for (spec.replicas); workloads only.",
			func(f *service) (float64, bool) {
				return float64(f.Service.DesiredReplicas), f.Service.DesiredReplicas >= 0
			}),
		perService(name("replicas_ready"), "Ready, not terminating replicas of the service on any node.",
			func(f *service) (float64, bool) { return float64(f.ReplicasReady), true }),
		perService(name("replicas_schedulable"), "Ready replicas of the service on schedulable nodes: the ones that survive maintenance.",
			func(f *service) (float64, bool) { return float64(f.ReplicasSchedulable), true }),
		perService(name("nodes"), "Distinct nodes holding ready replicas of the service.",
			func(f *service) (float64, bool) { return float64(f.Nodes), true }),
		perService(name("schedulable_nodes"), "Distinct schedulable nodes holding ready replicas of the service.",
			func(f *service) (float64, bool) { return float64(f.SchedulableNodes), true }),
		perService(name("node_concentration_ratio"), "Largest share of the service's ready replicas on one node; 1 means single-homed. Absent when nothing is ready.",
			func(f *service) (float64, bool) { return f.ConcentrationRatio, f.ReplicasReady > 0 }),
		perService(name("min_nodes"), "Nodes the service needs: the kube-spread.io/min-nodes annotation or the default, capped at its replicas.",
			func(f *service) (float64, bool) { return float64(f.MinNodes), true }),
		perService(name("replicas_unplaceable"), "Replicas of the service on unschedulable nodes that the placement model finds no room for on the schedulable nodes, all displaced pods competing. Absent when the model cannot judge them.",
			func(f *service) (float64, bool) { return float64(f.unplaceable), f.unplaceableKnown }),
		perService(name("warm_nodes"), "Schedulable nodes that admit the service's pods and already hold all their images; only for services with replicas on unschedulable nodes.",
			func(f *service) (float64, bool) { return float64(f.warmNodes), f.displaced }),
		perServiceDomain(name("topology_domains"), "Distinct topology domains holding ready replicas of the service.",
			func(d spread.Domains) int { return d.All }),
		perServiceDomain(name("schedulable_topology_domains"), "Distinct topology domains with ready replicas of the service on schedulable nodes.",
			func(d spread.Domains) int { return d.Schedulable }),
		perClusterDomain(name("cluster_topology_domains"), "Distinct topology domains among all nodes of the cluster.",
			func(d spread.Domains) int { return d.All }),
		perClusterDomain(name("cluster_schedulable_topology_domains"), "Distinct topology domains among schedulable nodes of the cluster.",
			func(d spread.Domains) int { return d.Schedulable }),
		{
			name: name("node_schedulable"), help: "1 if the node keeps its replicas through maintenance, 0 if it is going away.",
			labels: []string{"node"},
			write: func(w *textWriter, s *scrape) {
				for _, n := range s.report.Nodes {
					w.sample(boolValue(n.Node.Schedulable()), "node", n.Node.Name)
				}
			},
		},
		{
			name: name("node_unschedulable_reason"), help: "1 for each reason the node is unschedulable.",
			labels: []string{"node", "reason"},
			write: func(w *textWriter, s *scrape) {
				var reasons []string
				for _, n := range s.report.Nodes {
					reasons = reasons[:0]
					for _, r := range n.Node.Unschedulable {
						reasons = append(reasons, string(r))
					}
					slices.Sort(reasons)
					for _, r := range reasons {
						w.sample(1, "node", n.Node.Name, "reason", r)
					}
				}
			},
		},
		{
			name: name("node_single_homed_services"), help: "Services of the kind with two or more ready replicas, all on this node.",
			labels: []string{"kind", "node"},
			write: func(w *textWriter, s *scrape) {
				kinds := map[spread.Kind]bool{}
				for _, n := range s.report.Nodes {
					for kind := range n.SingleHomedServices {
						kinds[kind] = true
					}
				}
				for _, kind := range slices.Sorted(func(yield func(spread.Kind) bool) {
					for k := range kinds {
						if !yield(k) {
							return
						}
					}
				}) {
					for _, n := range s.report.Nodes {
						if count, ok := n.SingleHomedServices[kind]; ok {
							w.sample(float64(count), "kind", string(kind), "node", n.Node.Name)
						}
					}
				}
			},
		},
	}
	if options.NodeReplicas {
		help := "Ready replicas of the service on one node."
		if options.NodeReplicasAtRisk {
			help = "Ready replicas of the service on one node; only for services at risk: replicas on unschedulable nodes, on no more schedulable nodes than min nodes, or in one topology domain."
		}
		families = append(families, family{
			name: name("node_replicas"), help: help,
			labels: append(slices.Clone(serviceLabels), "node"),
			service: func(w *textWriter, _ *scrape, svc *service) {
				if options.NodeReplicasAtRisk && !svc.atRisk {
					return
				}
				for _, n := range svc.NodeReplicas {
					w.serviceSample(svc.labels, "node", n.Node, float64(n.Count))
				}
			},
		})
	}
	slices.SortFunc(families, func(a, b family) int { return strings.Compare(a.name, b.name) })
	return families
}
