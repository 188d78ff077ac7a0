package whatif

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// touchedPart is the API's answer as AskNodes gives it: only the services
// with a replica on one of the asked nodes of c, the answer-wide verdicts
// over those.
func touchedPart(c *spread.Cluster, nodes []string, a *Answer) *Answer {
	touched := map[string]bool{}
	for _, svc := range c.Services {
		if slices.ContainsFunc(svc.Replicas, func(r spread.Replica) bool { return slices.Contains(nodes, r.Node) }) {
			touched[svc.Namespace+"/"+string(svc.Kind)+"/"+svc.Name] = true
		}
	}
	out := *a
	out.Services, out.VerdictNow, out.VerdictElsewhere = []Service{}, spread.VerdictOK, spread.VerdictOK
	for _, s := range a.Services {
		if !touched[s.Namespace+"/"+string(s.Kind)+"/"+s.Name] {
			continue
		}
		out.Services = append(out.Services, s)
		out.VerdictNow = worst(out.VerdictNow, s.VerdictNow)
		if !s.Blocking {
			out.VerdictElsewhere = worst(out.VerdictElsewhere, s.Verdict)
		}
	}
	return &out
}

// TestAskNodesAnswersAsTheAPI: without pending nodes, the admission
// webhook's question gets the API's answer on the cluster without
// placement input for the services on the asked nodes, field for field
// (touchedPart); with them, the pending nodes count as gone, and names
// that are unknown, asked or already unschedulable change nothing.
func TestAskNodesAnswersAsTheAPI(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	viaAPI := func(t *testing.T, cluster *spread.Cluster, query string) *Answer {
		t.Helper()
		h := NewHandler(&fakeSource{cluster: withoutPlacement(cluster)}, spread.Options{DefaultMinNodes: 2}, logger)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", PathWhatIf+"?"+query, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", query, rec.Code, rec.Body)
		}
		var a Answer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		return &a
	}
	viaAskNodes := func(t *testing.T, cluster *spread.Cluster, nodes, gone []string) *Answer {
		t.Helper()
		h := NewHandler(&fakeSource{cluster: cluster}, spread.Options{DefaultMinNodes: 2}, logger)
		a, err := h.AskNodes(context.Background(), nodes, gone)
		if err != nil {
			t.Fatal(err)
		}
		// Through JSON, as the API's answer came.
		body, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var out Answer
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return &out
	}
	tests := []struct {
		name        string
		nodes, gone []string
		// same is the cluster and query whose API answer AskNodes must
		// give.
		same  *spread.Cluster
		query string
	}{
		{"one node, none pending", []string{"kubernetes2001"}, nil, mathoidDayOne(), "node=kubernetes2001"},
		{"cordoned already, none pending", []string{"kubernetes2002"}, nil, mathoidDayOne("kubernetes2001"), "node=kubernetes2002"},
		{"unknown, asked and unschedulable pending names change nothing", []string{"kubernetes2002"},
			[]string{"kubernetes2099", "kubernetes2002", "kubernetes2001"}, mathoidDayOne("kubernetes2001"), "node=kubernetes2002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := viaAskNodes(t, tc.same, tc.nodes, tc.gone)
			want := touchedPart(tc.same, tc.nodes, viaAPI(t, tc.same, tc.query))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("AskNodes(%v, gone %v) = %+v\nthe API answers %+v", tc.nodes, tc.gone, got, want)
			}
		})
	}

	// 2001 cordoned a moment ago, not yet in the caches: asking about
	// 2002 must judge it gone, as the API will once the watch delivers.
	got := viaAskNodes(t, mathoidDayOne(), []string{"kubernetes2002"}, []string{"kubernetes2001"})
	if got.Verdict != spread.VerdictNoReplicasLeft {
		t.Errorf("2002 with 2001 pending: verdict %s, want %s", got.Verdict, spread.VerdictNoReplicasLeft)
	}
	if want := []NodeState{{Name: "kubernetes2001", Reasons: []spread.Reason{spread.ReasonWhatIf}}}; !reflect.DeepEqual(got.AlreadyUnschedulable, want) {
		t.Errorf("2002 with 2001 pending: already_unschedulable %+v, want %+v", got.AlreadyUnschedulable, want)
	}
	if cached := touchedPart(mathoidDayOne(), []string{"kubernetes2002"}, viaAPI(t, mathoidDayOne("kubernetes2001"), "node=kubernetes2002")); serviceVerdicts(got).String() != serviceVerdicts(cached).String() {
		t.Errorf("2002 with 2001 pending: %v; once cached the API answers %v", serviceVerdicts(got), serviceVerdicts(cached))
	}
}

