package whatif

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// mathoidDayOne is the cluster after the sequential reimage of 2003 and
// 2004: every mathoid replica on 2001 and 2002, two rows.
func mathoidDayOne(cordoned ...string) *spread.Cluster {
	nodes := map[string]*spread.Node{}
	for i, name := range []string{"kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"} {
		nodes[name] = &spread.Node{Name: name, Domains: []string{fmt.Sprintf("row-%c", 'a'+i%2)}}
	}
	for _, name := range cordoned {
		nodes[name].Unschedulable = []spread.Reason{spread.ReasonCordoned}
	}
	on := func(names ...string) []spread.Replica {
		var replicas []spread.Replica
		for _, n := range names {
			replicas = append(replicas, spread.Replica{Node: n, Ready: true})
		}
		return replicas
	}
	return &spread.Cluster{
		TopologyKeys: []string{"topology.kubernetes.io/zone"},
		Nodes:        nodes,
		Services: []*spread.Service{
			{Namespace: "mathoid", Kind: spread.KindDeployment, Name: "mathoid", DesiredReplicas: 4,
				Replicas: on("kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")},
			{Namespace: "mathoid", Kind: spread.KindService, Name: "mathoid", DesiredReplicas: -1, MinNodes: 3,
				Replicas: on("kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")},
			{Namespace: "wiki", Kind: spread.KindDeployment, Name: "spread", DesiredReplicas: 4,
				Replicas: on("kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004")},
			{Namespace: "wiki", Kind: spread.KindDeployment, Name: "solo", DesiredReplicas: 1,
				Replicas: on("kubernetes2001")},
		},
	}
}

type verdicts map[string]spread.Verdict

func serviceVerdicts(a *Answer) verdicts {
	v := verdicts{}
	for _, s := range a.Services {
		v[fmt.Sprintf("%s/%s/%s", s.Namespace, s.Kind, s.Name)] = s.Verdict
	}
	return v
}

func TestAsk(t *testing.T) {
	tests := []struct {
		name     string
		cluster  *spread.Cluster
		nodes    []string
		verdict  spread.Verdict
		services verdicts
		already  []string
	}{
		{
			name:    "the mathoid batch {2001, 2002} is unsafe",
			cluster: mathoidDayOne(),
			nodes:   []string{"kubernetes2001", "kubernetes2002"},
			verdict: spread.VerdictNoReplicasLeft,
			services: verdicts{
				"mathoid/Deployment/mathoid": spread.VerdictNoReplicasLeft,
				"mathoid/Service/mathoid":    spread.VerdictNoReplicasLeft,
				"wiki/Deployment/spread":     spread.VerdictOK,
				// One replica needs one node: losing it is expected.
				"wiki/Deployment/solo": spread.VerdictOK,
			},
		},
		{
			name:    "the batch {2001, 2003} leaves mathoid single-homed",
			cluster: mathoidDayOne(),
			nodes:   []string{"kubernetes2001", "kubernetes2003"},
			verdict: spread.VerdictSingleHomed,
			services: verdicts{
				"mathoid/Deployment/mathoid": spread.VerdictSingleHomed,
				"mathoid/Service/mathoid":    spread.VerdictSingleHomed,
				"wiki/Deployment/spread":     spread.VerdictOK,
				"wiki/Deployment/solo":       spread.VerdictOK,
			},
		},
		{
			name:    "a batch of nodes without mathoid replicas is safe",
			cluster: mathoidDayOne(),
			nodes:   []string{"kubernetes2003"},
			verdict: spread.VerdictOK,
			services: verdicts{
				"wiki/Deployment/spread": spread.VerdictOK,
				// Below its min_nodes of 3 already: listed, but not made worse.
				"mathoid/Service/mathoid": spread.VerdictBelowMinNodes,
			},
		},
		{
			name:    "an already cordoned node counts as gone, and the answer says so",
			cluster: mathoidDayOne("kubernetes2002"),
			nodes:   []string{"kubernetes2001"},
			verdict: spread.VerdictNoReplicasLeft,
			services: verdicts{
				"mathoid/Deployment/mathoid": spread.VerdictNoReplicasLeft,
				"mathoid/Service/mathoid":    spread.VerdictNoReplicasLeft,
				"wiki/Deployment/spread":     spread.VerdictOK,
				"wiki/Deployment/solo":       spread.VerdictOK,
			},
			already: []string{"kubernetes2002"},
		},
		{
			name:     "a node named twice is asked about once",
			cluster:  mathoidDayOne(),
			nodes:    []string{"kubernetes2003", "kubernetes2003"},
			verdict:  spread.VerdictOK,
			services: verdicts{"wiki/Deployment/spread": spread.VerdictOK, "mathoid/Service/mathoid": spread.VerdictBelowMinNodes},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answer, err := Ask(tc.cluster, tc.nodes, spread.Options{DefaultMinNodes: 2})
			if err != nil {
				t.Fatal(err)
			}
			if answer.Verdict != tc.verdict {
				t.Errorf("verdict = %s, want %s", answer.Verdict, tc.verdict)
			}
			if got := serviceVerdicts(answer); !reflect.DeepEqual(got, tc.services) {
				t.Errorf("services = %v, want %v", got, tc.services)
			}
			var already []string
			for _, n := range answer.AlreadyUnschedulable {
				already = append(already, n.Name)
			}
			if !reflect.DeepEqual(already, tc.already) {
				t.Errorf("already unschedulable = %v, want %v", already, tc.already)
			}
			// Asking never changes the cluster.
			for _, name := range tc.nodes {
				for _, r := range tc.cluster.Nodes[name].Unschedulable {
					if r == spread.ReasonWhatIf {
						t.Errorf("Ask marked %s in the caller's cluster", name)
					}
				}
			}
		})
	}
}

