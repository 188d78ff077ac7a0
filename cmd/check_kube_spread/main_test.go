package main

import (
	"bytes"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func dayTwo(t *testing.T) []byte {
	t.Helper()
	text, err := os.ReadFile("../../collector/testdata/mathoid-day-two.prom")
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// serve answers every request with the handler; the URL ends in /metrics.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL + "/metrics"
}

// metrics serves text at /metrics and 404 elsewhere, as an exporter
// before /api/v1 does: the check falls back to /metrics.
func metrics(text []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(text)
	}
}

// campaignAPI serves the campaign API's golden answers for the questions
// they answer, and its golden errors for a node named twice and a remedy
// search too deep.
func campaignAPI(t *testing.T) http.HandlerFunc {
	t.Helper()
	answers := map[string]string{
		"batch=kubernetes2003%2Ckubernetes2004&batch=kubernetes2001%2Ckubernetes2002&nodes_return=true":                  "campaign.json",
		"batch=kubernetes2003&batch=kubernetes2004&batch=kubernetes2001%2Ckubernetes2002&nodes_return=false":             "campaign-stay-away.json",
		"batch=kubernetes2003&batch=kubernetes2001%2Ckubernetes2003&nodes_return=true":                                   "campaign-node-twice.json",
		"batch=kubernetes2003%2Ckubernetes2004&batch=kubernetes2001%2Ckubernetes2002&nodes_return=true&remedy_batches=0": "campaign-no-remedy-search.json",
		"batch=kubernetes2003&nodes_return=true&remedy_batches=201":                                                      "campaign-remedy-batches-too-many.json",
		"batch=kubernetes2003&nodes_return=true&remedy_batches=-1":                                                       "campaign-remedy-batches-negative.json",
	}
	return func(w http.ResponseWriter, r *http.Request) {
		file, ok := answers[r.URL.RawQuery]
		if r.URL.Path != "/api/v1/whatif/campaign" || !ok {
			t.Errorf("unexpected request %s", r.URL)
			http.NotFound(w, r)
			return
		}
		body, err := os.ReadFile("../../whatif/testdata/" + file)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(file, "twice") || strings.Contains(file, "too-many") || strings.Contains(file, "negative") {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = w.Write(body)
	}
}

func runCheck(args ...string) (int, string) {
	var out bytes.Buffer
	code := run(args, &out)
	return code, out.String()
}

// TestRun pins the exit code and the whole first line for each outcome.
func TestRun(t *testing.T) {
	day2 := serve(t, metrics(dayTwo(t)))
	slow := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	broken := serve(t, metrics([]byte("kube_spread_cache_synced{resource=\"pods\" 1\n")))
	failing := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "exporter on fire", http.StatusInternalServerError)
	})
	notSynced := serve(t, metrics([]byte("kube_spread_cache_synced{resource=\"pods\"} 0\n")))
	// An exporter without the JSON API that takes 300ms per answer: the
	// check's fallback to /metrics needs two, more than -t 500ms allows.
	day2Metrics := metrics(dayTwo(t))
	slowWithoutAPI := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
		if strings.Contains(r.URL.Path, "/api/") {
			http.NotFound(w, r)
			return
		}
		day2Metrics(w, r)
	})
	campaign := serve(t, campaignAPI(t))

	// A listener that accepts and never speaks: the TLS handshake, part of
	// connecting, never ends.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/metrics"
	_ = closed.Close()

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"default command is services", []string{"--url", day2}, 2,
			"CRITICAL - 2 critical, 1 warning of 4 services: mathoid/Deployment/mathoid no replica survives maintenance, mathoid/Service/mathoid no replica survives maintenance, batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=4;;;0 'critical'=2;;0;0;4 'warning'=1;;;0;4 'not_ok'=3;0;;0;4 'replicas_ready'=10;;;0 'replicas_schedulable'=2;;;0"},
		{"services filtered, flags after the command", []string{"services", "--url", day2, "--namespace", "batch"}, 1,
			"WARNING - 0 critical, 1 warning of 2 services: batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=2;;;0 'critical'=0;;0;0;2 'warning'=1;;;0;2 'not_ok'=1;0;;0;2 'replicas_ready'=2;;;0 'replicas_schedulable'=2;;;0"},
		{"warnings switched off", []string{"services", "--url", day2, "--namespace", "batch", "--warning-services", ""}, 0,
			"OK - 0 critical, 1 warning of 2 services: batch/StatefulSet/queue all 2 replicas on node kubernetes2003 | 'services'=2;;;0 'critical'=0;;0;0;2 'warning'=1;;;0;2 'not_ok'=1;;;0;2 'replicas_ready'=2;;;0 'replicas_schedulable'=2;;;0"},
		{"one service", []string{"service", "--url", day2, "--namespace", "mathoid", "--kind", "Deployment", "--name", "mathoid"}, 2,
			"CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=0;;;0 'nodes'=2;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=2;;;0"},
		{"one service that is not published", []string{"service", "--url", day2, "--namespace", "mathoid", "--kind", "Deployment", "--name", "nope"}, 3,
			"UNKNOWN - mathoid/Deployment/nope is not published by the exporter: check the names (kind is one of Service, Deployment, StatefulSet, ReplicaSet, ReplicationController) and the exporter's --namespaces.include"},
		{"bad kind", []string{"service", "--url", day2, "--namespace", "a", "--kind", "Pod", "--name", "b"}, 3,
			"UNKNOWN - bad arguments: enum value must be one of Service,Deployment,StatefulSet,ReplicaSet,ReplicationController, got 'Pod', try --help"},
		{"bad range", []string{"--url", day2, "--critical-services", "2:1"}, 3,
			`UNKNOWN - bad arguments: --warning-services/--critical-services: critical threshold: range "2:1": start 2 is above end 1`},
		{"bad regular expression", []string{"--url", day2, "--name", "("}, 3,
			"UNKNOWN - bad arguments: --name \"(\": error parsing regexp: missing closing ): `(?s)^(?:()$`"},
		{"bad health threshold", []string{"health", "--url", day2, "--warning-stale", "5m"}, 3,
			`UNKNOWN - bad arguments: --warning-stale/--critical-stale: warning threshold: range "5m": "5m" is not a number`},
		{"unknown flag", []string{"--url", day2, "--password", "hunter2"}, 3,
			"UNKNOWN - bad arguments: unknown long flag '--password', try --help"},
		{"bad timeout", []string{"--url", day2, "--timeout", "0s"}, 3,
			"UNKNOWN - bad arguments: --timeout must be positive, got 0s"},
		{"exporter down", []string{"--url", closedURL, "--no-api"}, 3,
			"UNKNOWN - get " + closedURL + ": dial tcp " + strings.TrimSuffix(strings.TrimPrefix(closedURL, "http://"), "/metrics") + ": connect: connection refused"},
		{"exporter down, health is CRITICAL", []string{"health", "--url", closedURL}, 2,
			"CRITICAL - exporter down: get " + strings.TrimSuffix(closedURL, "/metrics") + "/api/v1/health: dial tcp " + strings.TrimSuffix(strings.TrimPrefix(closedURL, "http://"), "/metrics") + ": connect: connection refused"},
		{"HTTP error", []string{"--url", failing, "--no-api"}, 3,
			"UNKNOWN - get " + failing + ": HTTP 500 Internal Server Error: exporter on fire"},
		{"HTTP error, health is CRITICAL", []string{"health", "--url", failing, "--no-api"}, 2,
			"CRITICAL - exporter down: get " + failing + ": HTTP 500 Internal Server Error: exporter on fire"},
		{"unparsable", []string{"--url", broken}, 3,
			"UNKNOWN - parse metrics of " + broken + ": text format parsing error in line 1: unexpected end of label value \"pods\""},
		{"not synced", []string{"--url", notSynced}, 3,
			"UNKNOWN - metrics: exporter caches not synced yet, no figures published (waiting for pods)"},
		{"timeout while reading", []string{"--url", slow, "--timeout", "200ms", "--no-api"}, 3,
			"UNKNOWN - timeout after 200ms during read of " + slow},
		{"services: a filter that matches nothing", []string{"--url", day2, "--namespace", "mathiod", "--kind", "Deployment"}, 3,
			`UNKNOWN - no service matches --namespace="mathiod" --kind="Deployment": the check would judge nothing`},
		{"services: an empty filter (an Icinga variable set to \"\")", []string{"--url", day2, "--namespace", ""}, 3,
			`UNKNOWN - no service matches --namespace="": the check would judge nothing`},
		{"timeout across the fallback to /metrics", []string{"--url", slowWithoutAPI, "--timeout", "500ms"}, 3,
			"UNKNOWN - timeout after 500ms during read of " + slowWithoutAPI},
		{"timeout while connecting", []string{"--url", "https://" + silent.Addr().String() + "/metrics", "-t", "200ms", "--no-api"}, 3,
			"UNKNOWN - timeout after 200ms during connect of https://" + silent.Addr().String() + "/metrics"},
		{"campaign: the replay's two days", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003,kubernetes2004", "--batch", "kubernetes2001,kubernetes2002"}, 2,
			"CRITICAL - mathoid/Deployment/mathoid would have no replica left: batch 1 moves all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 2 takes them down; remedy: restarting mathoid/Deployment/mathoid after batch 1 makes every batch safe | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0 'first_unsafe_batch'=2;;;0"},
		{"campaign: nodes kept away", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003", "--batch", "kubernetes2004", "--batch", "kubernetes2001,kubernetes2002", "--no-nodes-return"}, 2,
			"CRITICAL - mathoid/Deployment/mathoid would have no replica left: batches 1–2 move all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 3 takes them down; remedy: letting the nodes of each batch return after it and restarting mathoid/Deployment/mathoid after batch 2 makes every batch safe | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0 'first_unsafe_batch'=3;;;0"},
		{"campaign: a node in two batches", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003", "--batch", "kubernetes2001,kubernetes2003"}, 3,
			"UNKNOWN - get " + strings.TrimSuffix(campaign, "/metrics") + "/api/v1/whatif/campaign?batch=kubernetes2003&batch=kubernetes2001%2Ckubernetes2003&nodes_return=true: HTTP 400 Bad Request: node kubernetes2003 is in batches 1 and 2: a campaign takes each node once"},
		{"campaign: no remedy search asked", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003,kubernetes2004", "--batch", "kubernetes2001,kubernetes2002", "--remedy-batches", "0"}, 2,
			"CRITICAL - mathoid/Deployment/mathoid would have no replica left: batch 1 moves all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 2 takes them down; no remedy: no remedy searched: the question asked for none (remedy_batches 0) | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0 'first_unsafe_batch'=2;;;0"},
		// -1 is no "default": the bound asked for goes to the exporter,
		// which refuses it, and the check says so.
		{"campaign: a negative remedy search", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003", "--remedy-batches=-1"}, 3,
			"UNKNOWN - get " + strings.TrimSuffix(campaign, "/metrics") + "/api/v1/whatif/campaign?batch=kubernetes2003&nodes_return=true&remedy_batches=-1: HTTP 400 Bad Request: remedy_batches -1: a whole number from 0 to 200"},
		{"campaign: a remedy search too deep", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003", "--remedy-batches", "201"}, 3,
			"UNKNOWN - get " + strings.TrimSuffix(campaign, "/metrics") + "/api/v1/whatif/campaign?batch=kubernetes2003&nodes_return=true&remedy_batches=201: HTTP 400 Bad Request: remedy_batches 201: a whole number from 0 to 200"},
		{"campaign without a batch", []string{"campaign", "--url", campaign}, 3,
			"UNKNOWN - bad arguments: campaign needs --batch (repeat it for each batch)"},
		{"campaign with an empty batch", []string{"campaign", "--url", campaign, "--batch", "kubernetes2003", "--batch", " , "}, 3,
			"UNKNOWN - bad arguments: --batch 2 is empty"},
		{"health", []string{"health", "--url", day2, "--warning-list-watch-errors", "1"}, 1,
			"WARNING - kube-spread-exporter: 2 of 2 caches synced, confirmed fresh "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCheck(tc.args...)
			first, _, _ := strings.Cut(out, "\n")
			// The health line holds an age that grows with the clock: only
			// its stable start is compared.
			if tc.name == "health" {
				first = first[:min(len(first), len(tc.want))]
			}
			if code != tc.code || first != tc.want {
				t.Errorf("exit %d, first line:\n%s\nwant exit %d:\n%s", code, first, tc.code, tc.want)
			}
		})
	}
}

