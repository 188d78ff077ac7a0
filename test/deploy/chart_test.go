package deploy

import (
	"encoding/base64"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/helm"
)

// chartAllOnValues turns every toggle of the chart on and sets every flag.
const chartAllOnValues = "ci/all-on-values.yaml"

// renderChart renders the chart as release in the namespace of deploy/
// with further helm template arguments.
func renderChart(t *testing.T, release string, args ...string) string {
	t.Helper()
	out, err := helm.Template(t.TempDir(), release, namespace, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// allOnValues is the --values argument of chartAllOnValues.
func allOnValues(t *testing.T) []string {
	t.Helper()
	chart, err := helm.Chart()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"--values", filepath.Join(chart, chartAllOnValues)}
}

// TestChartServerDryRun has the API server validate every object the
// chart renders, with the default values, with every toggle on (the
// admission webhook with a certificate of the user's among them) and with
// the webhook's certificate from cert-manager, in the namespace of
// deploy/ (which enforces the restricted Pod Security Standard) and with
// the Prometheus Operator's and cert-manager's CRDs: the ServiceMonitor,
// the PrometheusRule, the Issuer and the Certificate are checked against
// their schemas.
func TestChartServerDryRun(t *testing.T) {
	ensureNamespace(t)
	installPrometheusOperatorCRDs(t)
	installCertManagerCRDs(t)
	const release = "kse"
	const fullname = release + "-" + appName
	base := []string{
		"serviceaccount/" + fullname,
		"clusterrole.rbac.authorization.k8s.io/" + fullname,
		"clusterrolebinding.rbac.authorization.k8s.io/" + fullname,
		"service/" + fullname,
		"deployment.apps/" + fullname,
		"poddisruptionbudget.policy/" + fullname,
	}
	for _, tc := range []struct {
		name    string
		args    []string
		objects []string
	}{
		{"default values", nil, base},
		{"every toggle on", allOnValues(t), append([]string{
			"serviceaccount/kube-spread", // serviceAccount.name
			"servicemonitor.monitoring.coreos.com/" + fullname,
			"prometheusrule.monitoring.coreos.com/" + fullname,
			"validatingwebhookconfiguration.admissionregistration.k8s.io/" + fullname,
			"configmap/" + fullname + "-admission",
		}, base[1:]...)},
		{"admission webhook with cert-manager", []string{"--set", "admission.enabled=true"}, append([]string{
			"validatingwebhookconfiguration.admissionregistration.k8s.io/" + fullname,
			"configmap/" + fullname + "-admission",
			"issuer.cert-manager.io/" + fullname + "-admission",
			"certificate.cert-manager.io/" + fullname + "-admission",
		}, base...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifests := renderChart(t, release, tc.args...)
			out, stderr, err := runKubectl(t, manifests, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatal(err)
			}
			for _, object := range tc.objects {
				if !strings.Contains(out, object+" ") {
					t.Errorf("dry run did not report %s:\n%s", object, out)
				}
			}
			if strings.TrimSpace(stderr) != "" {
				t.Errorf("dry run warned:\n%s", stderr)
			}
		})
	}

	// Negative control: the namespace's Pod Security admission sees the
	// chart's pods, so the silence above means something.
	weakened := renderChart(t, release, "--set", "podSecurityContext.runAsNonRoot=false")
	_, stderr, err := runKubectl(t, weakened, "apply", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "would violate PodSecurity") || !strings.Contains(stderr, "runAsNonRoot") {
		t.Errorf("the chart with runAsNonRoot=false drew no Pod Security warning; stderr:\n%s", stderr)
	}
}

// helmOnlyLabels are the labels the chart adds to deploy/'s, after the
// community charts' conventions: app.kubernetes.io/instance also selects
// the pods, so that two releases never count each other's.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}

// withoutHelmLabels removes helmOnlyLabels from every set of labels in an
// object (labels, matchLabels, a Service's selector): each is a map of
// strings holding app.kubernetes.io/name.
func withoutHelmLabels(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["app.kubernetes.io/name"].(string); ok {
			for _, l := range helmOnlyLabels {
				delete(v, l)
			}
		}
		for _, item := range v {
			withoutHelmLabels(item)
		}
	case []any:
		for _, item := range v {
			withoutHelmLabels(item)
		}
	}
}

