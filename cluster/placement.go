package cluster

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"weak"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// This file turns API objects into the inputs of the placement model:
// pod templates (interned: the pods of one ReplicaSet share one), node
// resources, taints and images, and PodDisruptionBudgets. Quantities are
// parsed here, so that the model works on int64 milli-units and bytes.

// perPodLabels are labels set differently on the pods of one template.
// They are left out of the template so that the pods still share it; no
// spread constraint, anti-affinity or budget is expected to select pods by
// them:
//   - a StatefulSet's controller names each pod and its ordinal;
//   - the API server's PodTopologyLabels admission (on by default since
//     Kubernetes 1.35) copies the zone and region labels of the node a pod
//     is bound to onto the pod. Kept, they made one template per zone of
//     every ReplicaSet: three times the templates in a three-zone cluster,
//     a third of the placement model's memory at 150,000 pods.
var perPodLabels = []string{
	"statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index",
	"topology.kubernetes.io/zone", "topology.kubernetes.io/region",
}

// defaultScheduler is the scheduler name of the default profile; the API
// server sets it on pods that name none.
const defaultScheduler = "default-scheduler"

// addImage adds a container's image to the template's, once.
func addImage(t *placement.Template, ref string) {
	if image := placement.NormalizeImage(ref); image != "" && !slices.Contains(t.Images, image) {
		t.Images = append(t.Images, intern(image))
	}
}

// requestVector is milli-CPU, memory and ephemeral storage in bytes.
type requestVector [3]int64

// podRequests is what resourcehelper.PodRequests returns for the pods
// most clusters run, computed without its maps: the sum of the
// containers' requests, at least the largest init container's (each with
// the restartable sidecars declared before it, which also add to the
// sum), plus the overhead; with defaults, a container without a CPU or
// memory request counts kube-scheduler's scoring defaults. The helper
// allocated 5 KB a pod, most of a cache sync's garbage at 150,000 pods.
// ok is false for what only the helper handles: pod-level resources,
// resource claims, and resources other than these three.
func podRequests(spec *corev1.PodSpec, defaults bool) (sum requestVector, ok bool) {
	if spec.Resources != nil || len(spec.ResourceClaims) > 0 {
		return sum, false
	}
	for i := range spec.Containers {
		r, ok := containerRequests(spec.Containers[i].Resources.Requests, defaults)
		if !ok {
			return sum, false
		}
		sum.add(r)
	}
	var sidecars, initPeak requestVector
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		r, ok := containerRequests(c.Resources.Requests, defaults)
		if !ok {
			return sum, false
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sum.add(r)
			sidecars.add(r)
			r = sidecars
		} else {
			r.add(sidecars)
		}
		initPeak.max(r)
	}
	sum.max(initPeak)
	overhead, ok := containerRequests(spec.Overhead, false)
	if !ok {
		return sum, false
	}
	sum.add(overhead)
	return sum, true
}

// containerRequests converts a container's requests; ok is false for a
// resource other than CPU, memory and ephemeral storage.
func containerRequests(list corev1.ResourceList, defaults bool) (r requestVector, ok bool) {
	hasCPU, hasMemory := false, false
	for name, q := range list {
		switch name {
		case corev1.ResourceCPU:
			r[0], hasCPU = q.MilliValue(), true
		case corev1.ResourceMemory:
			r[1], hasMemory = q.Value(), true
		case corev1.ResourceEphemeralStorage:
			r[2] = q.Value()
		default:
			return r, false
		}
	}
	if defaults && !hasCPU {
		r[0] = scoreDefaults.Cpu().MilliValue()
	}
	if defaults && !hasMemory {
		r[1] = scoreDefaults.Memory().Value()
	}
	return r, true
}

func (v *requestVector) add(o requestVector) {
	for i := range v {
		v[i] += o[i]
	}
}

func (v *requestVector) max(o requestVector) {
	for i := range v {
		v[i] = max(v[i], o[i])
	}
}

