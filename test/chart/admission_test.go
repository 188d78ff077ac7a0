package chart

import (
	"reflect"
	"testing"
)

// TestAdmissionWebhook pins what the chart's webhook promises whatever
// the values: only Node UPDATEs, failurePolicy Ignore, no side effects,
// the asked timeout, a clientConfig that reaches the webhook's port
// through the Service, and a CA from the certificate source asked for:
// cert-manager's injector, or the caBundle of the values. The ClusterRole
// stays the one without the webhook: list and watch.
func TestAdmissionWebhook(t *testing.T) {
	const fullname = release + "-kube-spread-exporter"
	const caBundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
	withoutWebhook := one(t, objects(t, render(t)), "ClusterRole")
	for _, tc := range []struct {
		name string
		set  []string
		// port and timeout are the webhook's; secret the certificate's
		// Secret.
		port, timeout int
		secret        string
		certManager   bool
	}{
		{name: "cert-manager, the defaults", set: []string{"admission.enabled=true"},
			port: 10218, timeout: 3, secret: fullname + "-admission-tls", certManager: true},
		{name: "a Secret of the user's", set: []string{"admission.enabled=true", "admission.port=8443", "admission.timeoutSeconds=5",
			"admission.certificate.source=secret", "admission.certificate.secretName=webhook-tls", "admission.certificate.caBundle=" + caBundle},
			port: 8443, timeout: 5, secret: "webhook-tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			all := objects(t, render(t, args...))
			config := one(t, all, "ValidatingWebhookConfiguration")
			hooks, _ := get(config, "webhooks").([]any)
			if len(hooks) != 1 {
				t.Fatalf("%d webhooks, want 1", len(hooks))
			}
			hook := hooks[0]
			for _, check := range []struct {
				path []any
				want any
			}{
				{[]any{"name"}, "nodes.kube-spread.io"},
				{[]any{"rules"}, []any{map[string]any{"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"UPDATE"}, "resources": []any{"nodes"}, "scope": "Cluster"}}},
				{[]any{"failurePolicy"}, "Ignore"},
				{[]any{"sideEffects"}, "None"},
				{[]any{"timeoutSeconds"}, float64(tc.timeout)},
				{[]any{"admissionReviewVersions"}, []any{"v1"}},
				{[]any{"clientConfig", "service"}, map[string]any{"namespace": namespace, "name": fullname, "port": float64(tc.port), "path": "/admission/v1/nodes"}},
			} {
				if got := get(hook, check.path...); !reflect.DeepEqual(got, check.want) {
					t.Errorf("webhook %v = %#v, want %#v", check.path, got, check.want)
				}
			}
			injectFrom := get(config, "metadata", "annotations", "cert-manager.io/inject-ca-from")
			bundle := get(hook, "clientConfig", "caBundle")
			if tc.certManager {
				if want := namespace + "/" + fullname + "-admission"; injectFrom != want || bundle != nil {
					t.Errorf("cert-manager: inject-ca-from %v, caBundle %v; want %s and none", injectFrom, bundle, want)
				}
				certificate := one(t, all, "Certificate")
				if got := get(certificate, "spec", "secretName"); got != tc.secret {
					t.Errorf("Certificate's Secret %v, want %s", got, tc.secret)
				}
				wantNames := []any{fullname + "." + namespace + ".svc", fullname + "." + namespace + ".svc.cluster.local"}
				if got := get(certificate, "spec", "dnsNames"); !reflect.DeepEqual(got, wantNames) {
					t.Errorf("Certificate's DNS names %v, want those the API server dials, %v", got, wantNames)
				}
				if got := get(certificate, "spec", "issuerRef", "name"); got != get(one(t, all, "Issuer"), "metadata", "name") {
					t.Errorf("Certificate's issuer %v is not the chart's Issuer", got)
				}
			} else {
				if injectFrom != nil || bundle != caBundle || len(ofKind(all, "Certificate")) != 0 || len(ofKind(all, "Issuer")) != 0 {
					t.Errorf("a Secret of the user's: inject-ca-from %v, caBundle %v, %d Certificates, %d Issuers; want none, the values' caBundle, none, none",
						injectFrom, bundle, len(ofKind(all, "Certificate")), len(ofKind(all, "Issuer")))
				}
			}

			ports, _ := get(one(t, all, "Service"), "spec", "ports").([]any)
			wantPort := map[string]any{"name": "https-admission", "port": float64(tc.port), "targetPort": "https-admission", "protocol": "TCP"}
			if len(ports) != 2 || !reflect.DeepEqual(ports[1], wantPort) {
				t.Errorf("Service ports %v, want http-metrics and %v", ports, wantPort)
			}
			c := container(t, all)
			if got := get(c, "ports", 1); !reflect.DeepEqual(got, map[string]any{"name": "https-admission", "containerPort": float64(tc.port), "protocol": "TCP"}) {
				t.Errorf("container port %v, want https-admission on %d", got, tc.port)
			}
			sources := get(one(t, all, "Deployment"), "spec", "template", "spec", "volumes", 0, "projected", "sources")
			if got := get(sources, 1, "secret", "name"); got != tc.secret {
				t.Errorf("mounted certificate Secret %v, want %s", got, tc.secret)
			}
			if got := get(sources, 0, "configMap", "name"); got != get(one(t, all, "ConfigMap"), "metadata", "name") {
				t.Errorf("mounted web configuration %v, not the chart's ConfigMap", got)
			}
			if got := one(t, all, "ClusterRole"); !reflect.DeepEqual(got, withoutWebhook) {
				t.Errorf("the webhook changes the ClusterRole:\n%v\nwant\n%v", got, withoutWebhook)
			}
		})
	}
}
