package collector

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// TestAPIServices pins down whole answers of /api/v1/services on the
// mathoid day-two cluster: the filters, the totals over what the names
// select, and the errors.
func TestAPIServices(t *testing.T) {
	synced := &fakeSource{cluster: mathoidDayTwo(), status: syncedStatus, freshness: freshSource}
	const (
		deployment = `{"namespace":"mathoid","kind":"Deployment","name":"mathoid","verdict":"no_replicas_left","severity":"critical","replicas_desired":4,"replicas_ready":4,"replicas_schedulable":0,"nodes":2,"schedulable_nodes":0,"min_nodes":2,"findings":[{"alert":"KubeSpreadNoReplicaSurvivesMaintenance","severity":"critical"}]}`
		service    = `{"namespace":"mathoid","kind":"Service","name":"mathoid","verdict":"no_replicas_left","severity":"critical","replicas_ready":4,"replicas_schedulable":0,"nodes":2,"schedulable_nodes":0,"min_nodes":3,"findings":[{"alert":"KubeSpreadNoReplicaSurvivesMaintenance","severity":"critical"}]}`
		queue      = `{"namespace":"batch","kind":"StatefulSet","name":"queue","verdict":"single_homed","severity":"warning","replicas_desired":2,"replicas_ready":2,"replicas_schedulable":2,"nodes":1,"schedulable_nodes":1,"min_nodes":2,"node":"kubernetes2003","findings":[{"alert":"KubeSpreadSingleHomed","severity":"warning"},{"alert":"KubeSpreadSingleTopologyDomain","severity":"warning","topology_key":"topology.kubernetes.io/zone"}]}`
		idle       = `{"namespace":"batch","kind":"Deployment","name":"idle","verdict":"ok","severity":"none","replicas_desired":0,"replicas_ready":0,"replicas_schedulable":0,"nodes":0,"schedulable_nodes":0,"min_nodes":0,"findings":[]}`
	)
	cases := []struct {
		name       string
		source     *fakeSource
		query      string
		wantStatus int
		wantBody   string
	}{
		{"every service, sorted by namespace, kind, name", synced, "", 200,
			`{"selected":{"services":4,"critical":2,"warning":1,"replicas_ready":10,"replicas_schedulable":2},"services":[` + idle + `,` + queue + `,` + deployment + `,` + service + `]}`},
		{"one service by its names", synced, "?namespace=mathoid&kind=Deployment&name=mathoid", 200,
			`{"selected":{"services":1,"critical":1,"warning":0,"replicas_ready":4,"replicas_schedulable":0},"services":[` + deployment + `]}`},
		{"names are anchored regular expressions", synced, "?namespace=math&name=mat.*", 200,
			`{"selected":{"services":0,"critical":0,"warning":0,"replicas_ready":0,"replicas_schedulable":0},"services":[]}`},
		{"an escaped dot is a literal", synced, `?name=mathoid\.x`, 200,
			`{"selected":{"services":0,"critical":0,"warning":0,"replicas_ready":0,"replicas_schedulable":0},"services":[]}`},
		{"only troubled services listed, totals over all", synced, "?severity=critical,warning", 200,
			`{"selected":{"services":4,"critical":2,"warning":1,"replicas_ready":10,"replicas_schedulable":2},"services":[` + queue + `,` + deployment + `,` + service + `]}`},
		{"by verdict", synced, "?verdict=single_homed&verdict=ok", 200,
			`{"selected":{"services":4,"critical":2,"warning":1,"replicas_ready":10,"replicas_schedulable":2},"services":[` + idle + `,` + queue + `]}`},
		{"unknown parameter", synced, "?node=x", 400, `{"error":"unknown parameters node; allowed: namespace, kind, name, verdict, severity"}`},
		{"bad regular expression", synced, "?name=(", 400, "{\"error\":\"name \\\"(\\\": error parsing regexp: missing closing ): `(?s)^(?:()$`\"}"},
		{"a name given twice", synced, "?name=a&name=b", 400, `{"error":"name given 2 times; join alternatives with |"}`},
		{"bad verdict", synced, "?verdict=bad", 400, `{"error":"verdict \"bad\": want ok, below_min_nodes, single_homed or no_replicas_left"}`},
		{"bad severity", synced, "?severity=info", 400, `{"error":"severity \"info\": want critical, warning or none"}`},
		{"caches not synced", &fakeSource{err: cluster.ErrCacheNotSynced, status: []cluster.ResourceStatus{{Resource: "nodes", Synced: true}, {Resource: "pods"}}}, "", 503,
			`{"error":"informer caches not synced: pods"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.source, Options{Analysis: spread.Options{DefaultMinNodes: 2}}, slog.New(slog.DiscardHandler))
			rec := httptest.NewRecorder()
			NewAPI(c, time.Unix(1530687000, 0), slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathServices+tc.query, nil))
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody+"\n" {
				t.Errorf("GET %s: %d\n%s\nwant %d\n%s", tc.query, rec.Code, rec.Body.String(), tc.wantStatus, tc.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
}

// TestAPIServicesNewlineInName: a name holding a newline (the API server
// accepts one in a label value, and a test cluster can hold anything) is
// selected by the default ".*", as "every service" promises.
func TestAPIServicesNewlineInName(t *testing.T) {
	c := mathoidDayTwo()
	c.Services[0].Name = "math\noid"
	collector := New(&fakeSource{cluster: c, status: syncedStatus}, Options{Analysis: spread.Options{DefaultMinNodes: 2}}, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	NewAPI(collector, time.Time{}, slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathServices+"?namespace=.*&name=.*", nil))
	var answer api.Services
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Selected.Services != 4 {
		t.Errorf("selected %d services, want all 4:\n%s", answer.Selected.Services, rec.Body.String())
	}
}

// TestAPIHealth pins down the health answer: the facts of the source,
// times absent where there are none.
func TestAPIHealth(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	source := &fakeSource{
		cluster: mathoidDayTwo(),
		status: []cluster.ResourceStatus{
			{Resource: "pods", Synced: true, ListWatchErrors: 12, LastUpdate: at(1530688000), ErrorsSince: at(1530687100), LastError: at(1530687900)},
			{Resource: "nodes", Synced: false},
		},
		freshness: cluster.Freshness{Probed: true, APIServerUp: false, Confirmed: at(1530687060)},
	}
	c := New(source, Options{}, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	NewAPI(c, at(1530687000), slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.PathHealth, nil))
	var got api.Health
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body.String())
	}
	if time.Since(got.Time) > time.Minute {
		t.Errorf("time %v is not the exporter's clock now", got.Time)
	}
	got.Time = time.Time{}
	body, _ := json.Marshal(got)
	const want = `{"version":"","time":"0001-01-01T00:00:00Z","started":"2018-07-04T06:50:00Z","api_server_up":false,"confirmed":"2018-07-04T06:51:00Z","list_watch_error_window_seconds":300,` +
		`"caches":[{"resource":"nodes","synced":false,"list_watch_errors":0},` +
		`{"resource":"pods","synced":true,"list_watch_errors":12,"last_update":"2018-07-04T07:06:40Z","list_watch_errors_since":"2018-07-04T06:51:40Z","last_list_watch_error":"2018-07-04T07:05:00Z"}]}`
	if rec.Code != 200 || !bytes.Equal(body, []byte(want)) {
		t.Errorf("GET %s: %d\n%s\nwant\n%s", api.PathHealth, rec.Code, body, want)
	}
}

func TestAPIRejects(t *testing.T) {
	c := New(&fakeSource{cluster: mathoidDayTwo(), status: syncedStatus}, Options{}, slog.New(slog.DiscardHandler))
	handler := NewAPI(c, time.Time{}, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		method, target string
		wantStatus     int
	}{
		{http.MethodPost, api.PathServices, http.StatusMethodNotAllowed},
		{http.MethodGet, api.PathHealth + "?x=1", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/other", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
		if rec.Code != tc.wantStatus {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.target, rec.Code, tc.wantStatus, rec.Body.String())
		}
	}
}