// scoreDefaults are the requests kube-scheduler scores a container
// without requests with (pkg/scheduler/util: DefaultMilliCPURequest,
// DefaultMemoryRequest), so that empty-looking pods still spread.
var scoreDefaults = corev1.ResourceList{
	corev1.ResourceCPU:    apiresource.MustParse("100m"),
	corev1.ResourceMemory: apiresource.MustParse("200Mi"),
}

// podTemplate returns the interned placement template of a pod.
//
// It builds the template into one scratch template and looks that up
// first: every pod of a ReplicaSet but the first finds its template
// interned already, and building each into a template of its own made
// 120 MB of garbage in a sync of 150,000 pods. Only a template not seen
// before is copied out of the scratch one.
func podTemplate(pod *corev1.Pod, owner kind, ownerRef *metav1.OwnerReference) *placement.Template {
	scratch.mu.Lock()
	defer scratch.mu.Unlock()
	t := &scratch.template
	fillTemplate(t, pod, owner, ownerRef)
	if existing := templates.find(t); existing != nil {
		return existing
	}
	own := ownTemplate(t)
	own.Tolerations = tolerationSets.share(own.Tolerations)
	return templates.intern(own)
}

// scratch is podTemplate's template under construction. The informers'
// transforms call podTemplate from the pod informer's goroutine only; the
// lock keeps it right should that change.
var scratch struct {
	mu       sync.Mutex
	template placement.Template
}

// ownTemplate copies a template filled into scratch out of it: the slices
// fillTemplate reuses are copied, the others it allocates anew for every
// pod and are only referred to. Empty slices become nil, as a template
// built from nothing has them.
func ownTemplate(t *placement.Template) *placement.Template {
	own := *t
	own.Labels = cloneOrNil(t.Labels)
	own.Tolerations = cloneOrNil(t.Tolerations)
	own.NodeSelector = cloneOrNil(t.NodeSelector)
	own.Images = cloneOrNil(t.Images)
	return &own
}

func cloneOrNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// tolerationSets lets templates share their tolerations: nearly every pod
// carries the two the API server adds (not-ready and unreachable,
// NoExecute, 300 s), and a copy was 128 bytes of every template. The sets
// are kept for the exporter's life, so their number is bounded: past
// maxTolerationSets distinct ones, a template keeps its own copy.
var tolerationSets = &sharedTolerations{byKey: make(map[string][]placement.Toleration)}

const maxTolerationSets = 1024

type sharedTolerations struct {
	mu    sync.Mutex
	byKey map[string][]placement.Toleration
	buf   []byte
}

// share returns the shared copy of the tolerations, equal to them. The
// slice is clipped: a caller's append cannot write into it.
func (s *sharedTolerations) share(list []placement.Toleration) []placement.Toleration {
	if len(list) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	for _, tol := range list {
		for _, field := range [...]string{tol.Key, tol.Operator, tol.Value, string(tol.Effect)} {
			s.buf = binary.AppendUvarint(s.buf, uint64(len(field)))
			s.buf = append(s.buf, field...)
		}
	}
	if shared, ok := s.byKey[string(s.buf)]; ok {
		return shared
	}
	list = slices.Clip(list)
	if len(s.byKey) < maxTolerationSets {
		s.byKey[string(s.buf)] = list
	}
	return list
}

// buildTemplate returns the placement template of a pod, not interned.
func buildTemplate(pod *corev1.Pod, owner kind, ownerRef *metav1.OwnerReference) *placement.Template {
	t := &placement.Template{}
	fillTemplate(t, pod, owner, ownerRef)
	return ownTemplate(t)
}

