package scale

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/admission"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/childproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// AdmissionTableHeader is the header of the admission webhook's latency
// table of docs/benchmarks.md.
const AdmissionTableHeader = "| commit | nodes | pods | services | requests | quiet p50 / p99 | after a change p50 / p99 | exporter CPU per request (quiet) | not judged |\n" +
	"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

// AdmissionRow is the webhook's latency as a row of that table; "—" for
// an exporter without the webhook (an older commit).
func (r *Result) AdmissionRow() string {
	if r.AdmissionRequests == 0 {
		return fmt.Sprintf("| %s | %d | %d | %d | — | — | — | — | — |", r.Commit, r.Size.Nodes, r.Size.Pods, r.Size.Services)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("| %s | %d | %d | %d | %d + %d | %s / %s ms | %s / %s ms | %s ms | %d |",
		r.Commit, r.Size.Nodes, r.Size.Pods, r.Size.Services, r.AdmissionRequests, r.AdmissionChangedRequests,
		ms(r.AdmissionP50), ms(r.AdmissionP99), ms(r.AdmissionChangedP50), ms(r.AdmissionChangedP99), ms(r.AdmissionCPU), r.AdmissionNotJudged)
}

// webhook is the admission webhook's listener of the exporters a run
// measures: a port, a web configuration with a certificate from the
// control plane's CA, and a client that trusts it, as the API server does.
type webhook struct {
	port      int
	webConfig string
	client    *http.Client
}

func newWebhook(cp *controlplane.ControlPlane, dir string) (*webhook, error) {
	certFile, keyFile, caFile, err := cp.IssueServingCert("admission-webhook")
	if err != nil {
		return nil, err
	}
	w := &webhook{webConfig: filepath.Join(dir, "admission-web-config.yml")}
	config := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile)
	if err := os.WriteFile(w.webConfig, []byte(config), 0o600); err != nil {
		return nil, err
	}
	if w.port, err = childproc.FreePort(); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	// HTTP/2 over TLS, as the API server calls webhooks.
	w.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	return w, nil
}

// flags are the exporter's flags that turn the webhook on, none when the
// binary has no webhook (a commit before it).
func (w *webhook) flags(ctx context.Context, binary string) ([]string, error) {
	help, err := exec.CommandContext(ctx, binary, "--help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --help: %w", binary, err)
	}
	if !strings.Contains(string(help), "--admission.listen-address") {
		return nil, nil
	}
	return []string{"--admission.listen-address=127.0.0.1:" + strconv.Itoa(w.port), "--admission.web.config.file=" + w.webConfig}, nil
}

