package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
)

const (
	// namespace is where deploy/ puts the exporter.
	namespace = "kube-spread"
	// appName names the exporter's objects in deploy/.
	appName = "kube-spread-exporter"

	// prometheusOperatorModule ships the CRDs of the ServiceMonitor and
	// PrometheusRule. It is fetched into the module cache by `go mod
	// download`, outside this module: go.mod does not change.
	prometheusOperatorModule  = "github.com/prometheus-operator/prometheus-operator"
	prometheusOperatorVersion = "v0.85.0"
	prometheusOperatorCRDDir  = "example/prometheus-operator-crd"
)

// renderBase returns the objects of the kustomize base, as kubectl renders
// them, decoded into client-go types.
func renderBase(t *testing.T) []runtime.Object {
	t.Helper()
	out, _, err := runKubectl(t, "", "kustomize", filepath.Join(repoRoot, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	return decodeManifests(t, "rendered base", out)
}

// decodeManifests decodes rendered manifests into client-go types.
func decodeManifests(t *testing.T, what, manifests string) []runtime.Object {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var objects []runtime.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", what, err)
		}
		if strings.TrimSpace(string(doc)) == "" {
			continue
		}
		object, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", what, err, doc)
		}
		objects = append(objects, object)
	}
	return objects
}

// find returns the one object of type T in objects.
func find[T runtime.Object](t *testing.T, objects []runtime.Object) T {
	t.Helper()
	var found []T
	for _, o := range objects {
		if typed, ok := o.(T); ok {
			found = append(found, typed)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("rendered base: %d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ensureNamespace creates the base's Namespace for real. A server-side dry
// run creates nothing, so the namespaced objects of the same dry run would
// otherwise fail with "namespace not found". kubectl apply creates it, as a
// user's first apply would, so the dry runs see it as applied before.
func ensureNamespace(t *testing.T) {
	t.Helper()
	if _, _, err := runKubectl(t, "", "apply", "-f", filepath.Join(repoRoot, "deploy", "namespace.yaml")); err != nil {
		t.Fatal(err)
	}
}

// TestClusterRoleGrantsExactlyWhatTheExporterWatches compares the shipped
// ClusterRole with the informers of cluster.Watcher, the API group of each
// taken from the API server's discovery: list and watch on each resource
// it watches, nothing else, no wildcard.
func TestClusterRoleGrantsExactlyWhatTheExporterWatches(t *testing.T) {
	role := find[*rbacv1.ClusterRole](t, renderBase(t))

	watcher, err := cluster.New(fake.NewClientset(), cluster.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := adminClient(t).Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	// Preferred versions only would do; every version of a group names
	// the same resources, and a set removes the repeats.
	want := map[string]bool{}
	for _, s := range watcher.Status() {
		var groups []string
		for _, list := range lists {
			for _, r := range list.APIResources {
				if r.Name == s.Resource {
					group := strings.Split(list.GroupVersion, "/")
					if len(group) == 1 {
						group = []string{""} // core: "v1"
					}
					if !slices.Contains(groups, group[0]) {
						groups = append(groups, group[0])
					}
				}
			}
		}
		if len(groups) != 1 {
			t.Fatalf("watched resource %s is in API groups %q of the API server, want exactly one", s.Resource, groups)
		}
		want[groups[0]+"/"+s.Resource] = true
	}

	got := map[string]bool{}
	for i, rule := range role.Rules {
		if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
			t.Errorf("rule %d: resourceNames or nonResourceURLs: %+v", i, rule)
		}
		if verbs := slices.Sorted(slices.Values(rule.Verbs)); !slices.Equal(verbs, []string{"list", "watch"}) {
			t.Errorf("rule %d: verbs %v, want exactly list and watch (the exporter reads through informers only)", i, rule.Verbs)
		}
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				if group == "*" || resource == "*" || strings.Contains(resource, "/") {
					t.Errorf("rule %d: %s/%s: wildcards and subresources are more than the exporter reads", i, group, resource)
				}
				got[group+"/"+resource] = true
			}
		}
	}
	for r := range want {
		if !got[r] {
			t.Errorf("the exporter watches %s, the ClusterRole does not grant it", r)
		}
	}
	for r := range got {
		if !want[r] {
			t.Errorf("the ClusterRole grants %s, which the exporter does not watch", r)
		}
	}
}

// TestImageTagIsTheVersion keeps the image of the base at the release in
// the VERSION file.
func TestImageTagIsTheVersion(t *testing.T) {
	deployment := find[*appsv1.Deployment](t, renderBase(t))
	want := "ghcr.io/kube-spread-exporter/kube-spread-exporter:v" + strings.TrimSpace(readRepoFile(t, "VERSION"))
	if got := deployment.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("image %s, want %s (v + VERSION): update newTag in deploy/kustomization.yaml", got, want)
	}
}

// TestDeploymentIsNotSingleHomed pins down what keeps the exporter from
// going away with one node: two replicas, never two on one node (required),
// in two zones when there are (preferred, and a spread constraint), a
// rollout that replaces one at a time without a surge pod the anti-affinity
// could not place, and a PodDisruptionBudget that lets a drain evict only
// one, selecting exactly the Deployment's pods.
func TestDeploymentIsNotSingleHomed(t *testing.T) {
	objects := renderBase(t)
	deployment := find[*appsv1.Deployment](t, objects)
	pdb := find[*policyv1.PodDisruptionBudget](t, objects)
	spec := deployment.Spec
	podLabels := labels.Set(spec.Template.Labels)
	selects := func(what string, selector *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("%s: selector %v does not select the exporter's pods %v (%v)", what, selector, podLabels, err)
		}
	}

	if spec.Replicas == nil || *spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", spec.Replicas)
	}
	if u := spec.Strategy.RollingUpdate; spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || u == nil ||
		u.MaxSurge == nil || u.MaxSurge.IntValue() != 0 || u.MaxUnavailable == nil || u.MaxUnavailable.IntValue() != 1 {
		t.Errorf("strategy %+v, want a rolling update with maxSurge 0 and maxUnavailable 1", spec.Strategy)
	}

	affinity := spec.Template.Spec.Affinity
	if affinity == nil || affinity.PodAntiAffinity == nil {
		t.Fatal("no pod anti-affinity")
	}
	required := affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if len(required) != 1 || required[0].TopologyKey != corev1.LabelHostname {
		t.Errorf("required anti-affinity %+v, want one term on %s", required, corev1.LabelHostname)
	} else {
		selects("required anti-affinity", required[0].LabelSelector)
	}
	preferred := affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(preferred) != 1 || preferred[0].PodAffinityTerm.TopologyKey != corev1.LabelTopologyZone {
		t.Errorf("preferred anti-affinity %+v, want one term on %s", preferred, corev1.LabelTopologyZone)
	} else {
		selects("preferred anti-affinity", preferred[0].PodAffinityTerm.LabelSelector)
	}
	spreads := spec.Template.Spec.TopologySpreadConstraints
	if len(spreads) != 1 || spreads[0].TopologyKey != corev1.LabelTopologyZone || spreads[0].MaxSkew != 1 {
		t.Errorf("topology spread constraints %+v, want one on %s with maxSkew 1", spreads, corev1.LabelTopologyZone)
	} else {
		selects("topology spread constraint", spreads[0].LabelSelector)
	}

	if pdb.Namespace != deployment.Namespace {
		t.Errorf("PodDisruptionBudget in namespace %q, the Deployment in %q", pdb.Namespace, deployment.Namespace)
	}
	selects("PodDisruptionBudget", pdb.Spec.Selector)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget minAvailable %v, maxUnavailable %v; want minAvailable 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("PodDisruptionBudget unhealthyPodEvictionPolicy %v, want AlwaysAllow: a broken exporter must not block drains", p)
	}
}

