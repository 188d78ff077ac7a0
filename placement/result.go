package placement

import (
	"slices"
	"strings"
)

// State sums up where a service's displaced replicas go.
type State string

// The states. They appear in JSON and as metric label values.
const (
	// StateFit: every displaced replica fits on the remaining nodes (or
	// none is displaced).
	StateFit State = "fit"
	// StateNoRoom: at least one displaced replica fits nowhere, whatever
	// the model cannot judge of the others: a certain shortage is not
	// hidden by an uncertain one.
	StateNoRoom State = "no_room"
	// StateUnknown: a displaced replica has a constraint the model does
	// not understand, so it cannot say, and none is certain to fit
	// nowhere.
	StateUnknown State = "unknown"
)

// Summary is the placement of one service's displaced replicas.
type Summary struct {
	State State `json:"state"`
	// Displaced counts the service's pods on gone nodes that are
	// recreated elsewhere.
	Displaced int `json:"displaced"`
	// Placed counts those that fit, all displaced pods competing.
	Placed int `json:"placed"`
	// Unplaced is Displaced minus Placed, unknown pods included.
	Unplaced int `json:"unplaced"`
	// Reasons counts the unplaced pods by reason; pods the model does not
	// understand have none.
	Reasons map[Reason]int `json:"reasons"`
	// UnknownReason names what the model does not understand of some
	// displaced pod: always when State is unknown, and when it is no_room
	// while other pods are unknown.
	UnknownReason string `json:"unknown_reason"`
}

// NoRoom counts the displaced pods the model is certain fit nowhere: the
// unplaced ones with a reason, not those it cannot judge.
func (s Summary) NoRoom() int {
	n := 0
	for _, count := range s.Reasons {
		n += count
	}
	return n
}

// Summarize sums up the outcomes of a service's pods, given by their
// index in the cluster's pods; pods that are not displaced are skipped.
func (r *Result) Summarize(pods []int32) Summary {
	s := Summary{State: StateFit, Reasons: map[Reason]int{}}
	for _, p := range pods {
		i, ok := r.outcomeIndex(p)
		if !ok {
			continue
		}
		out := &r.outcomes[i]
		s.Displaced++
		switch {
		case out.Unknown != "":
			if s.State == StateFit {
				s.State = StateUnknown
			}
			if s.UnknownReason == "" {
				s.UnknownReason = out.Unknown
			}
		case out.Node >= 0:
			s.Placed++
		default:
			s.Reasons[out.Reason]++
			s.State = StateNoRoom
		}
	}
	s.Unplaced = s.Displaced - s.Placed
	return s
}

// Outcome returns the outcome of a pod, and whether it is displaced.
func (r *Result) Outcome(pod int32) (Outcome, bool) {
	i, ok := r.outcomeIndex(pod)
	if !ok {
		return Outcome{}, false
	}
	return r.outcomes[i], true
}

// outcomeIndex returns the index of a pod's outcome, and whether it is
// displaced.
func (r *Result) outcomeIndex(pod int32) (int32, bool) {
	if pod < 0 || int(pod) >= len(r.outcomeOf) || r.outcomeOf[pod] == 0 {
		return 0, false
	}
	return r.outcomeOf[pod] - 1, true
}

// Displaced returns the indexes of the displaced pods in placement order.
func (r *Result) Displaced() []int32 {
	return slices.Clone(r.displaced)
}

// WarmNodes counts, for each service given as its templates, the
// remaining nodes that pass the static filters (taints, node selector,
// required node affinity) of every template and already hold every image
// they name: a replica started there needs no pull. A service whose
// templates name no image has no warm node to tell of: 0.
//
// Services are asked all at once, so that the nodes' images (40 or so
// each, under two names) are read once, for the images asked about only;
// a prepared cluster looks their holders up in its index instead.
// Image names are compared as given; the caller normalizes them alike on
// both sides (see NormalizeImage).
func (r *Result) WarmNodes(services [][]*Template) []int {
	imagesOf := make([][]string, len(services))
	wanted := make(map[string][]int32)
	for i, templates := range services {
		for _, t := range templates {
			for _, image := range t.Images {
				if !slices.Contains(imagesOf[i], image) {
					imagesOf[i] = append(imagesOf[i], image)
					wanted[image] = nil
				}
			}
		}
	}
	if x := r.c.index(); x != nil {
		// The holders of the images asked about, rather than every image
		// of every node: that walk was a tenth of a cordon's scrape.
		for name := range wanted {
			var list []int32
			for _, h := range x.holders.of(name) {
				if int(h.node) >= len(r.gone) || !r.gone[h.node] {
					list = append(list, h.node)
				}
			}
			wanted[name] = list
		}
	} else {
		r.walkImages(wanted)
	}
	warm := make([]int, len(services))
	for i, images := range imagesOf {
		if len(images) == 0 {
			continue
		}
		// Start from the image on the fewest nodes.
		slices.SortFunc(images, func(a, b string) int { return len(wanted[a]) - len(wanted[b]) })
	nodes:
		for _, node := range wanted[images[0]] {
			for _, image := range images[1:] {
				if _, ok := slices.BinarySearch(wanted[image], node); !ok {
					continue nodes
				}
			}
			for _, t := range services[i] {
				if staticFilters(t, &r.c.Nodes[node]) != fits {
					continue nodes
				}
			}
			warm[i]++
		}
	}
	return warm
}

