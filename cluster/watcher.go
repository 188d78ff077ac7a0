// Package cluster watches a Kubernetes cluster with client-go informers and
// turns what it has cached into the input of the spread analysis.
//
// Scrapes and what-if questions are answered from the informers' caches,
// never by calling the API server: a scrape costs the API server nothing,
// and an API server outage leaves the last known state in place (with
// self-metrics that say it may be stale).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	policyinformers "k8s.io/client-go/informers/policy/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// ErrCacheNotSynced is returned while an informer has not finished its
// first list: a snapshot then would pretend that missing objects are absent.
var ErrCacheNotSynced = errors.New("informer caches have not synced yet")

// DefaultMaintenanceTaints are taint keys that take a node out of service
// when set with effect NoSchedule or NoExecute.
var DefaultMaintenanceTaints = []string{
	"node.kubernetes.io/unschedulable",
	"node.kubernetes.io/out-of-service",
	"ToBeDeletedByClusterAutoscaler",
}

// Config says what to watch and how to judge nodes.
type Config struct {
	// TopologyKeys are node labels that define failure domains.
	TopologyKeys []string
	// MaintenanceTaints are taint keys that make a node unschedulable.
	MaintenanceTaints []string
	// MaintenanceSelector marks nodes planned for maintenance; nil or
	// empty selects none.
	MaintenanceSelector labels.Selector
	// NamespaceInclude and NamespaceExclude filter namespaces; nil
	// includes all and excludes none.
	NamespaceInclude, NamespaceExclude *regexp.Regexp
	// Logger receives informer errors and invalid annotations.
	Logger *slog.Logger
	// RequestErrors counts failed lists and watches; wrap the client's
	// transport with its WrapTransport. Nil counts nothing (tests on a
	// fake clientset).
	RequestErrors *RequestErrors
}

// ResourceStatus tells how fresh the cache of one resource is.
type ResourceStatus struct {
	// Resource is the plural resource name, such as "pods".
	Resource string
	// Synced is true once the informer's first list has completed.
	Synced bool
	// ListWatchErrors counts failed lists and broken watches.
	ListWatchErrors uint64
	// LastUpdate is when the cache last applied an event; zero if never.
	LastUpdate time.Time
	// ErrorsSince and LastError are the current streak of list/watch
	// errors (see ErrorStreak); zero before the first error.
	ErrorsSince, LastError time.Time
}

// resource is one watched resource and when its cache last changed.
type resource struct {
	name       string
	informer   cache.SharedIndexInformer
	handler    cache.ResourceEventHandlerRegistration
	lastUpdate atomic.Int64 // Unix nanoseconds
}

// Watcher caches the objects the analysis needs.
type Watcher struct {
	config    Config
	factory   informers.SharedInformerFactory
	resources []*resource

	nodes, pods, services, endpointSlices                          cache.Indexer
	deployments, statefulSets, replicaSets, replicationControllers cache.Indexer
	podDisruptionBudgets                                           cache.Indexer

	invalidAnnotations atomic.Uint64
	annotationErrors   annotationErrors

	// generation counts the changes the caches applied; countSync counts
	// the end of the first sync and syncCounted says it has.
	generation  atomic.Uint64
	countSync   sync.Once
	syncCounted atomic.Bool

	// followers are told what each event touches (follow.go).
	followersMu sync.Mutex
	followers   []*Follower

	// Set by RunProbe: whether the last probe reached the API server, and
	// when the caches were last confirmed fresh (Unix nanoseconds).
	probed, apiServerUp atomic.Bool
	confirmedFresh      atomic.Int64
}

// Freshness tells whether the cached state can be trusted to be current.
type Freshness struct {
	// Probed is false until the first probe has run.
	Probed bool
	// APIServerUp is whether the last probe reached the API server.
	APIServerUp bool
	// Confirmed is when a probe last found the API server ready, every
	// cache synced and no list or watch failed since the probe before;
	// zero if never.
	Confirmed time.Time
}

