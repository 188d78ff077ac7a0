// Package webhook tests the admission webhook as operators meet it: a
// real kube-apiserver configured with the ValidatingWebhookConfiguration
// shipped in deploy/components/admission (its clientConfig pointed at the
// exporter on loopback), the exporter built and run with the shipped web
// configuration and a certificate from the control plane's CA, and the
// real kubectl, whose standard error shows the warnings.
package webhook

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/admission"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/childproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

var (
	cp *controlplane.ControlPlane
	// webhookPort is where every exporter of the package serves the
	// webhook, one after the other: the API server was configured with it
	// before any exporter started.
	webhookPort int
)

const (
	componentDir = "deploy/components/admission"
	// timeoutSeconds is the shipped webhook's; TestMain checks it.
	timeoutSeconds = 3
)

func TestMain(m *testing.M) {
	config, err := setUp()
	if err != nil {
		fmt.Fprintf(os.Stderr, "admission: %v\n", err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTestsWith(m, &cp, controlplane.Options{ValidatingWebhooks: []admissionregistrationv1.ValidatingWebhookConfiguration{*config}}))
}

// setUp picks the webhook's port and returns the shipped configuration
// with its clientConfig pointed at it; the control plane fills in the CA.
func setUp() (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	var err error
	if webhookPort, err = childproc.FreePort(); err != nil {
		return nil, err
	}
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, componentDir, "validatingwebhookconfiguration.yaml"))
	if err != nil {
		return nil, err
	}
	var config admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &config); err != nil {
		return nil, fmt.Errorf("%s: %w", componentDir, err)
	}
	for i := range config.Webhooks {
		hook := &config.Webhooks[i]
		if hook.ClientConfig.Service == nil || hook.ClientConfig.Service.Path == nil || *hook.ClientConfig.Service.Path != admission.PathNodes {
			return nil, fmt.Errorf("%s: webhook %s does not call %s of a Service", componentDir, hook.Name, admission.PathNodes)
		}
		if hook.TimeoutSeconds == nil || *hook.TimeoutSeconds != timeoutSeconds {
			return nil, fmt.Errorf("%s: webhook %s: timeoutSeconds %v, the tests expect %d", componentDir, hook.Name, hook.TimeoutSeconds, timeoutSeconds)
		}
		url := "https://127.0.0.1:" + strconv.Itoa(webhookPort) + *hook.ClientConfig.Service.Path
		hook.ClientConfig.Service, hook.ClientConfig.URL = nil, &url
	}
	return &config, nil
}

// startExporter runs the exporter with the webhook on webhookPort, in
// mode, and waits for its caches; it stops when the test ends. The
// webhook's directory is laid out as the component's projected volume:
// the shipped web-config.yml next to tls.crt and tls.key.
func startExporter(t *testing.T, mode admission.Mode) *exporterproc.Exporter {
	t.Helper()
	root := repo.RootForTest(t)
	data, err := os.ReadFile(filepath.Join(root, componentDir, "web-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var configMap corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &configMap); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, _, err := cp.IssueServingCert("admission-webhook")
	if err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string][]byte{"web-config.yml": []byte(configMap.Data["web-config.yml"]), "tls.crt": readFile(t, certFile), "tls.key": readFile(t, keyFile)} {
		if err := os.WriteFile(filepath.Join(dir, file), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return exporterproc.ForTest(t, cp.Kubeconfig,
		"--admission.listen-address=127.0.0.1:"+strconv.Itoa(webhookPort),
		"--admission.web.config.file="+filepath.Join(dir, "web-config.yml"),
		"--admission.mode="+string(mode))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// run is one kubectl command and what came of it.
type run struct {
	args           []string
	stdout, stderr string
	exitCode       int
	took           time.Duration
}

// kubectl runs the real kubectl as the control plane's admin. A missing
// kubectl fails the test: it is what the operator types.
func kubectl(t *testing.T, args ...string) run {
	t.Helper()
	path := filepath.Join(cp.BinDir, "kubectl")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("kubectl not found at %s (run `make tools`): %v", path, err)
	}
	cmd := exec.Command(path, append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	r := run{args: args, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(began)}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		r.exitCode = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// warnings are the lines kubectl printed as warnings, without "Warning: ".
func (r run) warnings() []string {
	var out []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if w, ok := strings.CutPrefix(line, "Warning: "); ok {
			out = append(out, w)
		}
	}
	return out
}

func (r run) String() string {
	return fmt.Sprintf("kubectl %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.exitCode, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// mustSucceed runs kubectl and fails the test unless it exits 0.
func mustSucceed(t *testing.T, args ...string) run {
	t.Helper()
	r := kubectl(t, args...)
	if r.exitCode != 0 {
		t.Fatalf("%s", r)
	}
	return r
}

// hasLines reports whether want appear in got in order, one after the
// other.
func hasLines(got, want []string) bool {
	for i := range got {
		if len(got)-i >= len(want) && slices.Equal(got[i:i+len(want)], want) {
			return true
		}
	}
	return false
}
