// Package check is the logic of the check_kube_spread plugin: it reads a
// kube-spread-exporter's /metrics, rebuilds the exporter's spread.Report
// from the series, and turns spread.Report.Findings into a monitoring
// plugin result. The verdict is never computed a second time here:
// Findings is what the alert rules implement in PromQL, so a page from
// Icinga and an alert from Alertmanager name the same services at the same
// severity.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxBodyBytes bounds what the check reads: far above the exposition of a
// 150,000-pod cluster, far below what would hurt a monitoring host.
const maxBodyBytes = 512 << 20

// Source says where and how to read the exporter.
type Source struct {
	// URL of the exporter's metrics, e.g. https://exporter:10217/metrics.
	URL string
	// CAFile verifies the server; empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate, both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// Username and PasswordFile are HTTP basic auth. The password is read
	// from a file: on a command line every local user sees it in ps.
	Username, PasswordFile string
	// Timeout bounds the whole exchange: connect, read and parse.
	Timeout time.Duration
}

// Scrape is what the exporter answered.
type Scrape struct {
	Families map[string]*dto.MetricFamily
	// Time is the exporter's clock when it answered (the Date header), so
	// ages are measured against its clock, not the monitoring host's.
	Time time.Time
}

// stage names the part of the exchange that was running when the timeout
// hit: the one line an operator needs to know where to look.
type stage int32

const (
	stageConnect stage = iota // DNS, TCP and TLS handshake
	stageRead                 // waiting for and reading the response
	stageParse                // parsing the exposition
)

func (s stage) String() string {
	return [...]string{"connect", "read", "parse"}[s]
}

// Fetch reads and parses the exporter's metrics. Every error is one line
// that names the URL and, for timeouts, the stage.
func Fetch(ctx context.Context, src Source) (*Scrape, error) {
	// The text format is the one every exporter serves and expfmt parses.
	families, at, err := exchange(ctx, src, src.URL, string(expfmt.NewFormat(expfmt.TypeTextPlain)), "metrics", ParseText)
	if err != nil {
		return nil, err
	}
	return &Scrape{Families: families, Time: at}, nil
}

// exchange GETs target within src.Timeout and parses the body (what it
// holds, for errors) with parse, under the same deadline. It returns the parsed value and the exporter's
// clock (the Date header). Every error is one line that names the URL and,
// for timeouts, the stage.
func exchange[T any](ctx context.Context, src Source, target, accept, what string, parse func([]byte) (T, error)) (T, time.Time, error) {
	var zero T
	client, err := src.client()
	if err != nil {
		return zero, time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()

	var current atomic.Int32 // a stage; the transport moves it along
	timeout := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return fmt.Errorf("timeout after %s during %s of %s", src.Timeout, stage(current.Load()), target)
		}
		return nil
	}
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { current.Store(int32(stageRead)) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, target, nil)
	if err != nil {
		return zero, time.Time{}, fmt.Errorf("--url %q: %w", target, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "check_kube_spread")
	if src.Username != "" {
		password, err := readPassword(src.PasswordFile)
		if err != nil {
			return zero, time.Time{}, err
		}
		req.SetBasicAuth(src.Username, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		if t := timeout(err); t != nil {
			return zero, time.Time{}, &UnreachableError{t}
		}
		err = unwrapURLError(err)
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			// Refused, no route, no such host: nothing answers there.
			// TLS and HTTP failures are not this: something answered.
			return zero, time.Time{}, &UnreachableError{fmt.Errorf("get %s: %w", target, err)}
		}
		return zero, time.Time{}, fmt.Errorf("get %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return zero, time.Time{}, &HTTPError{URL: target, Status: resp.Status, Code: resp.StatusCode, Text: errorText(snippet)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		if t := timeout(err); t != nil {
			return zero, time.Time{}, &UnreachableError{t}
		}
		return zero, time.Time{}, fmt.Errorf("read %s: %w", target, err)
	}
	if len(body) > maxBodyBytes {
		return zero, time.Time{}, fmt.Errorf("read %s: response larger than %d MiB", target, maxBodyBytes>>20)
	}

	current.Store(int32(stageParse))
	// Parsing takes no context; it runs aside so the deadline still holds.
	type parsed struct {
		value T
		err   error
	}
	done := make(chan parsed, 1)
	go func() {
		value, err := parse(body)
		done <- parsed{value, err}
	}()
	select {
	case <-ctx.Done():
		return zero, time.Time{}, &UnreachableError{timeout(ctx.Err())}
	case p := <-done:
		if p.err != nil {
			return zero, time.Time{}, fmt.Errorf("parse %s of %s: %w", what, target, p.err)
		}
		at := time.Now()
		if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			at = date
		}
		return p.value, at, nil
	}
}

// HTTPError is an answer other than 200 OK.
type HTTPError struct {
	URL, Status string
	Code        int
	// Text is the exporter's error message, or the body's start.
	Text string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("get %s: HTTP %s: %s", e.URL, e.Status, e.Text)
}

// UnreachableError is a failure to reach the exporter at all: nothing
// listens, the address does not resolve, or nothing answered in time. The
// health check reports it as CRITICAL (the exporter is what it watches);
// the others as UNKNOWN (they cannot judge a service without it).
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// errorText is the one-line text of an error response: the "error" field
// of the exporter's JSON errors, else the body with its spaces folded.
func errorText(body []byte) string {
	var apiError struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &apiError) == nil && apiError.Error != "" {
		return apiError.Error
	}
	return strings.Join(strings.Fields(string(body)), " ")
}

// ParseText parses an exposition in the Prometheus text format.
func ParseText(body []byte) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	return families, nil
}

func (src Source) client() (*http.Client, error) {
	config := &tls.Config{InsecureSkipVerify: src.InsecureSkipVerify} //nolint:gosec // the user asked for it by flag
	if src.CAFile != "" {
		pem, err := os.ReadFile(src.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls.ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls.ca-file %s: no PEM certificate in it", src.CAFile)
		}
		config.RootCAs = pool
	}
	if (src.CertFile == "") != (src.KeyFile == "") {
		return nil, errors.New("--tls.cert-file and --tls.key-file go together")
	}
	if src.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(src.CertFile, src.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	if src.PasswordFile != "" && src.Username == "" {
		return nil, errors.New("--basic-auth.password-file needs --basic-auth.username")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = config
	// A check runs once and exits: no proxy surprises from the monitoring
	// host's environment beyond the standard variables, no idle pool.
	transport.DisableKeepAlives = true
	return &http.Client{Transport: transport}, nil
}

// readPassword reads the basic auth password; a trailing newline, which
// every editor adds, is not part of it.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", errors.New("--basic-auth.username needs --basic-auth.password-file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--basic-auth.password-file: %w", err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// unwrapURLError drops the "Get \"url\":" prefix of *url.Error: the
// message already names the URL once.
func unwrapURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}
