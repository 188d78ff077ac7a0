package deploy

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/admission"
)

const (
	admissionComponent   = "deploy/components/admission"
	certManagerComponent = "deploy/components/admission-cert-manager"

	// certManagerModule ships cert-manager's CRDs, fetched into the module
	// cache outside this module as the Prometheus Operator's are.
	certManagerModule  = "github.com/cert-manager/cert-manager"
	certManagerVersion = "v1.21.2"
	certManagerCRDDir  = "deploy/crds"
)

// withComponents writes a kustomization of the base and the components,
// as a user's would be, and returns its directory.
func withComponents(t *testing.T, components ...string) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		abs, err := filepath.Abs(filepath.Join(repoRoot, p))
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + rel("deploy") + "\ncomponents:\n"
	for _, c := range components {
		kustomization += "  - " + rel(c) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// renderObjects renders a kustomization into unstructured objects.
func renderObjects(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, _, err := runKubectl(t, "", "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	return unstructuredObjects(t, out)
}

// unstructuredObjects decodes rendered manifests, of any kind.
func unstructuredObjects(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	var objects []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(doc)) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("decode rendered object: %v\n%s", err, doc)
		}
		objects = append(objects, u)
	}
}

// typed returns the one object of kind in objects as T.
func typed[T any](t *testing.T, objects []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	var found []*T
	for _, u := range objects {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			out := new(T)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
				t.Fatalf("%s %s: %v", kind, u.GetName(), err)
			}
			found = append(found, out)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s named %q, want 1", len(found), kind, name)
	}
	return found[0]
}

