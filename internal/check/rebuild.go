package check

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// The series the check reads; docs/metrics.md is their contract.
const (
	metricCacheSynced             = "kube_spread_cache_synced"
	metricListWatchErrors         = "kube_spread_list_watch_errors_total"
	metricCacheLastUpdate         = "kube_spread_cache_last_update_timestamp_seconds"
	metricBuildInfo               = "kube_spread_build_info"
	metricCacheConfirmed          = "kube_spread_cache_confirmed_timestamp_seconds"
	metricAPIServerUp             = "kube_spread_api_server_up"
	metricProcessStart            = "process_start_time_seconds"
	metricReplicasDesired         = "kube_spread_replicas_desired"
	metricReplicasReady           = "kube_spread_replicas_ready"
	metricReplicasSchedulable     = "kube_spread_replicas_schedulable"
	metricNodes                   = "kube_spread_nodes"
	metricSchedulableNodes        = "kube_spread_schedulable_nodes"
	metricConcentration           = "kube_spread_node_concentration_ratio"
	metricMinNodes                = "kube_spread_min_nodes"
	metricTopologyDomains         = "kube_spread_topology_domains"
	metricSchedulableDomains      = "kube_spread_schedulable_topology_domains"
	metricNodeReplicas            = "kube_spread_node_replicas"
	metricNodeSchedulable         = "kube_spread_node_schedulable"
	metricNodeUnschedulableReason = "kube_spread_node_unschedulable_reason"
	metricNodeSingleHomed         = "kube_spread_node_single_homed_services"
	metricClusterDomains          = "kube_spread_cluster_topology_domains"
	metricClusterSchedDomains     = "kube_spread_cluster_schedulable_topology_domains"
)

// ErrNotExporter: the page has no kube_spread_cache_synced series, so
// --url points at something else (another exporter, a proxy's page).
var ErrNotExporter = errors.New("no " + metricCacheSynced + " series: is --url the /metrics of a kube-spread-exporter?")

// ErrCachesNotSynced: the exporter has not synced its caches yet and
// publishes no figures; judging an empty list would be a false OK.
var ErrCachesNotSynced = errors.New("exporter caches not synced yet, no figures published")

// maxCount bounds counts read from the exposition: far above any cluster,
// and small enough that no conversion to int overflows.
const maxCount = 1 << 31

// ServiceKey names a service as its labels do.
type ServiceKey struct {
	Namespace, Kind, Name string
}

// String is namespace/Kind/name, the form the check prints.
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Kind + "/" + k.Name }

// Key returns the key of a service of a report.
func Key(s *spread.Service) ServiceKey {
	return ServiceKey{s.Namespace, string(s.Kind), s.Name}
}

// CacheStatus is the state of one informer cache of the exporter.
type CacheStatus struct {
	Resource        string
	Synced          bool
	ListWatchErrors float64
	// LastUpdate is the Unix time of the last event applied; 0 for none.
	LastUpdate float64
	// ErrorsSince and LastError are the current streak of list/watch
	// errors (zero when unknown or none): only /api/v1/health has them.
	ErrorsSince, LastError time.Time
}

// Caches reads the exporter's cache status, sorted by resource. It fails
// with ErrNotExporter when there is none.
func Caches(families map[string]*dto.MetricFamily) ([]CacheStatus, error) {
	byResource := make(map[string]*CacheStatus)
	get := func(m *dto.Metric, name string) (*CacheStatus, error) {
		resource, ok := label(m, "resource")
		if !ok {
			return nil, fmt.Errorf("%s without a resource label", name)
		}
		s := byResource[resource]
		if s == nil {
			s = &CacheStatus{Resource: resource}
			byResource[resource] = s
		}
		return s, nil
	}
	synced := families[metricCacheSynced]
	if synced == nil || len(synced.GetMetric()) == 0 {
		return nil, ErrNotExporter
	}
	for _, m := range synced.GetMetric() {
		s, err := get(m, metricCacheSynced)
		if err != nil {
			return nil, err
		}
		v, err := finite(metricCacheSynced, m)
		if err != nil {
			return nil, err
		}
		s.Synced = v == 1
	}
	for _, name := range []string{metricListWatchErrors, metricCacheLastUpdate} {
		for _, m := range families[name].GetMetric() {
			s, err := get(m, name)
			if err != nil {
				return nil, err
			}
			v, err := finite(name, m)
			if err != nil {
				return nil, err
			}
			if name == metricListWatchErrors {
				s.ListWatchErrors = v
			} else {
				s.LastUpdate = v
			}
		}
	}
	statuses := make([]CacheStatus, 0, len(byResource))
	for _, s := range byResource {
		statuses = append(statuses, *s)
	}
	slices.SortFunc(statuses, func(a, b CacheStatus) int { return strings.Compare(a.Resource, b.Resource) })
	return statuses, nil
}