// TestAskNodesAnswersAsTheAPIOnRandomClusters: on random clusters (zones,
// nodes out of service, replicas not ready, on no node or on a node the
// cluster lacks, several services sharing nodes), AskNodes about a random
// node, with random other nodes pending, answers as the API does about
// that node once the pending nodes are cordoned, for the services on it.
func TestAskNodesAnswersAsTheAPIOnRandomClusters(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 5))
		c := &spread.Cluster{TopologyKeys: []string{"zone"}, Nodes: map[string]*spread.Node{}}
		var names []string
		for i := range 2 + r.IntN(8) {
			name := fmt.Sprintf("n%02d", i)
			node := &spread.Node{Name: name, Domains: []string{fmt.Sprintf("z%d", r.IntN(3))}}
			if r.IntN(5) == 0 {
				node.Unschedulable = []spread.Reason{spread.ReasonCordoned}
			}
			c.Nodes[name] = node
			names = append(names, name)
		}
		for i := range 1 + r.IntN(12) {
			kind := []spread.Kind{spread.KindDeployment, spread.KindStatefulSet, spread.KindService}[r.IntN(3)]
			svc := &spread.Service{Namespace: fmt.Sprintf("ns%d", r.IntN(2)), Kind: kind, Name: fmt.Sprintf("s%02d", i), DesiredReplicas: r.IntN(5), MinNodes: r.IntN(3)}
			for range r.IntN(6) {
				replica := spread.Replica{Node: names[r.IntN(len(names))], Ready: r.IntN(5) != 0}
				switch r.IntN(10) {
				case 0:
					replica.Node = ""
				case 1:
					replica.Node = "deleted-node"
				}
				svc.Replicas = append(svc.Replicas, replica)
			}
			c.Services = append(c.Services, svc)
		}
		asked := names[r.IntN(len(names))]
		if !c.Nodes[asked].Schedulable() {
			continue // the webhook asks about nodes going out of service
		}
		var pending []string
		for _, name := range names {
			if name != asked && c.Nodes[name].Schedulable() && r.IntN(4) == 0 {
				pending = append(pending, name)
			}
		}
		h := NewHandler(&fakeSource{cluster: c}, spread.Options{DefaultMinNodes: 2}, logger)
		got, err := h.AskNodes(context.Background(), []string{asked}, pending)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		cordoned := c
		if len(pending) > 0 {
			if cordoned, err = c.WithNodesGone(pending); err != nil {
				t.Fatal(err)
			}
		}
		answer, err := Ask(cordoned, []string{asked}, spread.Options{DefaultMinNodes: 2})
		if err != nil {
			t.Fatal(err)
		}
		want := touchedPart(c, []string{asked}, answer)
		// Through JSON both, as the webhook and the API answer.
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("seed %d, %s asked, %v pending:\nAskNodes %s\nthe API  %s", seed, asked, pending, gotJSON, wantJSON)
		}
	}
}

func (v verdicts) String() string {
	body, _ := json.Marshal(map[string]spread.Verdict(v))
	return string(body)
}

func TestAskNodesErrors(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	notSynced := errors.New("informer caches have not synced yet")
	h := NewHandler(&fakeSource{err: notSynced}, spread.Options{DefaultMinNodes: 2}, logger)
	if _, err := h.AskNodes(context.Background(), []string{"a"}, nil); !errors.Is(err, notSynced) {
		t.Errorf("caches not synced: err = %v, want it wrapped", err)
	}
	h = NewHandler(&fakeSource{cluster: mathoidDayOne()}, spread.Options{DefaultMinNodes: 2}, logger)
	var unknown *spread.UnknownNodesError
	if _, err := h.AskNodes(context.Background(), []string{"kubernetes2O01"}, nil); !errors.As(err, &unknown) {
		t.Errorf("unknown node: err = %v, want an UnknownNodesError", err)
	}
	// Every slot taken: the question gives up when its context ends.
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.AskNodes(ctx, []string{"kubernetes2001"}, nil); !errors.Is(err, ErrBusy) {
		t.Errorf("no free slot: err = %v, want ErrBusy", err)
	}
}

// changingSource is a cache whose content and generation a test changes,
// whose snapshots it counts, and, with gate set, holds until the test
// lets each one through.
type changingSource struct {
	mu         sync.Mutex
	cluster    *spread.Cluster
	generation uint64
	snapshots  int
	gate       chan struct{}
}

