package controlplane_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
)

// warnings collects the warnings the API server sends a client.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// TestValidatingWebhooks: the API server calls a webhook of
// Options.ValidatingWebhooks over TLS on loopback, trusting a certificate
// of IssueServingCert with the CA Start filled in, and passes its
// warnings on to the client.
func TestValidatingWebhooks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	// Closed until the control plane is up, as a test's webhook is.
	listener.Close()

	only, err := controlplane.Start(ctx, controlplane.Options{
		APIServerOnly: true,
		Logf:          t.Logf,
		ValidatingWebhooks: []admissionregistrationv1.ValidatingWebhookConfiguration{{
			ObjectMeta: metav1.ObjectMeta{Name: "test"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name:                    "configmaps.test.invalid",
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:" + strconv.Itoa(port) + "/hook")},
				Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
				FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
				SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
				AdmissionReviewVersions: []string{"v1"},
				TimeoutSeconds:          ptr.To[int32](2),
			}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := only.Stop(); err != nil {
			t.Error(err)
		}
	}()

	certFile, keyFile, _, err := only.IssueServingCert("test-webhook")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{
		Addr:              "127.0.0.1:" + strconv.Itoa(port),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var review admissionv1.AdmissionReview
			if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
				http.Error(w, "bad review", http.StatusBadRequest)
				return
			}
			review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true,
				Warnings: []string{"hello from the test webhook about " + review.Request.Name}}
			review.Request = nil
			_ = json.NewEncoder(w).Encode(&review)
		}),
	}
	go func() {
		if err := server.ListenAndServeTLS("", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	defer server.Close()

	config := rest.CopyConfig(only.Config)
	seen := &warnings{}
	config.WarningHandlerWithContext = seen
	client := kubernetes.NewForConfigOrDie(config)
	eventually(ctx, t, "the webhook's warning", func() error {
		name := fmt.Sprintf("probe-%d", time.Now().UnixNano())
		if _, err := client.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		for _, w := range seen.all() {
			if w == "hello from the test webhook about "+name {
				return nil
			}
		}
		return fmt.Errorf("warnings so far: %q", seen.all())
	})
}