// fillTemplate overwrites t with the placement template of a pod. It
// appends to the backing arrays of t's labels, tolerations, node selector
// and images, which every pod has or may have (see podTemplate); the
// other slices are allocated anew.
func fillTemplate(t *placement.Template, pod *corev1.Pod, owner kind, ownerRef *metav1.OwnerReference) {
	spec := &pod.Spec
	*t = placement.Template{
		Namespace:    intern(pod.Namespace),
		Recreated:    owner >= kindReplicaSet,
		Labels:       t.Labels[:0],
		Tolerations:  t.Tolerations[:0],
		NodeSelector: t.NodeSelector[:0],
		Images:       t.Images[:0],
	}
	if ownerRef != nil {
		t.Owner = ownerRef.Kind + "/" + ownerRef.Name
	}
	for key, value := range pod.Labels {
		if !slices.Contains(perPodLabels, key) {
			t.Labels = append(t.Labels, placement.Label{Key: intern(key), Value: value})
		}
	}
	sortLabels(t.Labels)
	if spec.Priority != nil {
		t.Priority = *spec.Priority
	}
	t.PreemptNever = spec.PreemptionPolicy != nil && *spec.PreemptionPolicy == corev1.PreemptNever

	// The request the scheduler fits (containers, init containers with
	// sidecars, overhead, pod-level resources), and the one it scores.
	if fit, ok := podRequests(spec, false); ok {
		score, _ := podRequests(spec, true)
		t.Requests = placement.Resources{MilliCPU: fit[0], Memory: fit[1], EphemeralStorage: fit[2]}
		t.ScoreMilliCPU, t.ScoreMemory = score[0], score[1]
	} else {
		t.Requests = resources(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
		scored := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{NonMissingContainerRequests: scoreDefaults})
		t.ScoreMilliCPU, t.ScoreMemory = scored.Cpu().MilliValue(), scored.Memory().Value()
	}
	t.Requests.Pods = 1

	for _, tol := range spec.Tolerations {
		// Interned: most pods carry the same few tolerations.
		t.Tolerations = append(t.Tolerations, placement.Toleration{
			Key: intern(tol.Key), Operator: intern(string(tol.Operator)), Value: intern(tol.Value), Effect: placement.TaintEffect(intern(string(tol.Effect))),
		})
	}
	for key, value := range spec.NodeSelector {
		t.NodeSelector = append(t.NodeSelector, placement.Label{Key: key, Value: value})
	}
	sortLabels(t.NodeSelector)
	if a := spec.Affinity; a != nil {
		if na := a.NodeAffinity; na != nil && na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			t.NodeAffinity = []placement.NodeSelectorTerm{}
			for _, term := range na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
				t.NodeAffinity = append(t.NodeAffinity, placement.NodeSelectorTerm{
					Expressions: nodeRequirements(term.MatchExpressions),
					Fields:      nodeRequirements(term.MatchFields),
				})
			}
		}
		if na := a.NodeAffinity; na != nil {
			for _, term := range na.PreferredDuringSchedulingIgnoredDuringExecution {
				t.PreferredAffinity = append(t.PreferredAffinity, placement.PreferredTerm{Weight: term.Weight, Term: placement.NodeSelectorTerm{
					Expressions: nodeRequirements(term.Preference.MatchExpressions),
					Fields:      nodeRequirements(term.Preference.MatchFields),
				}})
			}
		}
		if pa := a.PodAffinity; pa != nil && len(pa.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			t.Unknown = "required inter-pod affinity"
		}
		if paa := a.PodAntiAffinity; paa != nil {
			for _, term := range paa.RequiredDuringSchedulingIgnoredDuringExecution {
				converted, unknown := antiAffinityTerm(term, pod.Labels)
				if unknown != "" && t.Unknown == "" {
					t.Unknown = unknown
				}
				t.AntiAffinity = append(t.AntiAffinity, converted)
			}
		}
	}
	for _, c := range spec.TopologySpreadConstraints {
		constraint := placement.SpreadConstraint{
			MaxSkew:            c.MaxSkew,
			TopologyKey:        c.TopologyKey,
			Selector:           selector(c.LabelSelector, c.MatchLabelKeys, pod.Labels),
			MinDomains:         1,
			IgnoreNodeAffinity: c.NodeAffinityPolicy != nil && *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyIgnore,
			HonorNodeTaints:    c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
		}
		if c.MinDomains != nil {
			constraint.MinDomains = *c.MinDomains
		}
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			t.Spread = append(t.Spread, constraint)
		} else {
			// ScheduleAnyway only scores.
			t.SoftSpread = append(t.SoftSpread, constraint)
		}
	}
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range containers {
			c := &containers[i]
			addImage(t, c.Image)
			for _, port := range c.Ports {
				if port.HostPort != 0 && t.Unknown == "" {
					t.Unknown = "host ports"
				}
			}
		}
	}
	if t.Unknown == "" {
		t.Unknown = unknownConstraint(spec)
	}
}