func (s *changingSource) change(c *spread.Cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cluster = c
	s.generation++
}

func (s *changingSource) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

func (s *changingSource) Snapshot() (*spread.Cluster, error) {
	panic("AskNodes took a snapshot with the placement input")
}

func (s *changingSource) SnapshotWithoutPlacement() (*spread.Cluster, error) {
	s.mu.Lock()
	s.snapshots++
	c, gate := s.cluster, s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return withoutPlacement(c), nil
}

func (s *changingSource) taken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshots
}

// settled returns the snapshots taken once they are at least want, or
// after a second: background refreshes start on their own goroutine.
// A moment later, so that one too many would show.
func (s *changingSource) settled(want int) int {
	for deadline := time.Now().Add(time.Second); s.taken() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	return s.taken()
}

func (s *changingSource) NodesMatching(string) ([]string, error) { return nil, nil }

// UnschedulableNodes and NodesInService read the cluster as it is now,
// without a snapshot, as cluster.Watcher does.
func (s *changingSource) UnschedulableNodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, n := range s.cluster.Nodes {
		if !n.Schedulable() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (s *changingSource) NodesInService(names []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, name := range names {
		if n := s.cluster.Nodes[name]; n != nil && n.Schedulable() {
			out = append(out, name)
		}
	}
	return out
}

// fakeClock is a time.Now that a test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// asked is what one AskNodes call returned.
type asked struct {
	answer *Answer
	err    error
}

// askAsync asks about node on its own goroutine.
func askAsync(h *Handler, node string, gone ...string) <-chan asked {
	out := make(chan asked, 1)
	go func() {
		a, err := h.AskNodes(context.Background(), []string{node}, gone)
		out <- asked{a, err}
	}()
	return out
}

// answered waits for an answer, failing the test after a few seconds.
func answered(t *testing.T, what string, ch <-chan asked) *Answer {
	t.Helper()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("%s: %v", what, got.err)
		}
		return got.answer
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer: it waits for a snapshot", what)
		return nil
	}
}

// notAnswered checks that a question is still waiting.
func notAnswered(t *testing.T, what string, ch <-chan asked) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("%s: answered (%v) before the snapshot it should wait for", what, got.err)
	case <-time.After(50 * time.Millisecond):
	}
}

// mathoidUnreadyOn2001 is day one with the mathoid pods on kubernetes2001
// not ready: a change of pods, which only a new snapshot shows.
func mathoidUnreadyOn2001() *spread.Cluster {
	c := mathoidDayOne()
	for _, svc := range c.Services {
		for i := range svc.Replicas {
			if svc.Namespace == "mathoid" && svc.Replicas[i].Node == "kubernetes2001" {
				svc.Replicas[i].Ready = false
			}
		}
	}
	return c
}

