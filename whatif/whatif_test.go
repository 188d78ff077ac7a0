package whatif

import (
	"cmp"
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"k8s.io/apimachinery/pkg/labels"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// mathoidDayOne is the cluster after the sequential reimage of 2003 and
// 2004: every mathoid replica on 2001 and 2002, two rows. The reimaged
// nodes are pristine: only 2001 and 2002 hold mathoid's image. A budget
// lets one mathoid pod go at a time.
func mathoidDayOne(cordoned ...string) *spread.Cluster {
	names := []string{"kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"}
	nodes := map[string]*spread.Node{}
	pc := &placement.Cluster{}
	for i, name := range names {
		nodes[name] = &spread.Node{Name: name, Domains: []string{fmt.Sprintf("row-%c", 'a'+i%2)}}
		n := placement.Node{
			Name:        name,
			Labels:      placement.Labels{{Key: "kubernetes.io/hostname", Value: name}},
			Allocatable: placement.Resources{MilliCPU: 16000, Memory: 64 << 30, Pods: 110},
		}
		if i < 2 {
			n.Images = []*placement.Image{{Names: []string{"wikimedia/mathoid:2018"}}}
		}
		pc.Nodes = append(pc.Nodes, n)
	}
	for _, name := range cordoned {
		nodes[name].Unschedulable = []spread.Reason{spread.ReasonCordoned}
	}
	template := func(namespace, name string) *placement.Template {
		return &placement.Template{
			Namespace: namespace, Owner: "ReplicaSet/" + name + "-1", Labels: placement.Labels{{Key: "app", Value: name}},
			Requests:      placement.Resources{MilliCPU: 1000, Memory: 1 << 30, Pods: 1},
			ScoreMilliCPU: 1000, ScoreMemory: 1 << 30,
			Images: []string{"wikimedia/" + name + ":2018"}, Recreated: true,
		}
	}
	index := map[string]int32{}
	for i, name := range names {
		index[name] = int32(i)
	}
	// on places one pod of t on each named node; pods of a Deployment and
	// of the Service in front of it are the same pods, given again.
	on := func(t *placement.Template, names ...string) []spread.Replica {
		var replicas []spread.Replica
		for i, n := range names {
			pc.Pods = append(pc.Pods, placement.Pod{Template: t, Name: fmt.Sprintf("%s-%d", t.Owner, i), Node: index[n], Ready: true})
			replicas = append(replicas, spread.Replica{Node: n, Ready: true, Pod: int32(len(pc.Pods))})
		}
		return replicas
	}
	mathoid := on(template("mathoid", "mathoid"), "kubernetes2001", "kubernetes2001", "kubernetes2002", "kubernetes2002")
	pc.PDBs = []placement.PDB{{Namespace: "mathoid", Name: "mathoid", DisruptionsAllowed: 1,
		Selector: placement.Selector{Requirements: []placement.Requirement{{Key: "app", Operator: placement.OpIn, Values: []string{"mathoid"}}}}}}
	return &spread.Cluster{
		TopologyKeys: []string{"topology.kubernetes.io/zone"},
		Nodes:        nodes,
		Placement:    pc,
		Services: []*spread.Service{
			{Namespace: "mathoid", Kind: spread.KindDeployment, Name: "mathoid", DesiredReplicas: 4, Replicas: mathoid},
			{Namespace: "mathoid", Kind: spread.KindService, Name: "mathoid", DesiredReplicas: -1, MinNodes: 3, Replicas: mathoid},
			{Namespace: "wiki", Kind: spread.KindDeployment, Name: "spread", DesiredReplicas: 4,
				Replicas: on(template("wiki", "spread"), "kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004")},
			{Namespace: "wiki", Kind: spread.KindDeployment, Name: "solo", DesiredReplicas: 1,
				Replicas: on(template("wiki", "solo"), "kubernetes2001")},
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
		// elsewhere is the expected verdict_elsewhere; "" means ok.
		elsewhere spread.Verdict
		already   []string
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
			elsewhere: spread.VerdictBelowMinNodes,
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
			// Cordon-first tooling (kubectl drain) cordons, then asks: the
			// question is still what taking those nodes down does.
			name:    "asking about a batch that is cordoned already judges taking it down",
			cluster: mathoidDayOne("kubernetes2001", "kubernetes2002"),
			nodes:   []string{"kubernetes2001", "kubernetes2002"},
			verdict: spread.VerdictNoReplicasLeft,
			services: verdicts{
				"mathoid/Deployment/mathoid": spread.VerdictNoReplicasLeft,
				"mathoid/Service/mathoid":    spread.VerdictNoReplicasLeft,
				"wiki/Deployment/spread":     spread.VerdictOK,
				"wiki/Deployment/solo":       spread.VerdictOK,
			},
			already: []string{"kubernetes2001", "kubernetes2002"},
		},
		{
			name:    "half of the batch cordoned already counts the same",
			cluster: mathoidDayOne("kubernetes2002"),
			nodes:   []string{"kubernetes2001", "kubernetes2002"},
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
			// mathoid has no replica left because of the cordon on 2001
			// and 2002, which 2003 does not change: trouble elsewhere. But
			// taking 2003 leaves wiki/spread on 2004 alone: that counts.
			name:    "trouble elsewhere does not block, what the batch does does",
			cluster: mathoidDayOne("kubernetes2001", "kubernetes2002"),
			nodes:   []string{"kubernetes2003"},
			verdict: spread.VerdictBelowMinNodes,
			services: verdicts{
				"mathoid/Deployment/mathoid": spread.VerdictNoReplicasLeft,
				"mathoid/Service/mathoid":    spread.VerdictNoReplicasLeft,
				"wiki/Deployment/spread":     spread.VerdictBelowMinNodes,
				"wiki/Deployment/solo":       spread.VerdictOK,
			},
			elsewhere: spread.VerdictNoReplicasLeft,
			already:   []string{"kubernetes2001", "kubernetes2002"},
		},
		{
			name:      "a node named twice is asked about once",
			cluster:   mathoidDayOne(),
			nodes:     []string{"kubernetes2003", "kubernetes2003"},
			verdict:   spread.VerdictOK,
			services:  verdicts{"wiki/Deployment/spread": spread.VerdictOK, "mathoid/Service/mathoid": spread.VerdictBelowMinNodes},
			elsewhere: spread.VerdictBelowMinNodes,
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
			if want := cmp.Or(tc.elsewhere, spread.VerdictOK); answer.VerdictElsewhere != want {
				t.Errorf("verdict elsewhere = %s, want %s", answer.VerdictElsewhere, want)
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
	}
	// The parser cluster.Watcher uses, for its real messages.
	_, err := labels.Parse(selector)
	return nil, err
}

// TestHandler pins status codes and whole JSON bodies (golden files). A
// POST shares its golden file with the GET asking the same question: the
// answers must be the same.
func TestHandler(t *testing.T) {
	startOfDayOne := &fakeSource{cluster: mathoidStartOfDayOne()}
	manyNames := func(n int, prefix string) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("%s%05d", prefix, i)
		}
		return strings.Join(names, ",")
	}
	tests := []struct {
		name   string
		source *fakeSource
		method string
		target string
		// body and contentType are sent with a POST.
		body, contentType string
		status            int
		// golden names the golden file when it is not name.
		golden string
	}{
		{name: "mathoid-day-two-nodes", target: "/api/v1/whatif?node=kubernetes2001&node=kubernetes2002", status: 200},
		{name: "mathoid-day-two-selector", target: "/api/v1/whatif?selector=maintenance%3Dday-two", status: 200},
		{name: "mathoid-day-two-cordoned-first", source: &fakeSource{cluster: mathoidDayOne("kubernetes2001", "kubernetes2002")}, target: "/api/v1/whatif?node=kubernetes2001&node=kubernetes2002", status: 200},
		{name: "comma-list", source: &fakeSource{cluster: mathoidDayOne("kubernetes2004")}, target: "/api/v1/whatif?node=kubernetes2001,kubernetes2003", status: 200},
		{name: "plan", target: "/api/v1/whatif/plan?batch=kubernetes2003,kubernetes2004&batch=kubernetes2001,kubernetes2002", status: 200},
		{name: "post", method: "POST", target: "/api/v1/whatif", body: `{"nodes": ["kubernetes2001", "kubernetes2002"]}`, contentType: "application/json", status: 200, golden: "mathoid-day-two-nodes"},
		{name: "post-selector", method: "POST", target: "/api/v1/whatif", body: `{"selectors": ["maintenance=day-two"]}`, status: 200, golden: "mathoid-day-two-selector"},
		{name: "post-plan", method: "POST", target: "/api/v1/whatif/plan", body: `{"batches": [["kubernetes2003", "kubernetes2004"], ["kubernetes2001", "kubernetes2002"]]}`, contentType: "application/json; charset=utf-8", status: 200, golden: "plan"},
		{name: "unknown-node", target: "/api/v1/whatif?node=kubernetes2001&node=kubernetes2O02", status: 400},
		{name: "many-unknown-nodes", target: "/api/v1/whatif?node=" + manyNames(10000, "mw"), status: 400},
		{name: "too-many-nodes", target: "/api/v1/whatif?node=" + manyNames(10001, "kubernetes"), status: 400},
		{name: "plan-too-many-nodes", method: "POST", target: "/api/v1/whatif/plan", body: `{"batches": [["` + strings.ReplaceAll(manyNames(6000, "a"), ",", `","`) + `"], ["` + strings.ReplaceAll(manyNames(6000, "b"), ",", `","`) + `"]]}`, status: 400},
		{name: "no-node", target: "/api/v1/whatif", status: 400},
		{name: "empty-node", target: "/api/v1/whatif?node=", status: 400},
		{name: "empty-selector", target: "/api/v1/whatif?selector=", status: 400},
		{name: "blank-selector", method: "POST", target: "/api/v1/whatif", body: `{"selectors": [" "]}`, status: 400, golden: "empty-selector"},
		{name: "misspelt-parameter", target: "/api/v1/whatif?nodes=kubernetes2001", status: 400},
		{name: "many-unknown-parameters", target: "/api/v1/whatif?" + strings.ReplaceAll(manyNames(50, "p"), ",", "=1&") + "=1", status: 400},
		{name: "bad-selector", target: "/api/v1/whatif?selector=%28", status: 400},
		{name: "long-bad-selector", target: "/api/v1/whatif?selector=%28" + strings.Repeat("x", 5000), status: 400},
		{name: "selector-matches-nothing", target: "/api/v1/whatif?selector=maintenance%3Dnone", status: 400},
		{name: "plan-without-batch", target: "/api/v1/whatif/plan", status: 400},
		{name: "plan-empty-batch", target: "/api/v1/whatif/plan?batch=kubernetes2001&batch=,", status: 400},
		{name: "post-with-query", method: "POST", target: "/api/v1/whatif?node=kubernetes2001", body: `{"nodes": ["kubernetes2001"]}`, status: 400},
		{name: "post-form", method: "POST", target: "/api/v1/whatif", body: "node=kubernetes2001", contentType: "application/x-www-form-urlencoded", status: 415},
		{name: "post-unknown-field", method: "POST", target: "/api/v1/whatif", body: `{"node": ["kubernetes2001"]}`, status: 400},
		{name: "post-long-unknown-field", method: "POST", target: "/api/v1/whatif", body: `{"` + strings.Repeat("x", 5000) + `": 1}`, status: 400},
		{name: "long-bad-selector-value", target: "/api/v1/whatif?selector=app%3D" + strings.Repeat("x", 5000) + "%2B", status: 400},
		{name: "post-two-values", method: "POST", target: "/api/v1/whatif", body: `{"nodes": ["kubernetes2001"]} {}`, status: 400},
		{name: "post-batches-to-whatif", method: "POST", target: "/api/v1/whatif", body: `{"batches": [["kubernetes2001"]]}`, status: 400},
		{name: "post-too-large", method: "POST", target: "/api/v1/whatif", body: `{"nodes": ["` + strings.Repeat("x", MaxBodyBytes) + `"]}`, status: 413},
		{name: "not-synced", source: &fakeSource{err: errors.New("informer caches have not synced yet")}, target: "/api/v1/whatif?node=kubernetes2001", status: 503},
		{name: "put", method: "PUT", target: "/api/v1/whatif?node=kubernetes2001", status: 405},
		{name: "campaign", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003,kubernetes2004&batch=kubernetes2001,kubernetes2002", status: 200},
		{name: "post-campaign", source: startOfDayOne, method: "POST", target: "/api/v1/whatif/campaign", body: `{"batches": [["kubernetes2003", "kubernetes2004"], ["kubernetes2001", "kubernetes2002"]]}`, status: 200, golden: "campaign"},
		{name: "campaign-stay-away", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&batch=kubernetes2004&batch=kubernetes2001,kubernetes2002&nodes_return=false", status: 200},
		{name: "post-campaign-stay-away", source: startOfDayOne, method: "POST", target: "/api/v1/whatif/campaign", body: `{"batches": [["kubernetes2003"], ["kubernetes2004"], ["kubernetes2001", "kubernetes2002"]], "nodes_return": false}`, status: 200, golden: "campaign-stay-away"},
		{name: "campaign-bad-nodes-return", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&nodes_return=maybe", status: 400},
		{name: "campaign-node-twice", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&batch=kubernetes2001,kubernetes2003", status: 400},
		{name: "campaign-unknown-node", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&batch=kubernetes2O01", status: 400},
		{name: "campaign-too-many-batches", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=" + strings.ReplaceAll(manyNames(101, "n"), ",", "&batch="), status: 400},
		{name: "campaign-more-batches-than-a-plan", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=" + strings.ReplaceAll(manyNames(1001, "n"), ",", "&batch="), status: 400},
		{name: "campaign-without-batch", source: startOfDayOne, target: "/api/v1/whatif/campaign?nodes_return=true", status: 400, golden: "plan-without-batch"},
		{name: "post-campaign-with-nodes", source: startOfDayOne, method: "POST", target: "/api/v1/whatif/campaign", body: `{"nodes": ["kubernetes2001"], "batches": [["kubernetes2002"]]}`, status: 400},
		{name: "post-plan-nodes-return", method: "POST", target: "/api/v1/whatif/plan", body: `{"batches": [["kubernetes2002"]], "nodes_return": false}`, status: 400},
		{name: "campaign-without-placement", source: &fakeSource{cluster: withoutPlacement(startOfDayOne.cluster)}, target: "/api/v1/whatif/campaign?batch=kubernetes2003", status: 503},
		{name: "campaign-no-remedy-search", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003,kubernetes2004&batch=kubernetes2001,kubernetes2002&remedy_batches=0", status: 200},
		{name: "post-campaign-remedy-batches", source: startOfDayOne, method: "POST", target: "/api/v1/whatif/campaign", body: `{"batches": [["kubernetes2003", "kubernetes2004"], ["kubernetes2001", "kubernetes2002"]], "remedy_batches": 200}`, status: 200, golden: "campaign"},
		{name: "campaign-remedy-batches-not-a-number", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&remedy_batches=many", status: 400},
		{name: "campaign-remedy-batches-too-many", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&remedy_batches=201", status: 400},
		{name: "campaign-remedy-batches-negative", source: startOfDayOne, target: "/api/v1/whatif/campaign?batch=kubernetes2003&remedy_batches=-1", status: 400},
		{name: "post-campaign-remedy-batches-negative", source: startOfDayOne, method: "POST", target: "/api/v1/whatif/campaign", body: `{"batches": [["kubernetes2003"]], "remedy_batches": -1}`, status: 400},
		{name: "post-plan-remedy-batches", method: "POST", target: "/api/v1/whatif/plan", body: `{"batches": [["kubernetes2002"]], "remedy_batches": 10}`, status: 400, golden: "post-plan-nodes-return"},
	}
	handler := NewHandler(nil, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler.source = cmp.Or(tc.source, &fakeSource{cluster: mathoidDayOne()})
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(cmp.Or(tc.method, "GET"), tc.target, body)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			recorder := httptest.NewRecorder()
			handler.ServeHTTP(recorder, req)
			resp := recorder.Result()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d; body %.500s", resp.StatusCode, tc.status, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type = %q", ct)
			}
			if !json.Valid(got) {
				t.Errorf("body is not JSON: %.500s", got)
			}
			// An error repeats a bounded part of the request, whatever its size.
			if tc.status >= 400 && len(got) > 4096 {
				t.Errorf("error body is %d bytes, want a short line", len(got))
			}
			golden := filepath.Join("testdata", cmp.Or(tc.golden, tc.name)+".json")
			if *update && tc.golden == "" {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./whatif -update to create it)", err)
			}
			if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
				t.Errorf("body:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestHandlerBoundsConcurrentAnalyses sends many questions at once: the
// analyses never exceed the handler's slots, and questions asked while the
// caches are unchanged share one snapshot.
func TestHandlerBoundsConcurrentAnalyses(t *testing.T) {
	source := &countingSource{fakeSource: fakeSource{cluster: mathoidDayOne()}}
	handler := NewHandler(source, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			recorder := httptest.NewRecorder()
			handler.ServeHTTP(recorder, httptest.NewRequest("GET", "/api/v1/whatif?node=kubernetes2001", nil))
			if recorder.Code != 200 {
				t.Errorf("status %d: %s", recorder.Code, recorder.Body)
			}
		})
	}
	wg.Wait()
	if got := source.snapshots.Load(); got != 1 {
		t.Errorf("%d snapshots for 200 questions at one generation, want 1", got)
	}
	source.generation.Add(1)
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, httptest.NewRequest("GET", "/api/v1/whatif?node=kubernetes2001", nil))
	if got := source.snapshots.Load(); got != 2 {
		t.Errorf("%d snapshots after the generation changed, want 2", got)
	}
	if len(handler.slots) != 0 || cap(handler.slots) < 2 {
		t.Errorf("slots: %d in use after every question ended, capacity %d", len(handler.slots), cap(handler.slots))
	}
}

// TestHandlerDropsStaleBaseline: the kept snapshot is dropped once the
// caches changed or after baselineIdle without a question, and kept while
// it is current and in use.
func TestHandlerDropsStaleBaseline(t *testing.T) {
	source := &countingSource{fakeSource: fakeSource{cluster: mathoidDayOne()}}
	handler := NewHandler(source, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	ask := func() {
		t.Helper()
		recorder := httptest.NewRecorder()
		handler.ServeHTTP(recorder, httptest.NewRequest("GET", "/api/v1/whatif?node=kubernetes2001", nil))
		if recorder.Code != 200 {
			t.Fatalf("status %d: %s", recorder.Code, recorder.Body)
		}
	}
	kept := func() bool {
		handler.mu.Lock()
		defer handler.mu.Unlock()
		return handler.base != nil
	}
	ask()
	if handler.expire(); !kept() {
		t.Fatal("a current baseline, just used, was dropped")
	}
	source.generation.Add(1)
	if handler.expire(); kept() {
		t.Error("a stale baseline was kept")
	}
	ask()
	handler.mu.Lock()
	handler.used = time.Now().Add(-baselineIdle)
	handler.mu.Unlock()
	if handler.expire(); kept() {
		t.Error("an idle baseline was kept")
	}
	ask()
	if got := source.snapshots.Load(); got != 3 {
		t.Errorf("%d snapshots, want 3 (one per question after each drop)", got)
	}
	handler.mu.Lock()
	if handler.expiry != nil {
		handler.expiry.Stop()
	}
	handler.mu.Unlock()
}

// withoutPlacement is c as a source without the placement input gives it.
func withoutPlacement(c *spread.Cluster) *spread.Cluster {
	out := *c
	out.Placement = nil
	return &out
}

// countingSource counts snapshots and has a generation.
type countingSource struct {
	fakeSource
	snapshots, generation atomic.Uint64
}

func (c *countingSource) Snapshot() (*spread.Cluster, error) {
	c.snapshots.Add(1)
	return c.fakeSource.Snapshot()
}
func (c *countingSource) Generation() uint64 { return c.generation.Load() }

// FuzzHandler sends arbitrary query strings to the what-if API: it must
// answer 200 or 400 with JSON, never panic or fail otherwise.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"node=kubernetes2001&node=kubernetes2002", "node=kubernetes2001,kubernetes2003", "selector=maintenance%3Dday-two",
		"selector=%28", "nodes=x", "node=", "node=%00", "node=a&node=a,,b", "batch=kubernetes2001", "%zz",
	} {
		f.Add("/api/v1/whatif", seed)
		f.Add("/api/v1/whatif/plan", strings.ReplaceAll(seed, "node", "batch"))
		f.Add("/api/v1/whatif/campaign", strings.ReplaceAll(seed, "node", "batch")+"&nodes_return=false")
	}
	handler := NewHandler(&fakeSource{cluster: mathoidDayOne("kubernetes2004")}, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, path, query string) {
		if path != PathWhatIf && path != PathPlan && path != PathCampaign {
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

// withoutRoomOn2003And2004 leaves 500m of CPU on kubernetes2003 and 2004,
// next to their spread pod: no room for a displaced pod of 1000m.
func withoutRoomOn2003And2004(c *spread.Cluster) *spread.Cluster {
	for i := range c.Placement.Nodes {
		if n := &c.Placement.Nodes[i]; n.Name == "kubernetes2003" || n.Name == "kubernetes2004" {
			n.Allocatable.MilliCPU = 1500
		}
	}
	return c
}

// TestAskNoRoom: when the nodes that stay have no room for the displaced
// replicas, a service whose spread would survive gets the verdict
// no_room, with the reason per replica; an outage stays the worse verdict.
func TestAskNoRoom(t *testing.T) {
	c := withoutRoomOn2003And2004(mathoidDayOne())
	answer, err := Ask(c, []string{"kubernetes2001", "kubernetes2002"}, spread.Options{DefaultMinNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := verdicts{
		"mathoid/Deployment/mathoid": spread.VerdictNoReplicasLeft,
		"mathoid/Service/mathoid":    spread.VerdictNoReplicasLeft,
		"wiki/Deployment/spread":     spread.VerdictNoRoom,
		"wiki/Deployment/solo":       spread.VerdictNoRoom,
	}
	if got := serviceVerdicts(answer); !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts = %v, want %v", got, want)
	}
	for _, s := range answer.Services {
		if s.Name == "spread" {
			wantPlacement := placement.Summary{State: placement.StateNoRoom, Displaced: 2, Placed: 0, Unplaced: 2,
				Reasons: map[placement.Reason]int{placement.ReasonInsufficientCPU: 2}}
			if !reflect.DeepEqual(s.Placement, wantPlacement) || !s.Blocking {
				t.Errorf("spread: placement %+v, blocking %v", s.Placement, s.Blocking)
			}
		}
	}
	// One node at a time, the other takes everything: nothing is short.
	answer, err = Ask(c, []string{"kubernetes2001"}, spread.Options{DefaultMinNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range answer.Services {
		if s.Placement.State != placement.StateFit || s.Verdict == spread.VerdictNoRoom {
			t.Errorf("%s/%s: placement %+v, verdict %s", s.Kind, s.Name, s.Placement, s.Verdict)
		}
	}
}

// TestAskNoRoomSparesAServiceDownAlready: a service without a ready
// replica is ok (down for other reasons), even when its displaced pods
// have no room: the batch takes nothing from it, and a crash-looping
// workload must not block every batch.
func TestAskNoRoomSparesAServiceDownAlready(t *testing.T) {
	c := withoutRoomOn2003And2004(mathoidDayOne())
	solo := c.Services[3]
	solo.Replicas[0].Ready = false
	c.Placement.Pods[solo.Replicas[0].Pod-1].Ready = false
	answer, err := Ask(c, []string{"kubernetes2001", "kubernetes2002"}, spread.Options{DefaultMinNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := verdicts{
		"mathoid/Deployment/mathoid": spread.VerdictNoReplicasLeft,
		"mathoid/Service/mathoid":    spread.VerdictNoReplicasLeft,
		"wiki/Deployment/spread":     spread.VerdictNoRoom,
	}
	if got := serviceVerdicts(answer); !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts = %v, want %v (solo has no ready replica: ok, not listed)", got, want)
	}
}