// TestPrometheusRuleCopyIsCurrent: the component holds a copy of the
// generated rules/prometheusrule.yaml, since kustomize loads no file from
// outside a kustomization's directory.
func TestPrometheusRuleCopyIsCurrent(t *testing.T) {
	const copyPath = "deploy/components/prometheus-operator/prometheusrule.yaml"
	if readRepoFile(t, copyPath) != readRepoFile(t, "rules/prometheusrule.yaml") {
		t.Errorf("%s differs from rules/prometheusrule.yaml; refresh it: cp rules/prometheusrule.yaml %s", copyPath, copyPath)
	}
}

// TestBaseServerDryRun has the API server validate every object of the
// base, admission included: the Namespace enforces the "restricted" Pod
// Security Standard, so a Deployment that weakens the securityContext
// draws a warning, and the shipped one must draw none.
func TestBaseServerDryRun(t *testing.T) {
	ensureNamespace(t)
	serverDryRun(t, filepath.Join(repoRoot, "deploy"),
		"namespace/"+namespace,
		"serviceaccount/"+appName,
		"clusterrole.rbac.authorization.k8s.io/"+appName,
		"clusterrolebinding.rbac.authorization.k8s.io/"+appName,
		"service/"+appName,
		"deployment.apps/"+appName,
		"poddisruptionbudget.policy/"+appName,
	)

	// Negative control: the same Deployment running as root draws the
	// Pod Security warning, so the silence above means something.
	rendered, _, err := runKubectl(t, "", "kustomize", filepath.Join(repoRoot, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	weakened := strings.Replace(rendered, "runAsNonRoot: true", "runAsNonRoot: false", 1)
	if weakened == rendered {
		t.Fatal("rendered base has no runAsNonRoot: true")
	}
	_, stderr, err := runKubectl(t, weakened, "apply", "-f", "-", "--dry-run=server")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "would violate PodSecurity") || !strings.Contains(stderr, "runAsNonRoot") {
		t.Errorf("a Deployment with runAsNonRoot: false drew no Pod Security warning; stderr:\n%s", stderr)
	}
}

// TestPrometheusOperatorComponentServerDryRun installs the Prometheus
// Operator's CRDs from its Go module and has the API server validate the
// ServiceMonitor and PrometheusRule against their schemas.
func TestPrometheusOperatorComponentServerDryRun(t *testing.T) {
	ensureNamespace(t)
	installPrometheusOperatorCRDs(t)

	// A component is applied through a kustomization that has the base,
	// as a user's would.
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
	kustomization := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n",
		rel("deploy"), rel("deploy/components/prometheus-operator"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	serverDryRun(t, dir,
		"servicemonitor.monitoring.coreos.com/"+appName,
		"prometheusrule.monitoring.coreos.com/"+appName,
		"deployment.apps/"+appName,
	)
	rendered, _, err := runKubectl(t, "", "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"honorLabels: true", "namespace: " + namespace} {
		if !strings.Contains(rendered, want) {
			t.Errorf("rendered component lacks %q", want)
		}
	}

	checkServiceMonitorFindsService(t, rendered, namespace)

	// A kustomization that moves everything to another namespace, as
	// docs/deploy.md invites: the ServiceMonitor must still find the
	// Service, in its own namespace, not look in kube-spread.
	moved := filepath.Join(dir, "moved")
	if err := os.Mkdir(moved, 0o755); err != nil {
		t.Fatal(err)
	}
	kustomization = fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: monitoring\nresources:\n  - ../%s\ncomponents:\n  - ../%s\n",
		rel("deploy"), rel("deploy/components/prometheus-operator"))
	if err := os.WriteFile(filepath.Join(moved, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	movedRendered, _, err := runKubectl(t, "", "kustomize", moved)
	if err != nil {
		t.Fatal(err)
	}
	checkServiceMonitorFindsService(t, movedRendered, "monitoring")

	// Negative control: the CRD schema is enforced, so a misspelt field
	// is refused and the acceptance above means something.
	misspelt := strings.Replace(rendered, "honorLabels: true", "honourLabels: true", 1)
	if _, _, err := runKubectl(t, misspelt, "apply", "-f", "-", "--dry-run=server"); err == nil || !strings.Contains(err.Error(), "honourLabels") {
		t.Errorf("a ServiceMonitor with the unknown field honourLabels was not refused: %v", err)
	}
}

// checkServiceMonitorFindsService checks, as the Prometheus Operator
// selects, that the rendered ServiceMonitor finds the rendered Service: in
// its own namespace (want) unless its namespaceSelector names others, and
// by the Service's labels.
func checkServiceMonitorFindsService(t *testing.T, rendered, want string) {
	t.Helper()
	var monitor, service map[string]any
	for doc := range strings.SplitSeq(rendered, "\n---\n") {
		var object map[string]any
		if err := yaml.Unmarshal([]byte(doc), &object); err != nil {
			t.Fatalf("rendered manifests: %v", err)
		}
		switch object["kind"] {
		case "ServiceMonitor":
			monitor = object
		case "Service":
			service = object
		}
	}
	if monitor == nil || service == nil {
		t.Fatalf("rendered manifests lack the ServiceMonitor or the Service:\n%s", rendered)
	}
	field := func(object map[string]any, path ...string) any {
		var v any = object
		for _, p := range path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		return v
	}
	namespaces := []any{field(monitor, "metadata", "namespace")}
	if names, ok := field(monitor, "spec", "namespaceSelector", "matchNames").([]any); ok {
		namespaces = names
	}
	if got := field(service, "metadata", "namespace"); got != want || !slices.Contains(namespaces, got) {
		t.Errorf("the Service is in namespace %v (want %s), the ServiceMonitor looks in %v: no target", got, want, namespaces)
	}
	selector, _ := field(monitor, "spec", "selector", "matchLabels").(map[string]any)
	labels, _ := field(service, "metadata", "labels").(map[string]any)
	if len(selector) == 0 {
		t.Error("the ServiceMonitor selects no labels")
	}
	for k, v := range selector {
		if labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%v, the Service has %v", k, v, labels[k])
		}
	}
}

// installPrometheusOperatorCRDs installs the CRDs of the ServiceMonitor and
// the PrometheusRule from the Prometheus Operator's Go module, so that the
// API server validates those objects against their schemas.
func installPrometheusOperatorCRDs(t *testing.T) {
	t.Helper()
	crdDir := filepath.Join(downloadModule(t, prometheusOperatorModule, prometheusOperatorVersion), prometheusOperatorCRDDir)
	for _, crd := range []string{"servicemonitors", "prometheusrules"} {
		file := filepath.Join(crdDir, "monitoring.coreos.com_"+crd+".yaml")
		// Server-side apply: these CRDs are too big for the
		// last-applied-configuration annotation of a client-side apply.
		if _, _, err := runKubectl(t, "", "apply", "--server-side", "--force-conflicts", "-f", file); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runKubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crd+".monitoring.coreos.com"); err != nil {
			t.Fatal(err)
		}
	}
}

// downloadModule puts a module in the module cache and returns its
// directory. It runs outside this module so that go.mod stays as it is.
func downloadModule(t *testing.T, module, version string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%w: %s", err, exitErr.Stderr)
		}
		t.Fatalf("go mod download %s@%s (the CRDs of the ServiceMonitor and PrometheusRule): %v\n%s", module, version, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("go mod download: %v", err)
	}
	if info.Error != "" || info.Dir == "" {
		t.Fatalf("go mod download %s@%s: %s", module, version, info.Error)
	}
	return info.Dir
}