func TestAskRejectsBadInput(t *testing.T) {
	_, err := Ask(mathoidDayOne(), nil, spread.Options{DefaultMinNodes: 2})
	if !errors.Is(err, spread.ErrNoNodes) {
		t.Errorf("no nodes: err = %v, want ErrNoNodes", err)
	}
	_, err = Ask(mathoidDayOne(), []string{"kubernetes2001", "kubernetes2O02", "mw1001", "mw1001"}, spread.Options{DefaultMinNodes: 2})
	var unknown *spread.UnknownNodesError
	if !errors.As(err, &unknown) || err.Error() != "unknown nodes: kubernetes2O02, mw1001" {
		t.Errorf("unknown nodes: err = %v", err)
	}
}

func TestAskPlanNamesTheFirstUnsafeBatch(t *testing.T) {
	plan, err := AskPlan(mathoidDayOne(), [][]string{
		{"kubernetes2003", "kubernetes2004"},
		{"kubernetes2001", "kubernetes2002"},
		{"kubernetes2001"},
	}, spread.Options{DefaultMinNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range plan.Unsafe {
		got = append(got, fmt.Sprintf("%s/%s/%s@%d:%s", u.Namespace, u.Kind, u.Name, u.FirstBatch, u.Verdict))
	}
	want := []string{
		"mathoid/Deployment/mathoid@2:no_replicas_left",
		"mathoid/Service/mathoid@2:no_replicas_left",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unsafe = %v, want %v", got, want)
	}
	// Batch 3 (2001 alone) leaves mathoid on 2002 only.
	if plan.Verdict != spread.VerdictNoReplicasLeft || plan.Batches[0].Verdict != spread.VerdictOK || plan.Batches[2].Verdict != spread.VerdictSingleHomed {
		t.Errorf("verdicts: plan %s, batches %s %s %s", plan.Verdict, plan.Batches[0].Verdict, plan.Batches[1].Verdict, plan.Batches[2].Verdict)
	}
	if _, err := AskPlan(mathoidDayOne(), [][]string{{"kubernetes2001"}, {"nope"}}, spread.Options{DefaultMinNodes: 2}); err == nil || err.Error() != "batch 2: unknown nodes: nope" {
		t.Errorf("unknown node in batch 2: err = %v", err)
	}
}

// fakeSource serves a fixed cluster; nodes with "batch-3" in the name
// match the selector maintenance=batch-3.
type fakeSource struct {
	cluster *spread.Cluster
	err     error
}

func (f *fakeSource) Snapshot() (*spread.Cluster, error) { return f.cluster, f.err }
func (f *fakeSource) NodesMatching(selector string) ([]string, error) {
	switch selector {
	case "maintenance=day-two":
		return []string{"kubernetes2001", "kubernetes2002"}, nil
	case "maintenance=none":
		return nil, nil
	}
	return nil, errors.New("found '(', expected: identifier")
}

// TestHandler pins status codes and whole JSON bodies (golden files).
func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		source *fakeSource
		method string
		target string
		status int
	}{
		{"mathoid-day-two-nodes", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?node=kubernetes2001&node=kubernetes2002", 200},
		{"mathoid-day-two-selector", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?selector=maintenance%3Dday-two", 200},
		{"comma-list", &fakeSource{cluster: mathoidDayOne("kubernetes2004")}, "GET", "/api/v1/whatif?node=kubernetes2001,kubernetes2003", 200},
		{"plan", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif/plan?batch=kubernetes2003,kubernetes2004&batch=kubernetes2001,kubernetes2002", 200},
		{"unknown-node", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?node=kubernetes2001&node=kubernetes2O02", 400},
		{"no-node", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif", 400},
		{"empty-node", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?node=", 400},
		{"misspelt-parameter", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?nodes=kubernetes2001", 400},
		{"bad-selector", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?selector=%28", 400},
		{"selector-matches-nothing", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif?selector=maintenance%3Dnone", 400},
		{"plan-without-batch", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif/plan", 400},
		{"plan-empty-batch", &fakeSource{cluster: mathoidDayOne()}, "GET", "/api/v1/whatif/plan?batch=kubernetes2001&batch=,", 400},
		{"not-synced", &fakeSource{err: errors.New("informer caches have not synced yet")}, "GET", "/api/v1/whatif?node=kubernetes2001", 503},
		{"post", &fakeSource{cluster: mathoidDayOne()}, "POST", "/api/v1/whatif?node=kubernetes2001", 405},
	}
	handler := NewHandler(nil, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler.source = tc.source
			recorder := httptest.NewRecorder()
			handler.ServeHTTP(recorder, httptest.NewRequest(tc.method, tc.target, nil))
			resp := recorder.Result()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type = %q", ct)
			}
			if !json.Valid(body) {
				t.Errorf("body is not JSON: %s", body)
			}
			golden := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(golden, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./whatif -update to create it)", err)
			}
			if strings.TrimSpace(string(body)) != strings.TrimSpace(string(want)) {
				t.Errorf("body:\n%s\nwant:\n%s", body, want)
			}
		})
	}
}

// FuzzHandler sends arbitrary query strings to the what-if API: it must
// answer 200 or 400 with JSON, never panic or fail otherwise.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"node=kubernetes2001&node=kubernetes2002", "node=kubernetes2001,kubernetes2003", "selector=maintenance%3Dday-two",
		"selector=%28", "nodes=x", "node=", "node=%00", "node=a&node=a,,b", "batch=kubernetes2001", "%zz",
	} {
		f.Add("/api/v1/whatif", seed)
		f.Add("/api/v1/whatif/plan", strings.ReplaceAll(seed, "node", "batch"))
	}
	handler := NewHandler(&fakeSource{cluster: mathoidDayOne("kubernetes2004")}, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, path, query string) {
		if path != PathWhatIf && path != PathPlan {
			path = PathWhatIf
		}
		req := httptest.NewRequest("GET", "http://exporter"+path, nil)
		req.URL.RawQuery = query
		recorder := httptest.NewRecorder()
		handler.ServeHTTP(recorder, req)
		if recorder.Code != 200 && recorder.Code != 400 {
			t.Errorf("%s?%s: status %d", path, query, recorder.Code)
		}
		if !json.Valid(recorder.Body.Bytes()) {
			t.Errorf("%s?%s: body is not JSON: %q", path, query, recorder.Body.String())
		}
	})
}