// Rebuild turns the exporter's series back into the spread.Report the
// exporter computed, as far as spread.Report.Findings needs it: the figures
// of every service, the schedulability of every node and the cluster's
// topology domains. The replicas themselves are not published, so each
// Service carries its labels, its desired replicas (-1 for a Kubernetes
// Service) and no Replicas.
//
// It fails with ErrNotExporter or an error wrapping ErrCachesNotSynced
// when there is nothing to judge, and with a one-line error for an
// exposition that breaks the contract of docs/metrics.md: a partial figure
// set would give a wrong verdict, and UNKNOWN is honest.
func Rebuild(families map[string]*dto.MetricFamily) (*spread.Report, error) {
	caches, err := Caches(families)
	if err != nil {
		return nil, err
	}
	var waiting []string
	for _, c := range caches {
		if !c.Synced {
			waiting = append(waiting, c.Resource)
		}
	}
	if len(waiting) > 0 {
		return nil, fmt.Errorf("%w (waiting for %s)", ErrCachesNotSynced, strings.Join(waiting, ", "))
	}

	keys, clusterDomains, err := rebuildClusterDomains(families)
	if err != nil {
		return nil, err
	}
	nodes, err := rebuildNodes(families)
	if err != nil {
		return nil, err
	}
	services, err := rebuildServices(families, keys)
	if err != nil {
		return nil, err
	}
	return &spread.Report{TopologyKeys: keys, Services: services, Nodes: nodes, Domains: clusterDomains}, nil
}

// rebuildClusterDomains returns the topology keys, sorted (the exporter's
// order of --topology.key flags is not published; Findings only needs the
// services' domains in the same order as the cluster's), and their counts.
func rebuildClusterDomains(families map[string]*dto.MetricFamily) ([]string, []spread.Domains, error) {
	all, err := perLabel(families, metricClusterDomains, "topology_key")
	if err != nil {
		return nil, nil, err
	}
	schedulable, err := perLabel(families, metricClusterSchedDomains, "topology_key")
	if err != nil {
		return nil, nil, err
	}
	keys := make([]string, 0, len(all))
	for key := range all {
		if _, ok := schedulable[key]; !ok {
			return nil, nil, fmt.Errorf("%s{topology_key=%q} without %s", metricClusterDomains, key, metricClusterSchedDomains)
		}
		keys = append(keys, key)
	}
	for key := range schedulable {
		if _, ok := all[key]; !ok {
			return nil, nil, fmt.Errorf("%s{topology_key=%q} without %s", metricClusterSchedDomains, key, metricClusterDomains)
		}
	}
	sort.Strings(keys)
	domains := make([]spread.Domains, len(keys))
	for i, key := range keys {
		domains[i] = spread.Domains{Key: key, All: all[key], Schedulable: schedulable[key]}
	}
	return keys, domains, nil
}