// TestAskNodesStaleness pins when a question waits for a snapshot: only
// when there is none, or the kept one is older than MaxStaleness and the
// caches moved past it. Otherwise it is answered from the kept one while
// one refresh at a time runs in the background.
func TestAskNodesStaleness(t *testing.T) {
	clock := &fakeClock{now: time.Date(2018, 7, 4, 14, 0, 0, 0, time.UTC)}
	src := &changingSource{cluster: mathoidDayOne(), gate: make(chan struct{})}
	h := NewHandler(src, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	h.now = clock.Now
	verdictOf := func(a *Answer) spread.Verdict { return a.Verdict }

	// No snapshot yet: the first question waits for one.
	first := askAsync(h, "kubernetes2002")
	notAnswered(t, "first question", first)
	src.gate <- struct{}{}
	if got := verdictOf(answered(t, "first question", first)); got != spread.VerdictSingleHomed {
		t.Errorf("2002 on day one: verdict %s, want %s", got, spread.VerdictSingleHomed)
	}

	// Caches unchanged: the snapshot is reused however old.
	clock.advance(time.Minute)
	answered(t, "unchanged caches", askAsync(h, "kubernetes2002"))
	if got := src.taken(); got != 1 {
		t.Fatalf("unchanged caches: %d snapshots, want 1", got)
	}

	// The caches moved (the mathoid pods on 2001 went unready) and the
	// snapshot is a minute old: the question waits for a new one.
	src.change(mathoidUnreadyOn2001())
	stale := askAsync(h, "kubernetes2002")
	notAnswered(t, "caches moved, snapshot older than the bound", stale)
	// A second question meanwhile shares the snapshot under way.
	alsoStale := askAsync(h, "kubernetes2002")
	notAnswered(t, "second question, snapshot older than the bound", alsoStale)
	src.gate <- struct{}{}
	for _, ch := range []<-chan asked{stale, alsoStale} {
		if got := verdictOf(answered(t, "after the new snapshot", ch)); got != spread.VerdictNoReplicasLeft {
			t.Errorf("2002 with the mathoid pods on 2001 unready: verdict %s, want %s", got, spread.VerdictNoReplicasLeft)
		}
	}
	if got := src.taken(); got != 2 {
		t.Fatalf("two questions waiting: %d snapshots in all, want 2 (one shared)", got)
	}

	// The caches move again (the pods ready again) within the bound: the
	// question is answered at once from the kept snapshot, and a refresh
	// starts, one only however many questions come.
	clock.advance(h.maxStaleness)
	src.change(mathoidDayOne())
	for i := range 3 {
		if got := verdictOf(answered(t, "caches moved, snapshot within the bound", askAsync(h, "kubernetes2002"))); got != spread.VerdictNoReplicasLeft {
			t.Errorf("question %d within the bound: verdict %s, want the kept snapshot's %s", i+1, got, spread.VerdictNoReplicasLeft)
		}
	}
	if got := src.settled(3); got != 3 {
		t.Fatalf("three questions within the bound: %d snapshots in all, want 3 (one refresh)", got)
	}
	src.gate <- struct{}{}
	// Once the refresh is in, questions get it.
	deadline := time.Now().Add(5 * time.Second)
	for verdictOf(answered(t, "after the refresh", askAsync(h, "kubernetes2002"))) != spread.VerdictSingleHomed {
		if time.Now().After(deadline) {
			t.Fatal("the refreshed snapshot never answered")
		}
		time.Sleep(time.Millisecond)
	}
	if got := src.taken(); got != 3 {
		t.Errorf("after the refresh: %d snapshots in all, want 3", got)
	}
}

// TestAskNodesTakesNodesAsTheCachesShowThemNow: on a snapshot within the
// bound but older than the caches, the nodes pending (admitted a moment
// ago) and the nodes the caches show out of service now count as gone,
// and those back in service since count in service: the second cordon of
// the mathoid pair is an outage, not single-homed, and after an uncordon
// it is single-homed again.
func TestAskNodesTakesNodesAsTheCachesShowThemNow(t *testing.T) {
	tests := []struct {
		name string
		// kept is the snapshot's cluster, now the caches'.
		kept, now *spread.Cluster
		pending   []string
		want      spread.Verdict
	}{
		{"nothing changed since", mathoidDayOne(), mathoidDayOne(), nil, spread.VerdictSingleHomed},
		{"2001 pending", mathoidDayOne(), mathoidDayOne(), []string{"kubernetes2001"}, spread.VerdictNoReplicasLeft},
		{"2001 out in the caches", mathoidDayOne(), mathoidDayOne("kubernetes2001"), nil, spread.VerdictNoReplicasLeft},
		{"2001 out in the caches and pending", mathoidDayOne(), mathoidDayOne("kubernetes2001"), []string{"kubernetes2001"}, spread.VerdictNoReplicasLeft},
		{"2001 back in service", mathoidDayOne("kubernetes2001"), mathoidDayOne(), nil, spread.VerdictSingleHomed},
		{"2001 back in service and cordoned again, pending", mathoidDayOne("kubernetes2001"), mathoidDayOne(), []string{"kubernetes2001"}, spread.VerdictNoReplicasLeft},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2018, 7, 4, 14, 0, 0, 0, time.UTC)}
			src := &changingSource{cluster: tc.kept}
			h := NewHandler(src, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
			h.now = clock.Now
			answered(t, "first question", askAsync(h, "kubernetes2003"))
			// The caches move; the next question's snapshot is the kept
			// one.
			src.mu.Lock()
			src.gate = make(chan struct{})
			src.mu.Unlock()
			src.change(tc.now)
			clock.advance(h.maxStaleness)
			got := answered(t, "stale snapshot", askAsync(h, "kubernetes2002", tc.pending...))
			close(src.gate)
			if got.Verdict != tc.want {
				t.Errorf("verdict %s, want %s", got.Verdict, tc.want)
			}
			if n := src.settled(2); n != 2 {
				t.Errorf("%d snapshots, want 2 (the first and one refresh)", n)
			}
		})
	}
}