// TestChartRendersWhatDeployDoes: for equivalent settings (the release
// named as deploy/'s objects, in its namespace, the default values) the
// chart renders the same Deployment, ServiceAccount, ClusterRole,
// ClusterRoleBinding, Service and PodDisruptionBudget as deploy/, field
// by field, but for the labels Helm adds: the two cannot drift apart.
func TestChartRendersWhatDeployDoes(t *testing.T) {
	base := renderBase(t)
	chart := decodeManifests(t, "rendered chart", renderChart(t, appName))
	for _, kind := range []runtime.Object{
		&appsv1.Deployment{},
		&corev1.ServiceAccount{},
		&rbacv1.ClusterRole{},
		&rbacv1.ClusterRoleBinding{},
		&corev1.Service{},
		&policyv1.PodDisruptionBudget{},
	} {
		name := reflect.TypeOf(kind).Elem().Name()
		t.Run(name, func(t *testing.T) {
			want := asMap(t, ofType(t, base, kind, "deploy/"))
			got := asMap(t, ofType(t, chart, kind, "the chart"))
			withoutHelmLabels(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the chart's %s differs from deploy/'s:\n%s\nwant (deploy/)\n%s", name, toYAML(t, got), toYAML(t, want))
			}
		})
	}

	// The webhook: the chart with it on renders every object deploy/ with
	// the admission components does, and no other.
	byHandCA := base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\n"))
	for _, tc := range []struct {
		name       string
		components []string
		args       []string
		// caBundle is what docs/admission.md's kubectl patch puts into
		// deploy/'s webhook, without cert-manager.
		caBundle string
	}{
		{"admission webhook with cert-manager", []string{admissionComponent, certManagerComponent}, []string{"--set", "admission.enabled=true"}, ""},
		{"admission webhook with a certificate by hand", []string{admissionComponent},
			[]string{"--set", "admission.enabled=true", "--set", "admission.certificate.source=secret", "--set", "admission.certificate.caBundle=" + byHandCA}, byHandCA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := comparable(t, renderObjects(t, withComponents(t, tc.components...)), tc.caBundle)
			got := comparable(t, unstructuredObjects(t, renderChart(t, appName, tc.args...)), "")
			for key, object := range want {
				if !reflect.DeepEqual(got[key], object) {
					t.Errorf("the chart's %s differs from deploy/'s:\n%s\nwant (deploy/)\n%s", key, toYAML(t, got[key]), toYAML(t, object))
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("the chart renders %s, deploy/ does not", key)
				}
			}
		})
	}

	// Negative controls: a setting that differs from deploy/'s shows.
	t.Run("another webhook timeout differs", func(t *testing.T) {
		want := comparable(t, renderObjects(t, withComponents(t, admissionComponent, certManagerComponent)), "")
		got := comparable(t, unstructuredObjects(t, renderChart(t, appName, "--set", "admission.enabled=true", "--set", "admission.timeoutSeconds=5")), "")
		const key = "ValidatingWebhookConfiguration " + appName
		if want[key] == nil || reflect.DeepEqual(got[key], want[key]) {
			t.Errorf("the chart's webhook with timeoutSeconds 5 equals deploy/'s (%v): the comparison compares nothing", want[key] != nil)
		}
	})
	t.Run("another memory limit differs", func(t *testing.T) {
		other := decodeManifests(t, "rendered chart", renderChart(t, appName, "--set", "resources.limits.memory=1Gi"))
		got := asMap(t, ofType(t, other, &appsv1.Deployment{}, "the chart"))
		withoutHelmLabels(got)
		if reflect.DeepEqual(got, asMap(t, ofType(t, base, &appsv1.Deployment{}, "deploy/"))) {
			t.Error("the chart's Deployment with a memory limit of 1Gi equals deploy/'s: the comparison compares nothing")
		}
	})
}