// New builds a Watcher on one SharedInformerFactory. Call Start to begin
// watching.
//
// The informers cache the compact types of objects.go, not API objects
// (see trim): nothing may ask the factory for a lister, whose typed
// accessors would fail on them. Nor do they have the factory's index by
// namespace, which costs a set entry per object and serves listers nobody
// here uses; they have the three a Follower needs to build one service
// from the caches: pods by controller, ReplicaSets by Deployment and
// EndpointSlices by Service (follow.go).
func New(client kubernetes.Interface, config Config) (*Watcher, error) {
	if config.Logger == nil {
		config.Logger = slog.New(slog.DiscardHandler)
	}
	if config.MaintenanceSelector == nil {
		config.MaintenanceSelector = labels.Nothing()
	}
	if config.RequestErrors == nil {
		config.RequestErrors = NewRequestErrors(config.Logger)
	}
	// No periodic resync: the analysis reads the caches directly, so a
	// resync would only cost CPU.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(trim))
	w := &Watcher{config: config, factory: factory}

	add := func(name string, informer cache.SharedIndexInformer, validate bool) (cache.Indexer, error) {
		r := &resource{name: name, informer: informer}
		// RequestErrors counts and logs failed requests; what reaches the
		// handler (the same failures, and decoding errors) is detail.
		if err := informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, reflector *cache.Reflector, err error) {
			config.Logger.Debug("reflector error", "resource", name, "err", err)
			cache.DefaultWatchErrorHandler(ctx, reflector, err)
		}); err != nil {
			return nil, fmt.Errorf("set watch error handler for %s: %w", name, err)
		}
		var err error
		if r.handler, err = informer.AddEventHandler(w.eventHandler(r, validate)); err != nil {
			return nil, fmt.Errorf("add event handler for %s: %w", name, err)
		}
		w.resources = append(w.resources, r)
		return informer.GetIndexer(), nil
	}
	// informer returns the factory's informer for a type, built without
	// indexes. The factory still applies the transform to it.
	type newInformer func(kubernetes.Interface, string, time.Duration, cache.Indexers) cache.SharedIndexInformer
	informer := func(example runtime.Object, newFunc newInformer, indexers cache.Indexers) cache.SharedIndexInformer {
		return factory.InformerFor(example, func(client kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
			return newFunc(client, metav1.NamespaceAll, resync, indexers)
		})
	}
	clusterScoped := func(newFunc func(kubernetes.Interface, time.Duration, cache.Indexers) cache.SharedIndexInformer) newInformer {
		return func(client kubernetes.Interface, _ string, resync time.Duration, indexers cache.Indexers) cache.SharedIndexInformer {
			return newFunc(client, resync, indexers)
		}
	}
	var err error
	for _, step := range []struct {
		indexer  *cache.Indexer
		name     string
		informer cache.SharedIndexInformer
		validate bool
	}{
		{&w.nodes, "nodes", informer(&corev1.Node{}, clusterScoped(coreinformers.NewNodeInformer), cache.Indexers{}), false},
		{&w.pods, "pods", informer(&corev1.Pod{}, coreinformers.NewPodInformer, cache.Indexers{byOwner: podsByOwner}), false},
		{&w.services, "services", informer(&corev1.Service{}, coreinformers.NewServiceInformer, cache.Indexers{}), true},
		{&w.endpointSlices, "endpointslices", informer(&discoveryv1.EndpointSlice{}, discoveryinformers.NewEndpointSliceInformer, cache.Indexers{byService: slicesByService}), false},
		{&w.deployments, "deployments", informer(&appsv1.Deployment{}, appsinformers.NewDeploymentInformer, cache.Indexers{}), true},
		{&w.statefulSets, "statefulsets", informer(&appsv1.StatefulSet{}, appsinformers.NewStatefulSetInformer, cache.Indexers{}), true},
		{&w.replicaSets, "replicasets", informer(&appsv1.ReplicaSet{}, appsinformers.NewReplicaSetInformer, cache.Indexers{byOwner: replicaSetsByDeployment}), true},
		{&w.replicationControllers, "replicationcontrollers", informer(&corev1.ReplicationController{}, coreinformers.NewReplicationControllerInformer, cache.Indexers{}), true},
		{&w.podDisruptionBudgets, "poddisruptionbudgets", informer(&policyv1.PodDisruptionBudget{}, policyinformers.NewPodDisruptionBudgetInformer, cache.Indexers{}), false},
	} {
		if *step.indexer, err = add(step.name, step.informer, step.validate); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Start starts the informers; they stop when ctx is done.
func (w *Watcher) Start(ctx context.Context) {
	w.factory.Start(ctx.Done())
}

// WaitForSync blocks until every cache has synced and the event handler
// has seen every object of the first lists (so that InvalidAnnotations and
// Generation count them), or until ctx is done, and reports whether they
// all synced.
func (w *Watcher) WaitForSync(ctx context.Context) bool {
	synced := make([]cache.InformerSynced, len(w.resources))
	for i, r := range w.resources {
		synced[i] = r.handler.HasSynced
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// Synced reports whether every cache has synced.
func (w *Watcher) Synced() bool {
	for _, r := range w.resources {
		if !r.informer.HasSynced() {
			return false
		}
	}
	return true
}

// handlersSynced reports whether every cache has synced and the event
// handler has seen every object of the first lists.
func (w *Watcher) handlersSynced() bool {
	for _, r := range w.resources {
		if !r.handler.HasSynced() {
			return false
		}
	}
	return true
}

// Status reports the health of each resource's cache.
func (w *Watcher) Status() []ResourceStatus {
	status := make([]ResourceStatus, len(w.resources))
	for i, r := range w.resources {
		status[i] = ResourceStatus{
			Resource:        r.name,
			Synced:          r.informer.HasSynced(),
			ListWatchErrors: w.config.RequestErrors.Count(r.name),
		}
		if nanos := r.lastUpdate.Load(); nanos != 0 {
			status[i].LastUpdate = time.Unix(0, nanos)
		}
		status[i].ErrorsSince, status[i].LastError = w.config.RequestErrors.Streak(r.name)
	}
	return status
}

// InvalidAnnotations counts the invalid kube-spread.io/min-nodes
// annotations seen since start: each distinct (service, value) once, only
// for objects that are services, only in watched namespaces.
func (w *Watcher) InvalidAnnotations() uint64 { return w.invalidAnnotations.Load() }

// Generation counts the changes the caches have applied: it grows after
// every add, update and delete any informer stores, and once when the first
// sync is seen complete. While it stays the same, Snapshot returns the same
// content, so a caller may keep what it built from a snapshot until the
// generation moves.
//
// Ordering: client-go calls the event handler that counts a change after
// the change is in the store, so a caller that reads Generation before
// Snapshot sees in the snapshot at least every change counted up to the
// value it read (and maybe later ones, which the next Generation counts,
// so at worst the caller builds the same content twice).
//
// Sync: Snapshot fails until every cache has synced, which no event
// signals (an empty cluster syncs without any). The first Generation call
// that finds every cache synced and every object of the first lists
// counted adds one, so a value read before then is never read again after
// it: a caller never keeps ErrCacheNotSynced, or a snapshot built while
// the first lists were still being counted, past the sync.
//
// Generation covers Snapshot and NodesMatching, which read the caches
// only; Status, Freshness and InvalidAnnotations change on their own.
func (w *Watcher) Generation() uint64 {
	if !w.syncCounted.Load() && w.handlersSynced() {
		// Once, not a compare-and-swap: a concurrent call must not return
		// before the count.
		w.countSync.Do(func() {
			w.generation.Add(1)
			w.syncCounted.Store(true)
		})
	}
	return w.generation.Load()
}

// eventHandler counts each change for Generation, records when a cache
// changes and, for services and workloads, reports invalid min-nodes
// annotations once per new value.
func (w *Watcher) eventHandler(r *resource, validate bool) cache.ResourceEventHandler {
	// A change is recorded for the followers before it is counted (see
	// Follower.SnapshotForScrape).
	changed := func(old, obj any) {
		w.record(r.name, old, obj)
		r.lastUpdate.Store(time.Now().UnixNano())
		w.generation.Add(1)
	}
	check := func(old, obj any) {
		if !validate {
			return
		}
		o, ok := obj.(annotated)
		if !ok {
			return
		}
		key, isService := o.serviceKey(r.name)
		value, has := o.minNodesAnnotation()
		if !has || !isService || !w.namespaceIncluded(key.namespace()) {
			return
		}
		if before, ok := old.(annotated); ok {
			if oldValue, had := before.minNodesAnnotation(); had && oldValue == value {
				return
			}
		}
		if _, err := spread.ParseMinNodes(value); err != nil && w.annotationErrors.first(r.name, key, value) {
			w.invalidAnnotations.Add(1)
			namespace, name := key.split()
			w.config.Logger.Warn("invalid annotation, using the default min nodes",
				"resource", r.name, "namespace", namespace, "name", name, "err", err)
		}
	}
	forget := func(obj any) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		if o, ok := obj.(annotated); validate && ok {
			key, _ := o.serviceKey(r.name)
			w.annotationErrors.forget(r.name, key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { check(nil, obj); changed(nil, obj) },
		UpdateFunc: func(old, obj any) { check(old, obj); changed(old, obj) },
		// A delete may arrive as a cache.DeletedFinalStateUnknown tombstone
		// when the watch missed it.
		DeleteFunc: func(obj any) { forget(obj); changed(nil, obj) },
	}
}

// annotated is a cached Service or workload: it may carry the min-nodes
// annotation.
type annotated interface {
	minNodesAnnotation() (string, bool)
	// serviceKey returns the object's namespace and name, and whether the
	// snapshot makes a service of it (resource is its plural name).
	serviceKey(resource string) (nsName, bool)
}

// serviceKey: Deployments and StatefulSets are services; a ReplicaSet or
// ReplicationController only when no controller owns it. Kubernetes copies
// a Deployment's annotations onto its ReplicaSets, so without this each
// bad value would count twice.
func (wl *cachedWorkload) serviceKey(resource string) (nsName, bool) {
	switch resource {
	case "deployments", "statefulsets":
		return wl.key, true
	}
	return wl.key, wl.ownerKind == kindNone
}

// serviceKey: a Service without a selector points outside the cluster's
// scheduling and is not a service here.
func (s *cachedService) serviceKey(string) (nsName, bool) { return s.key, s.selector }

// annotationErrors remembers the invalid min-nodes values reported, per
// service, so each distinct (service, value) is counted and logged once
// however often it is set, copied or resynced. A value is remembered by
// its hash: a 10,000-byte annotation costs 8 bytes here.
type annotationErrors struct {
	mu   sync.Mutex
	seen map[annotatedObject][]uint64
}

type annotatedObject struct {
	resource string
	key      nsName
}

// first records the (service, value) pair and reports whether it is new.
func (a *annotationErrors) first(resource string, key nsName, value string) bool {
	hash := fnv.New64a()
	_, _ = hash.Write([]byte(value))
	sum, object := hash.Sum64(), annotatedObject{resource: resource, key: key}
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.Contains(a.seen[object], sum) {
		return false
	}
	if a.seen == nil {
		a.seen = make(map[annotatedObject][]uint64)
	}
	a.seen[object] = append(a.seen[object], sum)
	return true
}

// forget drops what was recorded for a deleted object, so the record
// holds only objects that exist.
func (a *annotationErrors) forget(resource string, key nsName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, annotatedObject{resource: resource, key: key})
}

// NodesMatching returns the sorted names of the cached nodes that a label
// selector matches.
func (w *Watcher) NodesMatching(selector string) ([]string, error) {
	parsed, err := labels.Parse(selector)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, obj := range w.nodes.List() {
		n := obj.(*cachedNode)
		if parsed.Matches(&n.labels) {
			names = append(names, n.name.Value())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Freshness reports what the probe last found; see RunProbe.
func (w *Watcher) Freshness() Freshness {
	f := Freshness{Probed: w.probed.Load(), APIServerUp: w.apiServerUp.Load()}
	if nanos := w.confirmedFresh.Load(); nanos != 0 {
		f.Confirmed = time.Unix(0, nanos)
	}
	return f
}

// RunProbe calls probe (a cheap request to the API server, such as GET
// /readyz) every interval until ctx is done, and records whether the
// caches are fresh. Informers say nothing while a quiet cluster sends no
// events, and nothing either while the API server is down and they retry:
// without a probe, an outage and a quiet afternoon look the same. The
// caches count as confirmed fresh when the API server answers, every cache
// has synced, and no list or watch failed since the previous probe.
func (w *Watcher) RunProbe(ctx context.Context, interval time.Duration, probe func(context.Context) error) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	lastErrors := w.listWatchErrors()
	for {
		lastErrors = w.probeOnce(ctx, interval, probe, lastErrors)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// probeOnce runs one probe and returns the list/watch error count it saw.
func (w *Watcher) probeOnce(ctx context.Context, timeout time.Duration, probe func(context.Context) error, lastErrors uint64) uint64 {
	errorsNow := w.listWatchErrors()
	probeCtx, cancel := context.WithTimeout(ctx, timeout)
	err := probe(probeCtx)
	cancel()
	wasUp, probedBefore := w.apiServerUp.Load(), w.probed.Load()
	w.apiServerUp.Store(err == nil)
	w.probed.Store(true)
	switch {
	case err != nil && (wasUp || !probedBefore):
		w.config.Logger.Warn("API server unreachable; serving the last known state, marked stale", "err", err)
	case err == nil && !wasUp && probedBefore:
		w.config.Logger.Info("API server reachable again")
	}
	if err == nil && errorsNow == lastErrors && w.Synced() {
		w.confirmedFresh.Store(time.Now().UnixNano())
	}
	return errorsNow
}

// listWatchErrors sums the list/watch errors of every resource.
func (w *Watcher) listWatchErrors() uint64 {
	var total uint64
	for _, r := range w.resources {
		total += w.config.RequestErrors.Count(r.name)
	}
	return total
}
