// Package promserver runs a real Prometheus server, built by `make tools`,
// as a child process for the tests: the alert rules' end-to-end test and
// the dashboards' tests load their files into it and read its HTTP API.
package promserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/childproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// Binary returns the path of the prometheus binary: in $KSE_TOOLS_BIN if
// set, else in .cache/bin of the repository holding the working directory.
// A missing binary is an error naming `make tools`.
func Binary() (string, error) { return repo.Tool("prometheus") }

// Server is a running Prometheus.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:40123.
	URL  string
	proc *childproc.Process
}

// Start writes configYAML to dir/prometheus.yml and runs Prometheus on it,
// with its storage in dir/data, on a free loopback port. It returns once
// Prometheus reports ready (the configuration and rule files loaded). Rule
// files named in the configuration should be absolute paths.
func Start(ctx context.Context, dir, configYAML string) (*Server, error) {
	binary, err := Binary()
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(configYAML), 0o644); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	address := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{URL: "http://" + address}
	if s.proc, err = childproc.Start("prometheus", binary, dir,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+address,
		"--log.level=info",
	); err != nil {
		return nil, err
	}
	if err := s.proc.WaitHTTPReady(ctx, s.URL+"/-/ready", time.Minute); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// api fetches an /api/v1 path and decodes the data of a successful answer
// into data.
func (s *Server) api(ctx context.Context, path string, data any) error {
	status, body, err := s.get(ctx, path)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	var answer struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("GET %s: status %d, undecodable answer %q: %w", path, status, body, err)
	}
	if answer.Status != "success" {
		return fmt.Errorf("GET %s: status %d: %s", path, status, answer.Error)
	}
	if err := json.Unmarshal(answer.Data, data); err != nil {
		return fmt.Errorf("GET %s: decode data: %w", path, err)
	}
	return nil
}

// Query evaluates an instant PromQL query now and returns its samples. A
// query whose result is not an instant vector is an error.
func (s *Server) Query(ctx context.Context, query string) (model.Vector, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.api(ctx, "/api/v1/query?query="+url.QueryEscape(query), &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s, want vector", query, data.ResultType)
	}
	var vector model.Vector
	if err := json.Unmarshal(data.Result, &vector); err != nil {
		return nil, fmt.Errorf("query %q: decode result: %w", query, err)
	}
	return vector, nil
}

// Alert is one alert as /api/v1/alerts lists it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// State is "pending" or "firing".
	State    string    `json:"state"`
	ActiveAt time.Time `json:"activeAt"`
	Value    string    `json:"value"`
}

// Alerts returns the pending and firing alerts.
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	if err := s.api(ctx, "/api/v1/alerts", &data); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return data.Alerts, nil
}

// Log returns what Prometheus has logged so far.
func (s *Server) Log() string { return s.proc.Output() }

// Stop sends SIGTERM and waits for Prometheus to end (SIGKILL after 10s).
// It is safe to call more than once.
func (s *Server) Stop() error { return s.proc.Stop() }
