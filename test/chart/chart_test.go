// Package chart tests the Helm chart in charts/kube-spread-exporter with the
// pinned Helm, without a cluster: helm lint, helm template with the
// default values and with every toggle on, the schema's refusals of bad
// values, the exporter's flags, and the PrometheusRule, which must be the
// shipped rules and pass the shipped promtool tests with other labels.
// test/deploy has the API server validate the rendered manifests, runs the
// exporter under the chart's RBAC and compares the chart with deploy/.
package chart

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/helm"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

const (
	release   = "kse"
	namespace = "kube-spread"
)

// allOnValues turns every toggle of the chart on and sets every flag.
const allOnValues = "ci/all-on-values.yaml"

// chartFile returns the path of a file of the chart.
func chartFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(repo.RootForTest(t), helm.ChartDir, name)
}

// render runs helm template with args (--values, --set) and fails the
// test when it fails.
func render(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helm.Template(t.TempDir(), release, namespace, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// object is a rendered manifest, decoded as JSON would be.
type object = map[string]any

// objects splits rendered manifests into their objects.
func objects(t *testing.T, manifests string) []object {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var all []object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatalf("read rendered manifests: %v", err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("decode rendered manifest: %v\n%s", err, doc)
		}
		if o != nil {
			all = append(all, o)
		}
	}
}

// ofKind returns the objects of a kind.
func ofKind(all []object, kind string) []object {
	var found []object
	for _, o := range all {
		if o["kind"] == kind {
			found = append(found, o)
		}
	}
	return found
}

// one returns the one object of a kind.
func one(t *testing.T, all []object, kind string) object {
	t.Helper()
	found := ofKind(all, kind)
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s rendered, want 1", len(found), kind)
	}
	return found[0]
}

// get follows a path of keys and list indices through an object.
func get(o any, path ...any) any {
	for _, p := range path {
		switch key := p.(type) {
		case string:
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[key]
		case int:
			l, ok := o.([]any)
			if !ok || key >= len(l) {
				return nil
			}
			o = l[key]
		}
	}
	return o
}

// container returns the exporter's container of a rendered Deployment.
func container(t *testing.T, all []object) object {
	t.Helper()
	c, ok := get(one(t, all, "Deployment"), "spec", "template", "spec", "containers", 0).(object)
	if !ok {
		t.Fatal("the Deployment has no container")
	}
	return c
}

// strings returns a list of strings of an object.
func stringList(v any) []string {
	var s []string
	for _, item := range v.([]any) {
		s = append(s, item.(string))
	}
	return s
}

// TestLint: helm lint --strict passes with the default values and with
// every toggle on.
func TestLint(t *testing.T) {
	chart, err := helm.Chart()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"every toggle on", []string{"--values", chartFile(t, allOnValues)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := helm.Run(t.TempDir(), append([]string{"lint", "--strict", chart}, tc.args...)...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestTemplateRendersEveryObject: the objects each set of values renders.
func TestTemplateRendersEveryObject(t *testing.T) {
	base := []string{"ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
	for _, tc := range []struct {
		name  string
		args  []string
		kinds []string
	}{
		{"default values", nil, base},
		{"every toggle on", []string{"--values", chartFile(t, allOnValues)},
			append(slices.Clone(base), "ConfigMap", "PrometheusRule", "ServiceMonitor", "ValidatingWebhookConfiguration")},
		{"admission webhook with cert-manager", []string{"--set", "admission.enabled=true"},
			append(slices.Clone(base), "Certificate", "ConfigMap", "Issuer", "ValidatingWebhookConfiguration")},
		{"one replica: no PodDisruptionBudget, which would block every drain of its node", []string{"--set", "replicas=1"},
			[]string{"ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"}},
		{"RBAC and ServiceAccount of the user's", []string{"--set", "rbac.create=false", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=mine"},
			[]string{"Deployment", "PodDisruptionBudget", "Service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kinds []string
			for _, o := range objects(t, render(t, tc.args...)) {
				kinds = append(kinds, o["kind"].(string))
				if ns := get(o, "metadata", "namespace"); ns != nil && ns != namespace {
					t.Errorf("%s in namespace %v, want the release's %s", o["kind"], ns, namespace)
				}
			}
			slices.Sort(kinds)
			want := slices.Sorted(slices.Values(tc.kinds))
			if !slices.Equal(kinds, want) {
				t.Errorf("rendered %v, want %v", kinds, want)
			}
		})
	}
}

// TestAppVersionIsTheVersion: the chart is for the release in VERSION,
// and its default image is that release's, as deploy/'s is.
func TestAppVersionIsTheVersion(t *testing.T) {
	version, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(chartFile(t, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(version)); chart.AppVersion != want {
		t.Errorf("Chart.yaml appVersion %q, want %q (VERSION)", chart.AppVersion, want)
	}
	want := "ghcr.io/kube-spread-exporter/kube-spread-exporter:v" + strings.TrimSpace(string(version))
	if got := container(t, objects(t, render(t)))["image"]; got != want {
		t.Errorf("default image %v, want %s", got, want)
	}
}