func rebuildNodes(families map[string]*dto.MetricFamily) ([]spread.NodeFigures, error) {
	schedulable, err := perLabel(families, metricNodeSchedulable, "node")
	if err != nil {
		return nil, err
	}
	reasons := make(map[string][]spread.Reason)
	for _, m := range families[metricNodeUnschedulableReason].GetMetric() {
		node, okNode := label(m, "node")
		reason, okReason := label(m, "reason")
		if !okNode || !okReason {
			return nil, fmt.Errorf("%s without node or reason label", metricNodeUnschedulableReason)
		}
		v, err := count(metricNodeUnschedulableReason, m)
		if err != nil {
			return nil, err
		}
		if v == 1 {
			reasons[node] = append(reasons[node], spread.Reason(reason))
		}
	}
	singleHomed := make(map[string]map[spread.Kind]int)
	for _, m := range families[metricNodeSingleHomed].GetMetric() {
		node, okNode := label(m, "node")
		kind, okKind := label(m, "kind")
		if !okNode || !okKind {
			return nil, fmt.Errorf("%s without node or kind label", metricNodeSingleHomed)
		}
		v, err := count(metricNodeSingleHomed, m)
		if err != nil {
			return nil, err
		}
		if singleHomed[node] == nil {
			singleHomed[node] = make(map[spread.Kind]int)
		}
		singleHomed[node][spread.Kind(kind)] = v
	}

	nodes := make([]spread.NodeFigures, 0, len(schedulable))
	for name, v := range schedulable {
		// The reasons are what makes spread.Node unschedulable; the two
		// series must agree or the node count of Findings would be wrong.
		switch {
		case v == 1 && len(reasons[name]) > 0:
			return nil, fmt.Errorf("node %s: %s is 1 but it has an unschedulable reason", name, metricNodeSchedulable)
		case v == 0 && len(reasons[name]) == 0:
			return nil, fmt.Errorf("node %s: %s is 0 but it has no unschedulable reason", name, metricNodeSchedulable)
		case v > 1:
			return nil, fmt.Errorf("node %s: %s is %d, want 0 or 1", name, metricNodeSchedulable, v)
		}
		slices.Sort(reasons[name])
		nodes = append(nodes, spread.NodeFigures{
			Node:                &spread.Node{Name: name, Unschedulable: reasons[name]},
			SingleHomedServices: singleHomed[name],
		})
	}
	for name := range reasons {
		if _, ok := schedulable[name]; !ok {
			return nil, fmt.Errorf("node %s: %s without %s", name, metricNodeUnschedulableReason, metricNodeSchedulable)
		}
	}
	slices.SortFunc(nodes, func(a, b spread.NodeFigures) int { return strings.Compare(a.Node.Name, b.Node.Name) })
	return nodes, nil
}