// comparable returns the objects, but deploy/'s Namespace, by kind and
// name, as the API server would serialise them (through their client-go
// types where they have one) and without the labels Helm adds; with
// caBundle, set in the webhook as docs/admission.md does by hand.
func comparable(t *testing.T, objects []*unstructured.Unstructured, caBundle string) map[string]map[string]any {
	t.Helper()
	out := make(map[string]map[string]any)
	for _, u := range objects {
		if u.GetKind() == "Namespace" {
			continue
		}
		if caBundle != "" && u.GetKind() == "ValidatingWebhookConfiguration" {
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			if len(hooks) == 0 {
				t.Fatal("deploy/'s ValidatingWebhookConfiguration has no webhook")
			}
			if err := unstructured.SetNestedField(hooks[0].(map[string]any), caBundle, "clientConfig", "caBundle"); err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedSlice(u.Object, hooks, "webhooks"); err != nil {
				t.Fatal(err)
			}
		}
		object := u.Object
		if typed, err := scheme.Scheme.New(u.GroupVersionKind()); err == nil {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			object = asMap(t, typed)
		}
		withoutHelmLabels(object)
		key := u.GetKind() + " " + u.GetName()
		if _, twice := out[key]; twice {
			t.Fatalf("two objects %s", key)
		}
		out[key] = object
	}
	return out
}

// ofType returns the one object of objects with the type of kind.
func ofType(t *testing.T, objects []runtime.Object, kind runtime.Object, where string) runtime.Object {
	t.Helper()
	var found []runtime.Object
	for _, o := range objects {
		if reflect.TypeOf(o) == reflect.TypeOf(kind) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d objects of type %T, want 1", where, len(found), kind)
	}
	return found[0]
}

// asMap turns a typed object into maps, as the API server would
// serialise it: quantities, intstr values and omitted fields compare alike.
func asMap(t *testing.T, o runtime.Object) map[string]any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestChartLeastPrivilege runs the exporter with a token of the chart's
// ServiceAccount, bound by the chart's ClusterRole, and with every flag of
// the values that turn every toggle on, as the chart's Deployment passes
// them: it syncs and publishes the figures with list and watch only.
func TestChartLeastPrivilege(t *testing.T) {
	admin := adminClient(t)
	ensureNamespace(t)
	// The Prometheus Operator's objects are not client-go types, nor
	// needed here.
	args := append(allOnValues(t), "--set", "serviceMonitor.enabled=false", "--set", "prometheusRule.enabled=false")
	objects := decodeManifests(t, "rendered chart", renderChart(t, "chart", args...))
	account := find[*corev1.ServiceAccount](t, objects)
	role := find[*rbacv1.ClusterRole](t, objects)
	binding := find[*rbacv1.ClusterRoleBinding](t, objects)
	deployment := find[*appsv1.Deployment](t, objects)
	if deployment.Spec.Template.Spec.ServiceAccountName != account.Name || binding.Subjects[0].Name != account.Name || binding.RoleRef.Name != role.Name {
		t.Fatalf("the chart's Deployment runs as %s, its binding binds %s to %s: want the chart's ServiceAccount %s and ClusterRole %s",
			deployment.Spec.Template.Spec.ServiceAccountName, binding.Subjects[0].Name, binding.RoleRef.Name, account.Name, role.Name)
	}
	createRBAC(t, admin, account, role, binding)
	ensureWorkload(t, admin)

	// The listen address, the web configuration and the log level are the
	// harness's (the exporter runs here, not in the pod; kingpin refuses a
	// flag given twice).
	var flags []string
	for _, arg := range deployment.Spec.Template.Spec.Containers[0].Args {
		name, _, _ := strings.Cut(arg, "=")
		switch name {
		case "--web.listen-address", "--web.config.file", "--log.level",
			// The webhook's listener needs its certificate, which the
			// pod mounts; its RBAC is the exporter's.
			"--admission.listen-address", "--admission.web.config.file":
		default:
			flags = append(flags, arg)
		}
	}
	if !strings.Contains(strings.Join(flags, " "), workloadNamespace) {
		t.Fatalf("the chart's flags %q do not include the workload's namespace %s: the exporter would report nothing", flags, workloadNamespace)
	}
	syncsWithListAndWatchOnly(t, admin, account, flags...)
}
