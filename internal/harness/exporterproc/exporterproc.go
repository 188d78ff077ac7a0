// Package exporterproc builds the kube-spread-exporter binary and runs it
// as a separate process, the way users run it, for the integration tests
// and the demo. Tests then see exactly what Prometheus would scrape.
package exporterproc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/childproc"
)

// Build compiles ./cmd/kube-spread-exporter of the repository at root into
// dir and returns the binary's path. The Go build cache makes a second
// build of unchanged sources cheap.
func Build(ctx context.Context, root, dir string) (string, error) {
	return BuildCommand(ctx, root, dir, "kube-spread-exporter")
}

// BuildCommand compiles ./cmd/<name> of the repository at root into dir
// and returns the binary's path.
func BuildCommand(ctx context.Context, root, dir, name string) (string, error) {
	binary := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	return binary, nil
}

// Exporter is a running exporter process.
type Exporter struct {
	// URL is the base URL, such as http://127.0.0.1:40123, or https://
	// when it serves TLS.
	URL    string
	proc   *childproc.Process
	client *http.Client
	access Access
}

// Access says how to reach an exporter secured with a --web.config.file:
// the CA that verifies its TLS certificate, and basic auth credentials.
// The zero value is plain HTTP.
type Access struct {
	// WebConfigFile is passed to the exporter as --web.config.file.
	WebConfigFile string
	// CAFile verifies the exporter's certificate; set, the exporter is
	// reached over https.
	CAFile string
	// Username and Password are sent as basic auth when Username is set.
	Username, Password string
	// Env (NAME=value) is added to the exporter's environment, for the
	// Go runtime's settings such as GOGC.
	Env []string
}

// Start runs the binary against the kubeconfig on a free loopback port,
// with the extra flags given, and returns once /healthz answers. It does
// not wait for the caches to sync: see WaitReady.
func Start(ctx context.Context, binary, kubeconfig string, flags ...string) (*Exporter, error) {
	return StartSecured(ctx, binary, kubeconfig, Access{}, flags...)
}

// StartSecured is Start for an exporter behind TLS and basic auth.
func StartSecured(ctx context.Context, binary, kubeconfig string, access Access, flags ...string) (*Exporter, error) {
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	address := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"--kubeconfig=" + kubeconfig, "--web.listen-address=" + address, "--log.level=debug"}, flags...)
	e := &Exporter{URL: "http://" + address, client: http.DefaultClient, access: access}
	if access.WebConfigFile != "" {
		args = append(args, "--web.config.file="+access.WebConfigFile)
	}
	if access.CAFile != "" {
		pem, err := os.ReadFile(access.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", access.CAFile)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: roots}
		e.client = &http.Client{Transport: transport}
		e.URL = "https://" + address
	}
	if e.proc, err = childproc.StartWithEnv("kube-spread-exporter", binary, "", access.Env, args...); err != nil {
		return nil, err
	}
	if err := e.poll(ctx, "/healthz", 30*time.Second); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

// WaitReady waits until /readyz answers 200: every cache has synced.
func (e *Exporter) WaitReady(ctx context.Context) error {
	return e.poll(ctx, "/readyz", 60*time.Second)
}

func (e *Exporter) poll(ctx context.Context, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		select {
		case <-e.proc.Exited():
			return fmt.Errorf("exporter exited while waiting for %s; log:\n%s", path, e.Log())
		default:
		}
		status, body, err := e.Get(ctx, path)
		if err == nil && status == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("status %d %q, err %v", status, body, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s%s: %s; log:\n%s", e.URL, path, last, e.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Get fetches a path and returns the status and body.
func (e *Exporter) Get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	if e.access.Username != "" {
		req.SetBasicAuth(e.access.Username, e.access.Password)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Scrape fetches /metrics and parses it.
func (e *Exporter) Scrape(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	status, body, err := e.Get(ctx, "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("scrape: status %d: %s", status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse scrape: %w", err)
	}
	return families, nil
}

// PID returns the process id of the exporter, for reading its /proc
// figures (memory, CPU) from a benchmark.
func (e *Exporter) PID() int { return e.proc.PID() }

// Log returns what the exporter has logged so far.
func (e *Exporter) Log() string { return e.proc.Output() }

// Stop sends SIGTERM and waits for the exporter to end (SIGKILL after 10s).
func (e *Exporter) Stop() error { return e.proc.Stop() }

// Value returns the value of the sample of family name whose labels include
// all the given pairs, and whether there is one.
func Value(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	family := families[name]
	if family == nil {
		return 0, false
	}
metrics:
	for _, m := range family.GetMetric() {
		have := make(map[string]string, len(m.GetLabel()))
		for _, pair := range m.GetLabel() {
			have[pair.GetName()] = pair.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue metrics
			}
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