func TestHelpIsUnknown(t *testing.T) {
	code, out := runCheck("--help")
	if code != 3 || !strings.HasPrefix(out, "usage: check_kube_spread") {
		t.Errorf("--help: exit %d, output %q; want exit 3 and the usage", code, out)
	}
}

// TestTLSAndBasicAuth: the check verifies the server with --tls.ca-file
// and sends the password read from a file.
func TestTLSAndBasicAuth(t *testing.T) {
	text := dayTwo(t)
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, password, ok := r.BasicAuth(); !ok || user != "icinga" || password != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		metrics(text)(w, r)
	}))
	t.Cleanup(s.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	passwordFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passwordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := s.URL + "/metrics"
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"verified, authenticated", []string{"--url", url, "--tls.ca-file", ca, "--basic-auth.username", "icinga", "--basic-auth.password-file", passwordFile}, 2, "CRITICAL - 2 critical, 1 warning of 4 services"},
		{"wrong user", []string{"--url", url, "--tls.ca-file", ca, "--basic-auth.username", "nagios", "--basic-auth.password-file", passwordFile, "--no-api"}, 3, "UNKNOWN - get " + url + ": HTTP 401 Unauthorized: unauthorized"},
		{"wrong user, through the API", []string{"service", "--url", url, "--tls.ca-file", ca, "--basic-auth.username", "nagios", "--basic-auth.password-file", passwordFile, "--namespace=a", "--kind=Service", "--name=b"}, 3,
			"UNKNOWN - get " + s.URL + "/api/v1/services?kind=Service&name=b&namespace=a: HTTP 401 Unauthorized: unauthorized"},
		{"unverified", []string{"--url", url, "--basic-auth.username", "icinga", "--basic-auth.password-file", passwordFile, "--no-api"}, 3, "UNKNOWN - get " + url + ": tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"unverified health is UNKNOWN, not CRITICAL", []string{"health", "--url", url, "--basic-auth.username", "icinga", "--basic-auth.password-file", passwordFile}, 3,
			"UNKNOWN - get " + s.URL + "/api/v1/health: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"verification off", []string{"--url", url, "--tls.insecure-skip-verify", "--basic-auth.username", "icinga", "--basic-auth.password-file", passwordFile}, 2, "CRITICAL - 2 critical, 1 warning of 4 services"},
		{"user without password file", []string{"--url", url, "--tls.ca-file", ca, "--basic-auth.username", "icinga"}, 3, "UNKNOWN - --basic-auth.username needs --basic-auth.password-file"},
		{"missing CA file", []string{"--url", url, "--tls.ca-file", filepath.Join(dir, "none.pem")}, 3, "UNKNOWN - --tls.ca-file: open " + filepath.Join(dir, "none.pem") + ": no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCheck(tc.args...)
			first, _, _ := strings.Cut(out, "\n")
			// The CRITICAL lines are TestRun's; here their start proves
			// the metrics were read.
			if strings.HasPrefix(tc.want, "CRITICAL") {
				first = first[:min(len(first), len(tc.want))]
			}
			if code != tc.code || first != tc.want {
				t.Errorf("exit %d, first line:\n%s\nwant exit %d:\n%s", code, first, tc.code, tc.want)
			}
		})
	}
}