// unknownConstraint names what in a pod spec the model does not
// understand, "" when nothing: volumes bound to nodes or zones, dynamic
// resource claims, another scheduler, scheduling gates.
func unknownConstraint(spec *corev1.PodSpec) string {
	for _, v := range spec.Volumes {
		// A claim's volume may be bound to a node or zone (local and
		// zonal disks), which the model does not read: PVs are not cached.
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			return "persistent volume claim"
		}
	}
	switch {
	case len(spec.ResourceClaims) > 0:
		return "dynamic resource allocation claims"
	case spec.SchedulerName != "" && spec.SchedulerName != defaultScheduler:
		return "scheduler " + spec.SchedulerName
	case len(spec.SchedulingGates) > 0:
		return "scheduling gates"
	}
	return ""
}

// antiAffinityTerm converts a required anti-affinity term. A
// namespaceSelector that is not empty selects namespaces by labels, which
// are not cached: unknown.
func antiAffinityTerm(term corev1.PodAffinityTerm, podLabels map[string]string) (placement.AffinityTerm, string) {
	out := placement.AffinityTerm{
		Namespaces:  term.Namespaces,
		Selector:    selector(term.LabelSelector, term.MatchLabelKeys, podLabels),
		TopologyKey: term.TopologyKey,
	}
	for _, key := range term.MismatchLabelKeys {
		if value, ok := podLabels[key]; ok {
			out.Selector.Requirements = append(out.Selector.Requirements, placement.Requirement{Key: key, Operator: placement.OpNotIn, Values: []string{value}})
		}
	}
	if ns := term.NamespaceSelector; ns != nil {
		if len(ns.MatchLabels) > 0 || len(ns.MatchExpressions) > 0 {
			out.NamespaceSelector = true
			return out, "anti-affinity namespace selector"
		}
		out.AllNamespaces = true
	}
	return out, ""
}

// selector converts a label selector, with the pod's values of
// matchLabelKeys added as the API server and the scheduler add them. A nil
// selector matches nothing.
func selector(s *metav1.LabelSelector, matchLabelKeys []string, podLabels map[string]string) placement.Selector {
	if s == nil {
		return placement.Selector{Nothing: true}
	}
	var out placement.Selector
	keys := make([]string, 0, len(s.MatchLabels))
	for key := range s.MatchLabels {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		out.Requirements = append(out.Requirements, placement.Requirement{Key: key, Operator: placement.OpIn, Values: []string{s.MatchLabels[key]}})
	}
	for _, e := range s.MatchExpressions {
		out.Requirements = append(out.Requirements, placement.Requirement{Key: e.Key, Operator: placement.Operator(e.Operator), Values: e.Values})
	}
	for _, key := range matchLabelKeys {
		if value, ok := podLabels[key]; ok {
			out.Requirements = append(out.Requirements, placement.Requirement{Key: key, Operator: placement.OpIn, Values: []string{value}})
		}
	}
	return out
}

func nodeRequirements(reqs []corev1.NodeSelectorRequirement) []placement.Requirement {
	if len(reqs) == 0 {
		return nil
	}
	out := make([]placement.Requirement, len(reqs))
	for i, r := range reqs {
		out[i] = placement.Requirement{Key: r.Key, Operator: placement.Operator(r.Operator), Values: r.Values}
	}
	return out
}

