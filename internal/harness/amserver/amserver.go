// Package amserver runs a real Alertmanager, built by `make tools`, as a
// child process for the paging test and the demo, and receives what it
// sends: a Webhook is the receiver at the end of the route, an HTTP server
// on loopback that records every notification.
package amserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/childproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// Binary returns the path of a binary `make tools` builds from
// tools/alertmanager ("alertmanager" or "amtool"): in $KSE_TOOLS_BIN if
// set, else in .cache/bin of the repository holding the working directory.
// A missing binary is an error naming `make tools`.
func Binary(name string) (string, error) { return repo.Tool(name) }

// Server is a running Alertmanager.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:40123.
	URL  string
	proc *childproc.Process
}

// Start writes configYAML to dir/alertmanager.yml and runs Alertmanager on
// it, with its storage in dir/data, on a free loopback port and without
// clustering (no gossip port). It returns once Alertmanager reports ready.
func Start(ctx context.Context, dir, configYAML string) (*Server, error) {
	binary, err := Binary("alertmanager")
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(config, []byte(configYAML), 0o644); err != nil {
		return nil, fmt.Errorf("write alertmanager config: %w", err)
	}
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	address := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{URL: "http://" + address}
	if s.proc, err = childproc.Start("alertmanager", binary, dir,
		"--config.file="+config,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+address,
		// An empty address turns off the gossip of an Alertmanager
		// cluster, which would bind a fixed port and wait for peers.
		"--cluster.listen-address=",
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

// Address is host:port, as a Prometheus alerting configuration names it.
func (s *Server) Address() string { return s.URL[len("http://"):] }

// Log returns what Alertmanager has logged so far.
func (s *Server) Log() string { return s.proc.Output() }

// Stop sends SIGTERM and waits for Alertmanager to end (SIGKILL after 10s).
// It is safe to call more than once.
func (s *Server) Stop() error { return s.proc.Stop() }

// Notification is one webhook notification as Alertmanager posts it
// (version 4 of its webhook payload): one group of alerts.
type Notification struct {
	// Receiver is the name of the receiver in the configuration.
	Receiver string `json:"receiver"`
	// Status is "firing" when any alert of the group fires, else "resolved".
	Status string `json:"status"`
	// GroupKey identifies the group: the route and the group_by labels.
	GroupKey          string            `json:"groupKey"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	Alerts            []NotifiedAlert   `json:"alerts"`

	// Path is the path of the request, which tells receivers sharing one
	// webhook apart; Received is when it arrived; Body is the payload as
	// it came. None is a field of the payload.
	Path     string    `json:"-"`
	Received time.Time `json:"-"`
	Body     []byte    `json:"-"`
}

// NotifiedAlert is one alert of a notification.
type NotifiedAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// Webhook records the notifications posted to it. Serve it with an
// httptest.Server or any http.Server on loopback.
type Webhook struct {
	received chan Notification
	// Errors receives what the handler could not decode.
	Errors chan error
}

// NewWebhook returns a webhook that buffers up to 1000 notifications.
func NewWebhook() *Webhook {
	return &Webhook{received: make(chan Notification, 1000), Errors: make(chan error, 100)}
}

// ServeHTTP decodes a notification and records it.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var n Notification
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &n)
	}
	if err != nil {
		select {
		case w.Errors <- fmt.Errorf("decode notification to %s: %w", r.URL.Path, err):
		default:
		}
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	n.Path, n.Received, n.Body = r.URL.Path, time.Now(), body
	select {
	case w.received <- n:
	default:
		// A test that lets a thousand notifications pile up has failed
		// long before; dropping keeps Alertmanager from blocking.
	}
	rw.WriteHeader(http.StatusOK)
}

// Received returns the channel of notifications, in arrival order.
func (w *Webhook) Received() <-chan Notification { return w.received }

// Timers are the route timers a test sets on every route that has them,
// so that a notification comes in seconds instead of minutes. A zero field
// leaves that timer as the configuration has it.
type Timers struct {
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// Rewire returns the Alertmanager configuration with every webhook URL
// replaced by webhookBase + "/" + the receiver's name, and every
// group_wait, group_interval and repeat_interval (of the root route and of
// the routes under it that set one) replaced by the timers that are not
// zero. Routing,
// grouping and inhibition stay exactly as written: the tests exercise the
// shipped example, only faster and delivered to them.
func Rewire(config []byte, webhookBase string, timers Timers) (string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return "", fmt.Errorf("parse alertmanager config: %w", err)
	}
	receivers, _ := doc["receivers"].([]any)
	webhooks := 0
	for _, r := range receivers {
		receiver, _ := r.(map[string]any)
		configs, _ := receiver["webhook_configs"].([]any)
		for _, c := range configs {
			c.(map[string]any)["url"] = fmt.Sprintf("%s/%s", webhookBase, receiver["name"])
			webhooks++
		}
	}
	if webhooks == 0 {
		return "", fmt.Errorf("alertmanager config: no webhook receiver to rewire")
	}
	route, ok := doc["route"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("alertmanager config: no route")
	}
	setTimers(route, timers, true)
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("encode alertmanager config: %w", err)
	}
	return string(out), nil
}

func setTimers(route map[string]any, timers Timers, root bool) {
	for key, value := range map[string]time.Duration{
		"group_wait": timers.GroupWait, "group_interval": timers.GroupInterval, "repeat_interval": timers.RepeatInterval,
	} {
		if value == 0 {
			continue
		}
		// A child route without a timer inherits its parent's.
		if _, set := route[key]; set || root {
			route[key] = model.Duration(value).String()
		}
	}
	children, _ := route["routes"].([]any)
	for _, c := range children {
		if child, ok := c.(map[string]any); ok {
			setTimers(child, timers, false)
		}
	}
}
