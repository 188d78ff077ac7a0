package check

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// TestWhatIfResult renders the what-if API's golden answers (whatif/testdata)
// as plugin output, compared whole.
func TestWhatIfResult(t *testing.T) {
	tests := []struct {
		answer string
		state  nagios.State
		want   string
	}{
		{
			answer: "mathoid-day-two-nodes.json",
			state:  nagios.Critical,
			want: `CRITICAL - taking down kubernetes2001, kubernetes2002 hurts 2 services: mathoid/Deployment/mathoid would have no replica left, mathoid/Service/mathoid would have no replica left | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0
CRITICAL mathoid/Deployment/mathoid: would have no replica left; 4 ready replicas on 2 schedulable nodes now, 0 on 0 after, min_nodes 2; placement fit: 4 of 4 displaced fit, 0 warm nodes; PDB mathoid allows 1 evictions, 4 needed
CRITICAL mathoid/Service/mathoid: would have no replica left; 4 ready replicas on 2 schedulable nodes now, 0 on 0 after, min_nodes 3; placement fit: 4 of 4 displaced fit, 0 warm nodes; PDB mathoid allows 1 evictions, 4 needed
`,
		},
		{
			answer: "comma-list.json",
			state:  nagios.Warning,
			want: `WARNING - taking down kubernetes2001, kubernetes2003 hurts 3 services: mathoid/Deployment/mathoid would be single-homed, mathoid/Service/mathoid would be single-homed, wiki/Deployment/spread would run on fewer nodes than it needs | 'no_replicas_left'=0;;;0 'no_room'=0;;;0 'single_homed'=2;;;0 'below_min_nodes'=1;;;0
WARNING mathoid/Deployment/mathoid: would be single-homed; 4 ready replicas on 2 schedulable nodes now, 2 on 1 after, min_nodes 2; placement fit: 2 of 2 displaced fit, 1 warm nodes; PDB mathoid allows 1 evictions, 2 needed
WARNING mathoid/Service/mathoid: would be single-homed; 4 ready replicas on 2 schedulable nodes now, 2 on 1 after, min_nodes 3; placement fit: 2 of 2 displaced fit, 1 warm nodes; PDB mathoid allows 1 evictions, 2 needed
WARNING wiki/Deployment/spread: would run on fewer nodes than it needs; 3 ready replicas on 3 schedulable nodes now, 1 on 1 after, min_nodes 2; placement fit: 3 of 3 displaced fit, 0 warm nodes
counted as gone already: kubernetes2004 (cordoned)
`,
		},
		{
			// Cordon-first tooling asks about nodes it has cordoned.
			answer: "mathoid-day-two-cordoned-first.json",
			state:  nagios.Critical,
			want: `CRITICAL - taking down kubernetes2001, kubernetes2002 hurts 2 services: mathoid/Deployment/mathoid would have no replica left, mathoid/Service/mathoid would have no replica left | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0
CRITICAL mathoid/Deployment/mathoid: would have no replica left; 0 ready replicas on 0 schedulable nodes now, 0 on 0 after, min_nodes 2; placement fit: 4 of 4 displaced fit, 0 warm nodes; PDB mathoid allows 1 evictions, 4 needed
CRITICAL mathoid/Service/mathoid: would have no replica left; 0 ready replicas on 0 schedulable nodes now, 0 on 0 after, min_nodes 3; placement fit: 4 of 4 displaced fit, 0 warm nodes; PDB mathoid allows 1 evictions, 4 needed
counted as gone already: kubernetes2001 (cordoned)
counted as gone already: kubernetes2002 (cordoned)
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.answer, func(t *testing.T) {
			data, err := os.ReadFile("../../whatif/testdata/" + tc.answer)
			if err != nil {
				t.Fatal(err)
			}
			var answer whatif.Answer
			if err := json.Unmarshal(data, &answer); err != nil {
				t.Fatal(err)
			}
			result := WhatIf(&answer)
			var out strings.Builder
			if err := result.Write(&out); err != nil {
				t.Fatal(err)
			}
			if result.State != tc.state {
				t.Errorf("state = %v, want %v", result.State, tc.state)
			}
			if out.String() != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestWhatIfURL(t *testing.T) {
	tests := []struct{ metrics, want string }{
		{"http://exporter:10217/metrics", "http://exporter:10217/api/v1/whatif?node=a&node=b&selector=maintenance%3Dbatch-3"},
		{"https://host/prefix/kube-spread/metrics", "https://host/prefix/kube-spread/api/v1/whatif?node=a&node=b&selector=maintenance%3Dbatch-3"},
	}
	for _, tc := range tests {
		got, err := WhatIfURL(tc.metrics, []string{"a", "b"}, []string{"maintenance=batch-3"})
		if err != nil || got != tc.want {
			t.Errorf("WhatIfURL(%s) = %s, %v; want %s", tc.metrics, got, err, tc.want)
		}
	}
}

// TestFetchWhatIfErrors: the API's JSON errors reach the operator as one line.
func TestFetchWhatIfErrors(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("node") {
		case "typo":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"unknown nodes: typo"}` + "\n"))
		case "garbage":
			_, _ = w.Write([]byte(`{"nodes": [`))
		}
	}))
	defer server.Close()
	src := Source{URL: server.URL + "/metrics", Timeout: 5 * time.Second}
	_, err := FetchWhatIf(context.Background(), src, []string{"typo"}, nil)
	if want := "get " + server.URL + "/api/v1/whatif?node=typo: HTTP 400 Bad Request: unknown nodes: typo"; err == nil || err.Error() != want {
		t.Errorf("unknown node: err = %v, want %s", err, want)
	}
	_, err = FetchWhatIf(context.Background(), src, []string{"garbage"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "parse what-if answer of "+server.URL+"/api/v1/whatif?node=garbage: ") {
		t.Errorf("truncated JSON: err = %v", err)
	}
}