// resources converts a resource list: CPU to millicores, the rest to
// their base unit.
func resources(list corev1.ResourceList) placement.Resources {
	var r placement.Resources
	for name, q := range list {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case corev1.ResourcePods:
			r.Pods = q.Value()
		default:
			if v := q.Value(); v != 0 {
				r.Extended = append(r.Extended, placement.Quantity{Name: intern(string(name)), Value: v})
			}
		}
	}
	slices.SortFunc(r.Extended, func(a, b placement.Quantity) int { return strings.Compare(a.Name, b.Name) })
	return r
}

func sortLabels(l placement.Labels) {
	slices.SortFunc(l, func(a, b placement.Label) int { return strings.Compare(a.Key, b.Key) })
}

// nodeTaints converts a node's taints.
func nodeTaints(taints []corev1.Taint) []placement.Taint {
	if len(taints) == 0 {
		return nil
	}
	out := make([]placement.Taint, len(taints))
	for i, t := range taints {
		out[i] = placement.Taint{Key: intern(t.Key), Value: intern(t.Value), Effect: placement.TaintEffect(intern(string(t.Effect)))}
	}
	return out
}

// nodeImages converts status.images, each name normalized and interned,
// each image interned as a whole: a node lists 30 to 50 images, most of
// them on many other nodes too.
func nodeImages(images []corev1.ContainerImage) []*placement.Image {
	if len(images) == 0 {
		return nil
	}
	out := make([]*placement.Image, len(images))
	for i, image := range images {
		names := make([]string, 0, len(image.Names))
		for _, name := range image.Names {
			if n := placement.NormalizeImage(name); n != "" && !slices.Contains(names, n) {
				names = append(names, intern(n))
			}
		}
		out[i] = nodeImageInterner.intern(&placement.Image{Names: names, SizeBytes: image.SizeBytes})
	}
	return out
}

// pdbInput converts a PodDisruptionBudget. Its disruptionsAllowed is the
// disruption controller's; a budget it has not processed yet (observed
// generation behind) allows nothing, as the Eviction API then refuses.
func pdbInput(pdb *policyv1.PodDisruptionBudget) placement.PDB {
	out := placement.PDB{
		Namespace:          intern(pdb.Namespace),
		Name:               pdb.Name,
		Selector:           selector(pdb.Spec.Selector, nil, nil),
		DisruptionsAllowed: pdb.Status.DisruptionsAllowed,
	}
	if pdb.Status.ObservedGeneration < pdb.Generation {
		out.DisruptionsAllowed = 0
	}
	return out
}

// templates interns pod templates.
var templates = newInterner(appendTemplateKey)

// nodeImageInterner interns the images of nodes.
var nodeImageInterner = newInterner(appendImageKey)

// interner keeps one copy of each distinct value for as long as something
// refers to it: weak pointers, and a cleanup that forgets a value once it
// is collected, so that churn (a new ReplicaSet per rollout, new image
// versions) does not grow the table. Values are found by a hash of their
// key bytes and compared by those bytes, so the table holds a number per
// value, not its key: templates are hundreds of bytes long.
type interner[T any] struct {
	mu         sync.Mutex
	seed       maphash.Seed
	byHash     map[uint64][]weak.Pointer[T]
	key        func([]byte, *T) []byte
	buf, other []byte
}

func newInterner[T any](key func([]byte, *T) []byte) *interner[T] {
	return &interner[T]{seed: maphash.MakeSeed(), byHash: make(map[uint64][]weak.Pointer[T]), key: key}
}

// intern returns the value equal to v that is interned already, or
// interns v.
func (in *interner[T]) intern(v *T) *T {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buf = in.key(in.buf[:0], v)
	hash := maphash.Bytes(in.seed, in.buf)
	if existing := in.lookup(hash); existing != nil {
		return existing
	}
	in.byHash[hash] = append(in.byHash[hash], weak.Make(v))
	runtime.AddCleanup(v, in.forget, hash)
	return v
}

