package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// pki is a throw-away CA with a server and a client certificate, as PEM
// files in a directory.
type pki struct {
	dir                           string
	caFile, serverCert, serverKey string
	clientCert, clientKey         string
	ca                            *x509.Certificate
	caKey                         *ecdsa.PrivateKey
	clientPair                    tls.Certificate
	roguePair                     tls.Certificate // from another CA
	caPool                        *x509.CertPool
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	p := &pki{dir: dir}
	var caPEM []byte
	p.ca, p.caKey, caPEM = selfSignedCA(t, "kube-spread test CA")
	p.caFile = writeFile(t, dir, "ca.crt", caPEM)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(p.ca)

	serverCert, serverKey := issue(t, p.ca, p.caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-spread-exporter"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.serverCert = writeFile(t, dir, "tls.crt", serverCert)
	p.serverKey = writeFile(t, dir, "tls.key", serverKey)

	clientCert, clientKey := issue(t, p.ca, p.caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "prometheus"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.clientCert = writeFile(t, dir, "client.crt", clientCert)
	p.clientKey = writeFile(t, dir, "client.key", clientKey)
	var err error
	if p.clientPair, err = tls.X509KeyPair(clientCert, clientKey); err != nil {
		t.Fatal(err)
	}

	rogueCA, rogueKey, _ := selfSignedCA(t, "another CA")
	rogueCert, rogueCertKey := issue(t, rogueCA, rogueKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "prometheus"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if p.roguePair, err = tls.X509KeyPair(rogueCert, rogueCertKey); err != nil {
		t.Fatal(err)
	}
	return p
}

var serial int64

func selfSignedCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// issue signs template with the CA and returns certificate and key as PEM.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, template *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	template.SerialNumber = big.NewInt(serial)
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(24 * time.Hour)
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTLSAndBasicAuth runs the exporter with a web configuration that
// requires a client certificate from its CA and a basic auth password, and
// checks that only a client with both gets the metrics: first with Go's
// HTTP client, then with check_kube_spread.
func TestTLSAndBasicAuth(t *testing.T) {
	const user, password = "prometheus", "correct horse battery staple"
	dir := t.TempDir()
	p := newPKI(t, dir)
	// The lowest cost keeps the test quick; deployments use 10 or more.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := writeFile(t, dir, "web-config.yml", []byte(fmt.Sprintf(`tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  %s: %s
`, user, hash)))
	address := startTLSExporter(t, "--web.config.file="+webConfig)

	client := func(certificates ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      p.caPool,
			Certificates: certificates,
		}}}
	}
	get := func(c *http.Client, url, user, password string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, "", err
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	metricsURL := "https://" + address + "/metrics"
	waitFor(t, "/readyz over TLS with credentials", func() error {
		status, body, err := get(client(p.clientPair), "https://"+address+"/readyz", user, password)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("status %d %q, err %v", status, body, err)
		}
		return nil
	})

	for _, tc := range []struct {
		name           string
		client         *http.Client
		url            string
		user, password string
		wantStatus     int    // 0: the TLS handshake must fail
		wantBody       string // in the body of a 200
	}{
		{name: "no client certificate", client: client(), url: metricsURL, user: user, password: password},
		{name: "client certificate of another CA", client: client(p.roguePair), url: metricsURL, user: user, password: password},
		{name: "plain HTTP", client: client(), url: "http://" + address + "/metrics", user: user, password: password, wantStatus: http.StatusBadRequest},
		{name: "no password", client: client(p.clientPair), url: metricsURL, wantStatus: http.StatusUnauthorized},
		{name: "wrong password", client: client(p.clientPair), url: metricsURL, user: user, password: "wrong", wantStatus: http.StatusUnauthorized},
		{name: "unknown user", client: client(p.clientPair), url: metricsURL, user: "admin", password: password, wantStatus: http.StatusUnauthorized},
		{name: "certificate and password", client: client(p.clientPair), url: metricsURL, user: user, password: password, wantStatus: http.StatusOK, wantBody: `kube_spread_cache_synced{resource="pods"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := get(tc.client, tc.url, tc.user, tc.password)
			if tc.wantStatus == 0 {
				// The server's TLS alert: "certificate required" or
				// "unknown certificate authority".
				if err == nil || !strings.Contains(err.Error(), "tls:") || !strings.Contains(err.Error(), "certificate") {
					t.Fatalf("status %d, err %v; want the TLS handshake refused for the client certificate", status, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", status, tc.wantStatus, body)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body lacks %q:\n%s", tc.wantBody, body)
			}
		})
	}

	t.Run("check_kube_spread as the client", func(t *testing.T) {
		check := exporterproc.BuildForTest(t, "check_kube_spread")
		rightPassword := writeFile(t, t.TempDir(), "password", []byte(password+"\n"))
		wrongPassword := writeFile(t, t.TempDir(), "wrong", []byte("wrong\n"))
		withCert := []string{"--tls.cert-file=" + p.clientCert, "--tls.key-file=" + p.clientKey}
		for _, tc := range []struct {
			name     string
			args     []string
			wantCode int
			wantOut  string
		}{
			{"certificate and password", append(withCert, "--basic-auth.password-file="+rightPassword), 0, "OK"},
			{"wrong password", append(withCert, "--basic-auth.password-file="+wrongPassword), 3, "401"},
			{"no client certificate", []string{"--basic-auth.password-file=" + rightPassword}, 3, "UNKNOWN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"--url=" + metricsURL, "--tls.ca-file=" + p.caFile, "--basic-auth.username=" + user}, tc.args...)
				args = append(args, "health")
				cmd := exec.Command(check, args...)
				out, err := cmd.CombinedOutput()
				code := 0
				var exitErr *exec.ExitError
				if errors.As(err, &exitErr) {
					code = exitErr.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tc.wantCode || !strings.Contains(string(out), tc.wantOut) {
					t.Errorf("check_kube_spread %s: exit %d, want %d with %q in:\n%s", strings.Join(args, " "), code, tc.wantCode, tc.wantOut, out)
				}
			})
		}
	})
}

// TestWebConfigExample checks the shipped example: exporter-toolkit
// accepts it (with certificates where it expects them), and its hash is of
// the placeholder password its comment names.
func TestWebConfigExample(t *testing.T) {
	dir := t.TempDir()
	newPKI(t, dir) // writes ca.crt, tls.crt and tls.key, the example's names
	example := readRepoFile(t, "deploy/web-config.example.yml")
	path := writeFile(t, dir, "web-config.yml", []byte(example))
	if err := web.Validate(path); err != nil {
		t.Fatalf("exporter-toolkit rejects deploy/web-config.example.yml: %v", err)
	}
	var config struct {
		TLS struct {
			ClientAuthType string `json:"client_auth_type"`
		} `json:"tls_server_config"`
		Users map[string]string `json:"basic_auth_users"`
	}
	if err := yaml.Unmarshal([]byte(example), &config); err != nil {
		t.Fatal(err)
	}
	if config.TLS.ClientAuthType != "RequireAndVerifyClientCert" {
		t.Errorf("client_auth_type %q, want RequireAndVerifyClientCert", config.TLS.ClientAuthType)
	}
	const placeholder = "change-me-before-use"
	if !strings.Contains(example, placeholder) {
		t.Fatalf("the example no longer names its placeholder password %q", placeholder)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(config.Users["prometheus"]), []byte(placeholder)); err != nil {
		t.Errorf("the hash of user prometheus is not of %q: %v", placeholder, err)
	}
}

// startTLSExporter runs the exporter against the control plane with the
// given flags and returns its address once it accepts connections.
// exporterproc is not used: it polls over plain HTTP, which a TLS
// listener refuses.
func startTLSExporter(t *testing.T, flags ...string) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close()
	var log strings.Builder
	cmd := exec.Command(exporterproc.BuildForTest(t, "kube-spread-exporter"), append([]string{"--kubeconfig=" + cp.Kubeconfig, "--web.listen-address=" + address}, flags...)...)
	logWriter := &lockedWriter{w: &log}
	cmd.Stdout, cmd.Stderr = logWriter, logWriter
	// The exporter dies with the test process, even on a panic or kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("exporter did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", logWriter.String())
		}
	})
	waitFor(t, "the exporter to listen on "+address, func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exporter exited: %v", err)
		default:
		}
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	return address
}

// waitFor polls check until it passes or a minute is over.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lockedWriter lets the exporter's two output streams and the test share a
// strings.Builder.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
