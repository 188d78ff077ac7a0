package cluster

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRequestErrorsCountFailedListsAndWatches(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/apis/discovery.k8s.io/v1/endpointslices":
			http.Error(w, "forbidden", http.StatusForbidden)
		case "/api/v1/pods":
			http.Error(w, "too old resource version", http.StatusGone)
		}
	}))
	var log bytes.Buffer
	errs := NewRequestErrors(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo})))
	client := &http.Client{Transport: errs.WrapTransport(http.DefaultTransport)}
	get := func(path string) {
		resp, err := client.Get(server.URL + path)
		if err == nil {
			resp.Body.Close()
		}
	}

	get("/apis/discovery.k8s.io/v1/endpointslices?limit=500")
	get("/apis/discovery.k8s.io/v1/endpointslices?watch=true")
	get("/api/v1/nodes?watch=true")
	get("/api/v1/pods?watch=true")             // 410: a relist, not a failure
	get("/api/v1/namespaces/default/pods/web") // not a collection: not counted
	server.Close()
	get("/api/v1/nodes?watch=true") // connection refused

	for resource, want := range map[string]uint64{"endpointslices": 2, "nodes": 1, "pods": 0} {
		if got := errs.Count(resource); got != want {
			t.Errorf("%s: %d errors, want %d", resource, got, want)
		}
	}
	// One warning per failure streak, not one per retry.
	if got := strings.Count(log.String(), `msg="list/watch failed" resource=endpointslices`); got != 1 {
		t.Errorf("endpointslices failure logged %d times, want once:\n%s", got, log.String())
	}
	if !strings.Contains(log.String(), `msg="list/watch failed" resource=nodes err=`) || !strings.Contains(log.String(), "connection refused") {
		t.Errorf("connection refused not logged:\n%s", log.String())
	}
}

func TestCollectionResource(t *testing.T) {
	tests := map[string]string{
		"GET /api/v1/nodes":                               "nodes",
		"GET /apis/apps/v1/replicasets":                   "replicasets",
		"GET /apis/discovery.k8s.io/v1/endpointslices":    "endpointslices",
		"GET /api/v1/namespaces/ns/pods":                  "",
		"GET /readyz":                                     "",
		"GET /apis/apps/v1":                               "",
		"POST /api/v1/nodes":                              "",
		"GET /apis/apps/v1/namespaces/ns/deployments/web": "",
	}
	for request, want := range tests {
		method, path, _ := strings.Cut(request, " ")
		req := httptest.NewRequest(method, path, nil)
		if got := collectionResource(req); got != want {
			t.Errorf("%s: %q, want %q", request, got, want)
		}
	}
}

// TestErrorStreak pins down when a streak of errors begins: errors closer
// than ListWatchErrorWindow extend it, a longer pause starts a new one,
// as rate(...[5m]) > 0 of the KubeSpreadListWatchErrors alert holds
// without a break only while errors come less than 5m apart.
func TestErrorStreak(t *testing.T) {
	t0 := time.Date(2018, 7, 4, 7, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cases := []struct {
		name      string
		errors    []time.Duration
		wantSince time.Time
		wantLast  time.Time
	}{
		{"no error", nil, time.Time{}, time.Time{}},
		{"one error", []time.Duration{0}, at(0), at(0)},
		{"errors a minute apart are one streak", []time.Duration{0, time.Minute, 2 * time.Minute, 6 * time.Minute}, at(0), at(6 * time.Minute)},
		{"a pause of the window starts a new streak", []time.Duration{0, time.Minute, 6 * time.Minute}, at(6 * time.Minute), at(6 * time.Minute)},
		{"just under the window is the same streak", []time.Duration{0, ListWatchErrorWindow - time.Second}, at(0), at(ListWatchErrorWindow - time.Second)},
		{"an error recorded late does not move the last one back", []time.Duration{time.Minute, 30 * time.Second}, at(time.Minute), at(time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s ErrorStreak
			for _, d := range tc.errors {
				s.Record(at(d))
			}
			since, last := s.Streak()
			if !since.Equal(tc.wantSince) || !last.Equal(tc.wantLast) {
				t.Errorf("Streak() = %v, %v; want %v, %v", since, last, tc.wantSince, tc.wantLast)
			}
		})
	}
}