// find returns the value equal to v that is interned already, or nil.
func (in *interner[T]) find(v *T) *T {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buf = in.key(in.buf[:0], v)
	return in.lookup(maphash.Bytes(in.seed, in.buf))
}

// lookup returns the live value of hash whose key is in.buf, or nil.
func (in *interner[T]) lookup(hash uint64) *T {
	for _, p := range in.byHash[hash] {
		if existing := p.Value(); existing != nil {
			in.other = in.key(in.other[:0], existing)
			if bytes.Equal(in.buf, in.other) {
				return existing
			}
		}
	}
	return nil
}

// forget drops the collected values of a hash.
func (in *interner[T]) forget(hash uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	live := slices.DeleteFunc(in.byHash[hash], func(p weak.Pointer[T]) bool { return p.Value() == nil })
	if len(live) == 0 {
		delete(in.byHash, hash)
	} else {
		in.byHash[hash] = live
	}
}

func appendImageKey(b []byte, image *placement.Image) []byte {
	b = binary.AppendVarint(b, image.SizeBytes)
	for _, name := range image.Names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	return b
}

// appendTemplateKey writes every field of a template, each string with
// its length first so that no two templates write the same bytes.
func appendTemplateKey(b []byte, t *placement.Template) []byte {
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	num := func(n int64) { b = binary.AppendVarint(b, n) }
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	strs := func(ss []string) {
		num(int64(len(ss)))
		for _, s := range ss {
			str(s)
		}
	}
	labels := func(l placement.Labels) {
		num(int64(len(l)))
		for _, label := range l {
			str(label.Key)
			str(label.Value)
		}
	}
	requirements := func(rs []placement.Requirement) {
		num(int64(len(rs)))
		for _, r := range rs {
			str(r.Key)
			str(string(r.Operator))
			strs(r.Values)
		}
	}
	sel := func(s placement.Selector) { flag(s.Nothing); requirements(s.Requirements) }

	str(t.Namespace)
	str(t.Owner)
	labels(t.Labels)
	num(int64(t.Priority))
	flag(t.PreemptNever)
	r := &t.Requests
	num(r.MilliCPU)
	num(r.Memory)
	num(r.EphemeralStorage)
	num(r.Pods)
	num(int64(len(r.Extended)))
	for _, q := range r.Extended {
		str(q.Name)
		num(q.Value)
	}
	num(t.ScoreMilliCPU)
	num(t.ScoreMemory)
	num(int64(len(t.Tolerations)))
	for _, tol := range t.Tolerations {
		str(tol.Key)
		str(tol.Operator)
		str(tol.Value)
		str(string(tol.Effect))
	}
	labels(t.NodeSelector)
	flag(t.NodeAffinity != nil)
	num(int64(len(t.NodeAffinity)))
	for _, term := range t.NodeAffinity {
		requirements(term.Expressions)
		requirements(term.Fields)
	}
	num(int64(len(t.Spread)))
	for _, c := range t.Spread {
		num(int64(c.MaxSkew))
		str(c.TopologyKey)
		sel(c.Selector)
		num(int64(c.MinDomains))
		flag(c.IgnoreNodeAffinity)
		flag(c.HonorNodeTaints)
	}
	num(int64(len(t.SoftSpread)))
	for _, c := range t.SoftSpread {
		num(int64(c.MaxSkew))
		str(c.TopologyKey)
		sel(c.Selector)
		num(int64(c.MinDomains))
		flag(c.IgnoreNodeAffinity)
		flag(c.HonorNodeTaints)
	}
	num(int64(len(t.PreferredAffinity)))
	for _, term := range t.PreferredAffinity {
		num(int64(term.Weight))
		requirements(term.Term.Expressions)
		requirements(term.Term.Fields)
	}
	num(int64(len(t.AntiAffinity)))
	for _, term := range t.AntiAffinity {
		strs(term.Namespaces)
		flag(term.AllNamespaces)
		sel(term.Selector)
		str(term.TopologyKey)
	}
	strs(t.Images)
	flag(t.Recreated)
	str(t.Unknown)
	return b
}