// TestAdmissionComponent pins what the webhook's configuration promises:
// only Node UPDATEs, failurePolicy Ignore, a short timeout, no side
// effects, a clientConfig that reaches the exporter's webhook listener
// through the Service, a certificate for the names the API server dials,
// mounted where the web configuration reads it, and no RBAC beyond the
// base's list and watch.
func TestAdmissionComponent(t *testing.T) {
	objects := renderObjects(t, withComponents(t, admissionComponent, certManagerComponent))
	config := typed[admissionregistrationv1.ValidatingWebhookConfiguration](t, objects, "ValidatingWebhookConfiguration", "")
	deployment := typed[appsv1.Deployment](t, objects, "Deployment", appName)
	service := typed[corev1.Service](t, objects, "Service", appName)
	webConfig := typed[corev1.ConfigMap](t, objects, "ConfigMap", "kube-spread-exporter-admission")

	if len(config.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(config.Webhooks))
	}
	hook := config.Webhooks[0]
	if len(hook.Rules) != 1 {
		t.Errorf("%d rules, want 1", len(hook.Rules))
	} else if r := hook.Rules[0]; !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Update}) ||
		!slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.APIVersions, []string{"v1"}) || !slices.Equal(r.Resources, []string{"nodes"}) ||
		r.Scope == nil || *r.Scope != admissionregistrationv1.ClusterScope {
		t.Errorf("rule %+v, want UPDATE of v1 nodes only, cluster-scoped (no subresource: kubelets write nodes/status)", r)
	}
	if hook.FailurePolicy == nil || *hook.FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("failurePolicy %v, want Ignore: a monitor must never block a cordon", hook.FailurePolicy)
	}
	if hook.TimeoutSeconds == nil || *hook.TimeoutSeconds < 1 || *hook.TimeoutSeconds > 5 {
		t.Errorf("timeoutSeconds %v, want a small number (1 to 5)", hook.TimeoutSeconds)
	}
	if hook.SideEffects == nil || *hook.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects %v, want None", hook.SideEffects)
	}
	if !slices.Equal(hook.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("admissionReviewVersions %v, want [v1]: the webhook reads admission.k8s.io/v1 only", hook.AdmissionReviewVersions)
	}
	if hook.ObjectSelector != nil || hook.NamespaceSelector != nil || len(hook.MatchConditions) > 0 {
		t.Errorf("the webhook must see every node: objectSelector %v, namespaceSelector %v, matchConditions %v", hook.ObjectSelector, hook.NamespaceSelector, hook.MatchConditions)
	}

	ref := hook.ClientConfig.Service
	if ref == nil || ref.Namespace != namespace || ref.Name != service.Name || ref.Path == nil || *ref.Path != admission.PathNodes || ref.Port == nil {
		t.Fatalf("clientConfig.service %+v, want %s/%s, path %s, a port", ref, namespace, service.Name, admission.PathNodes)
	}
	container := deployment.Spec.Template.Spec.Containers[0]
	var containerPort corev1.ContainerPort
	for _, p := range service.Spec.Ports {
		if p.Port == *ref.Port {
			for _, cp := range container.Ports {
				if cp.Name == p.TargetPort.String() {
					containerPort = cp
				}
			}
		}
	}
	if containerPort.ContainerPort == 0 {
		t.Fatalf("service port %d leads to no container port (service %+v, container %+v)", *ref.Port, service.Spec.Ports, container.Ports)
	}
	wantArgs := []string{
		fmt.Sprintf("--admission.listen-address=:%d", containerPort.ContainerPort),
		"--admission.web.config.file=/etc/kube-spread-exporter/admission/web-config.yml",
		"--web.listen-address=:10217",
	}
	for _, arg := range wantArgs {
		if !slices.Contains(container.Args, arg) {
			t.Errorf("args %q lack %s", container.Args, arg)
		}
	}

	// The projected volume holds the web configuration and the
	// certificate it names, side by side.
	mounted := map[string]string{} // file in the mount: where it comes from
	for _, m := range container.VolumeMounts {
		for _, v := range deployment.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Projected == nil || m.MountPath != "/etc/kube-spread-exporter/admission" {
				continue
			}
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					for _, item := range s.ConfigMap.Items {
						mounted[item.Path] = "configmap/" + s.ConfigMap.Name + "/" + item.Key
					}
				}
				if s.Secret != nil {
					for _, item := range s.Secret.Items {
						mounted[item.Path] = "secret/" + s.Secret.Name + "/" + item.Key
					}
				}
			}
		}
	}
	want := map[string]string{
		"web-config.yml": "configmap/kube-spread-exporter-admission/web-config.yml",
		"tls.crt":        "secret/kube-spread-exporter-admission-tls/tls.crt",
		"tls.key":        "secret/kube-spread-exporter-admission-tls/tls.key",
	}
	if fmt.Sprint(mounted) != fmt.Sprint(want) {
		t.Errorf("mounted at /etc/kube-spread-exporter/admission: %v, want %v", mounted, want)
	}
	var web struct {
		TLS struct {
			CertFile string `json:"cert_file"`
			KeyFile  string `json:"key_file"`
		} `json:"tls_server_config"`
	}
	if err := yaml.Unmarshal([]byte(webConfig.Data["web-config.yml"]), &web); err != nil {
		t.Errorf("web-config.yml: %v", err)
	}
	if web.TLS.CertFile != "tls.crt" || web.TLS.KeyFile != "tls.key" {
		t.Errorf("web-config.yml names %q and %q, want tls.crt and tls.key next to it", web.TLS.CertFile, web.TLS.KeyFile)
	}

	// cert-manager: a certificate for the names the API server dials, in
	// the Secret mounted above, injected into the caBundle.
	certificate := objectNamed(t, objects, "Certificate", "kube-spread-exporter-admission")
	dnsNames, _, _ := unstructured.NestedStringSlice(certificate.Object, "spec", "dnsNames")
	if name := ref.Name + "." + ref.Namespace + ".svc"; !slices.Contains(dnsNames, name) {
		t.Errorf("certificate dnsNames %v lack %s, the name the API server dials", dnsNames, name)
	}
	if secret, _, _ := unstructured.NestedString(certificate.Object, "spec", "secretName"); secret != "kube-spread-exporter-admission-tls" {
		t.Errorf("certificate secretName %q, want the mounted kube-spread-exporter-admission-tls", secret)
	}
	if got, want := config.Annotations["cert-manager.io/inject-ca-from"], certificate.GetNamespace()+"/"+certificate.GetName(); got != want {
		t.Errorf("cert-manager.io/inject-ca-from %q, want %q", got, want)
	}
	issuer, _, _ := unstructured.NestedString(certificate.Object, "spec", "issuerRef", "name")
	objectNamed(t, objects, "Issuer", issuer)

	// RBAC stays the base's: the webhook is called, it calls nothing.
	base := renderObjects(t, withComponents(t))
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"} {
		if got, want := count(objects, kind), count(base, kind); got != want {
			t.Errorf("%d objects of kind %s with the components, %d in the base", got, kind, want)
		}
	}
	if fmt.Sprint(objectNamed(t, objects, "ClusterRole", appName).Object) != fmt.Sprint(objectNamed(t, base, "ClusterRole", appName).Object) {
		t.Error("the components change the ClusterRole")
	}
}

