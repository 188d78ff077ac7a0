package main

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes"
)

// TestCompression checks what the informers' client asks of the API
// server: no gzip by default, gzip with --kubernetes.compression, and
// never when the kubeconfig disables it.
func TestCompression(t *testing.T) {
	var mu sync.Mutex
	var acceptEncoding []string
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		acceptEncoding = append(acceptEncoding, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
	}))
	defer server.Close()

	// Over TLS with a CA, as to a real API server: client-go gives a
	// plain-HTTP configuration net/http's default transport, which
	// always asks for gzip.
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}))
	kubeconfig := func(disable bool) string {
		path := filepath.Join(t.TempDir(), "kubeconfig")
		config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    certificate-authority-data: %s
    disable-compression: %t
users:
- name: u
  user:
    token: t
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`, server.URL, ca, disable)
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name       string
		flags      []string
		disable    bool
		wantHeader string
	}{
		{"default", nil, false, ""},
		{"asked for", []string{"--kubernetes.compression"}, false, "gzip"},
		{"asked for, kubeconfig disables", []string{"--kubernetes.compression"}, true, ""},
		{"kubeconfig disables", nil, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, o := newApp(io.Discard, io.Discard)
			if _, err := app.Parse(append(tc.flags, "--kubeconfig="+kubeconfig(tc.disable))); err != nil {
				t.Fatal(err)
			}
			config, err := o.restConfig()
			if err != nil {
				t.Fatal(err)
			}
			client, err := kubernetes.NewForConfig(config)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			acceptEncoding = nil
			mu.Unlock()
			if _, err := client.Discovery().ServerVersion(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(acceptEncoding) != 1 || acceptEncoding[0] != tc.wantHeader {
				t.Errorf("Accept-Encoding of the requests = %q, want [%q]", acceptEncoding, tc.wantHeader)
			}
		})
	}
}