// measureAdmission times the webhook's answer to cordons, as the API
// server asks for them: an AdmissionReview of a Node UPDATE setting
// spec.unschedulable, POSTed over TLS with the shipped timeout (3s), from
// the request to the last byte. runs cordons of nodes spread over the
// cluster on a quiet cluster (the what-if shares one snapshot and
// analysis while the caches do not change), after one untimed; then
// changed cordons each after a pod flipped its readiness and changeSettle
// (not timed): what every cordon of a busy cluster costs. The webhook
// judges those on its kept snapshot, at most whatif.MaxStaleness old,
// while it takes a new one in the background, which competes for the CPU;
// a cordon that finds its snapshot older than that waits for a new one,
// which this does not time (BenchmarkAskNodes/snapshot is that cost). Every answer must admit the cordon; the
// requests the webhook could not judge in time are counted.
func (r *Result) measureAdmission(ctx context.Context, w *webhook, e *exporterproc.Exporter, client kubernetes.Interface, c *synth.Cluster, runs, changed int, workers int, logf func(string, ...any)) error {
	if runs < 1 || w == nil {
		return nil
	}
	nodes := make([]*corev1.Node, runs+changed+1)
	for i := range nodes {
		name := synth.NodeName(i * len(c.Nodes) / len(nodes))
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("admission: %w", err)
		}
		nodes[i] = node
	}
	url := "https://127.0.0.1:" + strconv.Itoa(w.port) + admission.PathNodes + "?timeout=3s"
	ask := func(node *corev1.Node) (time.Duration, error) {
		body, err := cordonReview(node)
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		began := time.Now()
		resp, err := w.client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("admission review of %s: %w", node.Name, err)
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		took := time.Since(began)
		if err != nil {
			return 0, fmt.Errorf("admission review of %s: %w", node.Name, err)
		}
		var review admissionv1.AdmissionReview
		if resp.StatusCode != http.StatusOK || json.Unmarshal(answer, &review) != nil || review.Response == nil || !review.Response.Allowed {
			return 0, fmt.Errorf("admission review of %s: status %s: %.300s", node.Name, resp.Status, answer)
		}
		return took, nil
	}
	notJudged := func() (float64, error) {
		metrics, err := e.Scrape(ctx)
		if err != nil {
			return 0, err
		}
		v, _ := exporterproc.Value(metrics, "kube_spread_admission_requests_total", map[string]string{"result": "not_judged"})
		return v, nil
	}
	judgedBefore, err := notJudged()
	if err != nil {
		return err
	}
	if _, err := ask(nodes[0]); err != nil {
		return err
	}
	cpuBefore, err := cpuTime(e.PID())
	if err != nil {
		return err
	}
	var quiet []time.Duration
	for _, node := range nodes[1 : runs+1] {
		took, err := ask(node)
		if err != nil {
			return err
		}
		quiet = append(quiet, took)
	}
	cpuAfter, err := cpuTime(e.PID())
	if err != nil {
		return err
	}
	ch := newChurner(client, c)
	var afterChange []time.Duration
	for _, node := range nodes[runs+1:] {
		pod, ready := ch.next()
		if err := setPodReady(ctx, client, pod, ready); err != nil {
			return fmt.Errorf("change before an admission review: %w", err)
		}
		time.Sleep(changeSettle)
		took, err := ask(node)
		if err != nil {
			return err
		}
		afterChange = append(afterChange, took)
	}
	judgedAfter, err := notJudged()
	if err != nil {
		return err
	}
	r.AdmissionRequests, r.AdmissionChangedRequests = len(quiet), len(afterChange)
	r.AdmissionP50, r.AdmissionP99 = percentile(quiet, 50), percentile(quiet, 99)
	r.AdmissionChangedP50, r.AdmissionChangedP99 = percentile(afterChange, 50), percentile(afterChange, 99)
	r.AdmissionCPU = (cpuAfter - cpuBefore) / time.Duration(len(quiet))
	r.AdmissionNotJudged = int(judgedAfter - judgedBefore)
	logf("admission: %d cordons p50 %s p99 %s, %d after a change p50 %s p99 %s, exporter CPU %s per cordon, %d not judged",
		len(quiet), r.AdmissionP50, r.AdmissionP99, len(afterChange), r.AdmissionChangedP50, r.AdmissionChangedP99, r.AdmissionCPU, r.AdmissionNotJudged)
	return ch.restore(ctx, workers)
}

// cordonReview is the AdmissionReview the API server sends for `kubectl
// cordon --dry-run=server` of node: judged as the cordon itself, and not
// remembered as a change pending in the exporter's caches (no node is
// cordoned in the API), so each review is judged alone.
func cordonReview(node *corev1.Node) ([]byte, error) {
	cordoned := node.DeepCopy()
	cordoned.Spec.Unschedulable = true
	raw := func(n *corev1.Node) (runtime.RawExtension, error) {
		n = n.DeepCopy()
		n.APIVersion, n.Kind = "v1", "Node"
		body, err := json.Marshal(n)
		return runtime.RawExtension{Raw: body}, err
	}
	object, err := raw(cordoned)
	if err != nil {
		return nil, err
	}
	old, err := raw(node)
	if err != nil {
		return nil, err
	}
	kind := metav1.GroupVersionKind{Version: "v1", Kind: "Node"}
	return json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(fmt.Sprintf("scale-%s-%d", node.Name, time.Now().UnixNano())), Kind: kind, RequestKind: &kind,
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "nodes"}, Name: node.Name, Operation: admissionv1.Update,
			UserInfo: authenticationv1.UserInfo{Username: "kse-scale"}, Object: object, OldObject: old, DryRun: new(true),
		},
	})
}