// walkImages lists in wanted, for each image name it has, the remaining
// nodes holding it, by walking every remaining node's images.
func (r *Result) walkImages(wanted map[string][]int32) {
	for _, node := range r.candidates {
		for _, image := range r.c.Nodes[node].Images {
			for _, name := range image.Names {
				list, ok := wanted[name]
				// A node may list one name twice; keep it once.
				if ok && (len(list) == 0 || list[len(list)-1] != node) {
					wanted[name] = append(list, node)
				}
			}
		}
	}
}

// NormalizeImage writes an image reference the way nodes and pods name it
// alike: with the default tag "latest" when it has neither tag nor
// digest, and without the registry host and the "library/" prefix of
// official images. Container runtimes report fully qualified names, while
// pod specs often use short ones. Two registries serving the same path
// then look alike, which for counting warm nodes is the smaller error.
func NormalizeImage(ref string) string {
	if ref == "" {
		return ""
	}
	name, suffix := ref, ""
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		name, suffix = ref[:at], ref[at:]
	} else if colon := strings.LastIndexByte(ref, ':'); colon > strings.LastIndexByte(ref, '/') {
		name, suffix = ref[:colon], ref[colon:]
	} else {
		suffix = ":latest"
	}
	// The first component is a host when it has a dot or a port, or is
	// localhost, as the reference grammar decides.
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		name = rest
	}
	return strings.TrimPrefix(name, "library/") + suffix
}

// PDBExceeded is a PodDisruptionBudget that the evictions would exceed.
type PDBExceeded struct {
	Name string `json:"name"`
	// Allowed is the budget's disruptionsAllowed now.
	Allowed int `json:"allowed"`
	// Needed counts the healthy pods it covers on gone nodes: the
	// evictions a drain would ask for.
	Needed int `json:"needed"`
}

type pdbState struct {
	// needed counts, per PDB, the evictions the gone nodes ask of it.
	needed []int
	// covers memoizes which PDBs cover pods of a template; byNamespace
	// indexes the PDBs.
	covers      map[*Template][]int
	byNamespace map[string][]int
}

// PDBs returns the PodDisruptionBudgets covering any of the given pods on
// a gone node whose evictions would exceed them, sorted by name.
//
// The evictions are every healthy (Ready), not terminating pod on a gone
// node, but a DaemonSet's, which drains leave in place: the budget's
// disruptionsAllowed is what the Eviction API grants before it refuses
// (429), so a drain that must evict more blocks half-way, until
// replacements elsewhere become ready.
func (r *Result) PDBs(pods []int32) []PDBExceeded {
	state := r.pdbState()
	var found []int
	for _, p := range pods {
		pod := &r.c.Pods[p]
		if !r.evicted(pod) {
			continue
		}
		for _, i := range state.coverage(r.c, pod.Template) {
			if state.needed[i] > int(r.c.PDBs[i].DisruptionsAllowed) && !slices.Contains(found, i) {
				found = append(found, i)
			}
		}
	}
	out := make([]PDBExceeded, 0, len(found))
	for _, i := range found {
		out = append(out, PDBExceeded{Name: r.c.PDBs[i].Name, Allowed: int(r.c.PDBs[i].DisruptionsAllowed), Needed: state.needed[i]})
	}
	slices.SortFunc(out, func(a, b PDBExceeded) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// evicted: a drain of the gone nodes evicts the pod, and the eviction
// counts against a budget.
func (r *Result) evicted(p *Pod) bool {
	return p.Node >= 0 && int(p.Node) < len(r.gone) && r.gone[p.Node] && p.Ready && !p.Terminating &&
		p.Template != nil && !strings.HasPrefix(p.Template.Owner, "DaemonSet/")
}

func (r *Result) pdbState() *pdbState {
	if r.pdbs != nil {
		return r.pdbs
	}
	state := &pdbState{needed: make([]int, len(r.c.PDBs)), covers: make(map[*Template][]int), byNamespace: make(map[string][]int)}
	for i := range r.c.PDBs {
		state.byNamespace[r.c.PDBs[i].Namespace] = append(state.byNamespace[r.c.PDBs[i].Namespace], i)
	}
	if len(r.c.PDBs) > 0 {
		count := func(i int32) {
			p := &r.c.Pods[i]
			if !r.evicted(p) {
				return
			}
			for _, b := range state.coverage(r.c, p.Template) {
				state.needed[b]++
			}
		}
		if x := r.c.index(); x != nil {
			// Only pods on gone nodes are evicted.
			for node, gone := range r.gone {
				if gone && node < len(x.podsOn) {
					for _, i := range x.podsOn[node] {
						count(i)
					}
				}
			}
		} else {
			for i := range r.c.Pods {
				count(int32(i))
			}
		}
	}
	r.pdbs = state
	return state
}

// coverage returns the PDBs whose selector matches pods of a template in
// their namespace. An empty selector matches every pod of the namespace,
// as for the Eviction API.
func (s *pdbState) coverage(c *Cluster, t *Template) []int {
	if covers, ok := s.covers[t]; ok {
		return covers
	}
	var covers []int
	for _, i := range s.byNamespace[t.Namespace] {
		if c.PDBs[i].Selector.Matches(t.Labels) {
			covers = append(covers, i)
		}
	}
	s.covers[t] = covers
	return covers
}
