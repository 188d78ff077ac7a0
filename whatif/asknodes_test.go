package whatif

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// TestAskNodesAnswersAsTheAPI: without pending nodes, the admission
// webhook's question gets the API's answer, field for field; with them,
// the pending nodes count as gone, and names that are unknown, asked or
// already unschedulable change nothing.
func TestAskNodesAnswersAsTheAPI(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	viaAPI := func(t *testing.T, cluster *spread.Cluster, query string) *Answer {
		t.Helper()
		h := NewHandler(&fakeSource{cluster: cluster}, spread.Options{DefaultMinNodes: 2}, logger)
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
			want := viaAPI(t, tc.same, tc.query)
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
	if cached := viaAPI(t, mathoidDayOne("kubernetes2001"), "node=kubernetes2002"); serviceVerdicts(got).String() != serviceVerdicts(cached).String() {
		t.Errorf("2002 with 2001 pending: %v; once cached the API answers %v", serviceVerdicts(got), serviceVerdicts(cached))
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