// waitEstablished waits until the API server serves a CRD. kubectl wait
// fails instead of waiting while the CRD has no conditions yet.
func waitEstablished(t *testing.T, crd string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, _, err := runKubectl(t, "", "get", "crd", crd, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
		if err == nil && out == "True" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD %s not established within a minute: %q, %v", crd, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func objectNamed(t *testing.T, objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objects {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func count(objects []*unstructured.Unstructured, kind string) int {
	n := 0
	for _, u := range objects {
		if u.GetKind() == kind {
			n++
		}
	}
	return n
}

// TestAdmissionComponentServerDryRun has the API server validate the
// components: the webhook's configuration, the patched Deployment and
// Service, and, with cert-manager's CRDs from its Go module, the Issuer
// and Certificate. The component admission alone needs no CRD.
func TestAdmissionComponentServerDryRun(t *testing.T) {
	ensureNamespace(t)
	serverDryRun(t, withComponents(t, admissionComponent),
		"validatingwebhookconfiguration.admissionregistration.k8s.io/"+appName,
		"configmap/kube-spread-exporter-admission",
		"deployment.apps/"+appName,
		"service/"+appName,
	)

	installCertManagerCRDs(t)
	dir := withComponents(t, admissionComponent, certManagerComponent)
	serverDryRun(t, dir,
		"issuer.cert-manager.io/kube-spread-exporter-admission",
		"certificate.cert-manager.io/kube-spread-exporter-admission",
		"validatingwebhookconfiguration.admissionregistration.k8s.io/"+appName,
	)

	// Negative controls: the schemas are enforced, so the acceptance above
	// means something.
	rendered, _, err := runKubectl(t, "", "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, refused string }{
		{"secretName: kube-spread-exporter-admission-tls", "secretname: kube-spread-exporter-admission-tls", "secretname"},
		{"failurePolicy: Ignore", "failurePolicy: Sometimes", "failurePolicy"},
	} {
		broken := strings.Replace(rendered, tc.from, tc.to, 1)
		if broken == rendered {
			t.Fatalf("rendered components lack %q", tc.from)
		}
		if _, _, err := runKubectl(t, broken, "apply", "-f", "-", "--dry-run=server"); err == nil || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("%q was not refused: %v", tc.to, err)
		}
	}
}

// installCertManagerCRDs installs cert-manager's Issuer and Certificate
// CRDs from its Go module.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	crdDir := filepath.Join(downloadModule(t, certManagerModule, certManagerVersion), certManagerCRDDir)
	for _, crd := range []string{"issuers", "certificates"} {
		if _, _, err := runKubectl(t, "", "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(crdDir, "cert-manager.io_"+crd+".yaml")); err != nil {
			t.Fatal(err)
		}
		waitEstablished(t, crd+".cert-manager.io")
	}
}

// TestAdmissionCertificateByHand runs the commands of docs/admission.md
// for a cluster without cert-manager, as written, against the real API
// server: they must leave a TLS Secret the component mounts and a
// caBundle that verifies its certificate for the name the API server
// dials.
func TestAdmissionCertificateByHand(t *testing.T) {
	ensureNamespace(t)
	for _, tool := range []string{"sh", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the commands of docs/admission.md need %s: run \"make system-deps\"", tool)
		}
	}
	docs := readRepoFile(t, "docs/admission.md")
	const marker = "```sh\n# Make the admission webhook's certificate and trust it (no cert-manager).\n"
	_, after, found := strings.Cut(docs, marker)
	script, _, closed := strings.Cut(after, "```")
	if !found || !closed {
		t.Fatalf("docs/admission.md has no sh block starting with %q", strings.TrimPrefix(marker, "```sh\n"))
	}
	// The webhook's configuration as the component ships it, for real:
	// the commands patch it.
	if _, _, err := runKubectl(t, "", "apply", "-f", filepath.Join(repoRoot, admissionComponent, "validatingwebhookconfiguration.yaml")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _, _ = runKubectl(t, "", "delete", "validatingwebhookconfiguration", appName, "--ignore-not-found")
		_, _, _ = runKubectl(t, "", "-n", namespace, "delete", "secret", "kube-spread-exporter-admission-tls", "--ignore-not-found")
	})

	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+cp.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+cp.Kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the commands of docs/admission.md: %v\n%s", err, out)
	}

	ctx := context.Background()
	client := adminClient(t)
	secret, err := client.CoreV1().Secrets(namespace).Get(ctx, "kube-spread-exporter-admission-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeTLS || len(secret.Data["tls.crt"]) == 0 || len(secret.Data["tls.key"]) == 0 {
		t.Errorf("Secret of type %s with keys %v, want kubernetes.io/tls with tls.crt and tls.key (the component mounts them)", secret.Type, slices.Collect(maps.Keys(secret.Data)))
	}
	config, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, appName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(config.Webhooks[0].ClientConfig.CABundle) {
		t.Fatalf("caBundle holds no certificate: %q", config.Webhooks[0].ClientConfig.CABundle)
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{appName + "." + namespace + ".svc", appName + "." + namespace + ".svc.cluster.local"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("the Secret's certificate does not verify for %s against the caBundle: %v", name, err)
		}
	}
}