func rebuildServices(families map[string]*dto.MetricFamily, topologyKeys []string) ([]spread.Figures, error) {
	byKey := make(map[ServiceKey]*spread.Figures)
	// seen records which required series each service has, so a service
	// that lacks one is an error, not a zero.
	seen := make(map[ServiceKey]map[string]bool)
	figures := func(m *dto.Metric, name string) (*spread.Figures, error) {
		var key ServiceKey
		var ok [3]bool
		key.Namespace, ok[0] = label(m, "namespace")
		key.Kind, ok[1] = label(m, "kind")
		key.Name, ok[2] = label(m, "name")
		if !ok[0] || !ok[1] || !ok[2] {
			return nil, fmt.Errorf("%s without namespace, kind or name label", name)
		}
		f := byKey[key]
		if f == nil {
			f = &spread.Figures{
				Service: &spread.Service{Namespace: key.Namespace, Kind: spread.Kind(key.Kind), Name: key.Name, DesiredReplicas: -1},
				Domains: make([]spread.Domains, len(topologyKeys)),
			}
			for i, k := range topologyKeys {
				f.Domains[i].Key = k
			}
			byKey[key] = f
			seen[key] = make(map[string]bool)
		}
		if seen[key][name] && name != metricTopologyDomains && name != metricSchedulableDomains && name != metricNodeReplicas {
			return nil, fmt.Errorf("%s{%s}: duplicate series", name, key)
		}
		seen[key][name] = true
		return f, nil
	}

	required := []struct {
		name string
		dst  func(*spread.Figures) *int
	}{
		{metricReplicasReady, func(f *spread.Figures) *int { return &f.ReplicasReady }},
		{metricReplicasSchedulable, func(f *spread.Figures) *int { return &f.ReplicasSchedulable }},
		{metricNodes, func(f *spread.Figures) *int { return &f.Nodes }},
		{metricSchedulableNodes, func(f *spread.Figures) *int { return &f.SchedulableNodes }},
		{metricMinNodes, func(f *spread.Figures) *int { return &f.MinNodes }},
		{metricReplicasDesired, func(f *spread.Figures) *int { return &f.Service.DesiredReplicas }},
	}
	for _, r := range required {
		for _, m := range families[r.name].GetMetric() {
			f, err := figures(m, r.name)
			if err != nil {
				return nil, err
			}
			v, err := count(r.name, m)
			if err != nil {
				return nil, err
			}
			*r.dst(f) = v
		}
	}
	for _, m := range families[metricConcentration].GetMetric() {
		f, err := figures(m, metricConcentration)
		if err != nil {
			return nil, err
		}
		v, err := finite(metricConcentration, m)
		if err != nil {
			return nil, err
		}
		if v < 0 || v > 1 {
			return nil, fmt.Errorf("%s = %v, want 0..1", metricConcentration, v)
		}
		f.ConcentrationRatio = v
	}
	for _, name := range []string{metricTopologyDomains, metricSchedulableDomains} {
		for _, m := range families[name].GetMetric() {
			f, err := figures(m, name)
			if err != nil {
				return nil, err
			}
			key, ok := label(m, "topology_key")
			if !ok {
				return nil, fmt.Errorf("%s without topology_key label", name)
			}
			i := slices.Index(topologyKeys, key)
			if i < 0 {
				// Findings compares a service's domains with the cluster's
				// of the same key; without the cluster's it cannot.
				return nil, fmt.Errorf("%s{topology_key=%q}: no %s for that key", name, key, metricClusterDomains)
			}
			v, err := count(name, m)
			if err != nil {
				return nil, err
			}
			if name == metricTopologyDomains {
				f.Domains[i].All = v
			} else {
				f.Domains[i].Schedulable = v
			}
		}
	}
	for _, m := range families[metricNodeReplicas].GetMetric() {
		f, err := figures(m, metricNodeReplicas)
		if err != nil {
			return nil, err
		}
		node, ok := label(m, "node")
		if !ok {
			return nil, fmt.Errorf("%s without node label", metricNodeReplicas)
		}
		v, err := count(metricNodeReplicas, m)
		if err != nil {
			return nil, err
		}
		f.NodeReplicas = append(f.NodeReplicas, spread.NodeCount{Node: node, Count: v})
	}

	services := make([]spread.Figures, 0, len(byKey))
	for key, f := range byKey {
		// Every per-service family but these is published for every
		// service (docs/metrics.md).
		for _, r := range required {
			if r.name != metricReplicasDesired && !seen[key][r.name] {
				return nil, fmt.Errorf("service %s: no %s series", key, r.name)
			}
		}
		slices.SortFunc(f.NodeReplicas, func(a, b spread.NodeCount) int { return strings.Compare(a.Node, b.Node) })
		services = append(services, *f)
	}
	// The order of spread.Analyze: namespace, kind, name.
	slices.SortFunc(services, func(a, b spread.Figures) int {
		ka, kb := Key(a.Service), Key(b.Service)
		return cmpKeys(ka, kb)
	})
	return services, nil
}

func cmpKeys(a, b ServiceKey) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// perLabel reads a family with one identifying label into a map of counts.
func perLabel(families map[string]*dto.MetricFamily, name, labelName string) (map[string]int, error) {
	values := make(map[string]int)
	for _, m := range families[name].GetMetric() {
		l, ok := label(m, labelName)
		if !ok {
			return nil, fmt.Errorf("%s without %s label", name, labelName)
		}
		if _, dup := values[l]; dup {
			return nil, fmt.Errorf("%s{%s=%q}: duplicate series", name, labelName, l)
		}
		v, err := count(name, m)
		if err != nil {
			return nil, err
		}
		values[l] = v
	}
	return values, nil
}

func label(m *dto.Metric, name string) (string, bool) {
	for _, pair := range m.GetLabel() {
		if pair.GetName() == name {
			return pair.GetValue(), true
		}
	}
	return "", false
}

// value reads a gauge, counter or untyped sample.
func value(m *dto.Metric) (float64, bool) {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func finite(name string, m *dto.Metric) (float64, error) {
	v, ok := value(m)
	if !ok {
		return 0, fmt.Errorf("%s: not a gauge, counter or untyped sample", name)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s%s = %v, want a finite number", name, labelText(m), v)
	}
	return v, nil
}

// count reads a sample that must be a whole number of things.
func count(name string, m *dto.Metric) (int, error) {
	v, err := finite(name, m)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > maxCount || v != math.Trunc(v) {
		return 0, fmt.Errorf("%s%s = %v, want a whole number from 0", name, labelText(m), v)
	}
	return int(v), nil
}

func labelText(m *dto.Metric) string {
	parts := make([]string, 0, len(m.GetLabel()))
	for _, pair := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", pair.GetName(), pair.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
