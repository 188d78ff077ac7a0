package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// workloadNamespace holds the small workload the exporter must describe.
const workloadNamespace = "deploy-rbac"

// TestLeastPrivilege runs the exporter as the shipped ServiceAccount, with
// a real token, bound by the shipped ClusterRole: it syncs and publishes
// the right figures. Then, with one rule taken out of the role, it must say
// so (readiness, self-metrics, log) and publish no figures at all rather
// than figures computed from a cache it could not fill.
func TestLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	admin := adminClient(t)
	ensureNamespace(t)
	objects := renderBase(t)
	account := find[*corev1.ServiceAccount](t, objects)
	role := find[*rbacv1.ClusterRole](t, objects)
	binding := find[*rbacv1.ClusterRoleBinding](t, objects)
	createRBAC(t, admin, account, role, binding)
	ensureWorkload(t, admin)

	t.Run("shipped role: syncs and publishes the figures", func(t *testing.T) {
		syncsWithListAndWatchOnly(t, admin, account, "--namespaces.include="+workloadNamespace)
	})

	t.Run("role without endpointslices: reported, no figures", func(t *testing.T) {
		const name = appName + "-without-endpointslices"
		reduced := role.DeepCopy()
		reduced.Name = name
		reduced.Rules = nil
		for _, rule := range role.Rules {
			rule.Resources = slices.DeleteFunc(slices.Clone(rule.Resources), func(r string) bool { return r == "endpointslices" })
			if len(rule.Resources) > 0 {
				reduced.Rules = append(reduced.Rules, rule)
			}
		}
		if len(reduced.Rules) != len(role.Rules)-1 {
			t.Fatalf("the shipped role has no rule of endpointslices alone to take out: %+v", role.Rules)
		}
		reducedAccount := account.DeepCopy()
		reducedAccount.Name = name
		reducedBinding := binding.DeepCopy()
		reducedBinding.Name = name
		reducedBinding.RoleRef.Name = name
		reducedBinding.Subjects[0].Name = name
		createRBAC(t, admin, reducedAccount, reduced, reducedBinding)

		kubeconfig := tokenKubeconfig(t, admin, reducedAccount.Namespace, reducedAccount.Name)
		e := startExporter(t, kubeconfig, "--namespaces.include="+workloadNamespace)
		// Every check on the same scrape, once the other caches have
		// synced: that is when an exporter that did not wait for all of
		// them would publish figures.
		eventually(t, e, "the missing permission reported, and no figures", func(m map[string]*dto.MetricFamily) error {
			var errs []error
			for _, resource := range []string{"nodes", "pods", "services", "deployments", "statefulsets", "replicasets", "replicationcontrollers", "poddisruptionbudgets"} {
				errs = append(errs, expect(m, "kube_spread_cache_synced", map[string]string{"resource": resource}, 1))
			}
			errs = append(errs, expect(m, "kube_spread_cache_synced", map[string]string{"resource": "endpointslices"}, 0))
			if got, _ := exporterproc.Value(m, "kube_spread_list_watch_errors_total", map[string]string{"resource": "endpointslices"}); got < 1 {
				errs = append(errs, fmt.Errorf("kube_spread_list_watch_errors_total{resource=endpointslices} = %v, want at least 1", got))
			}
			for family := range m {
				if strings.HasPrefix(family, "kube_spread_") && !healthFamilies[family] {
					errs = append(errs, fmt.Errorf("%s published while a cache has not synced", family))
				}
			}
			status, body, err := e.Get(ctx, "/readyz")
			if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, "endpointslices") {
				errs = append(errs, fmt.Errorf("/readyz: status %d %q, err %v; want 503 naming endpointslices", status, body, err))
			}
			if !forbiddenLogged(e.Log(), "endpointslices") {
				errs = append(errs, errors.New(`no log line "list/watch failed" resource=endpointslices ... forbidden`))
			}
			return errors.Join(errs...)
		})
	})
}

// syncsWithListAndWatchOnly runs the exporter with the flags and a token
// of the ServiceAccount, whose RBAC the caller created: it syncs and
// publishes the workload's figures, and the account may list and watch,
// but neither get a single object nor read secrets.
func syncsWithListAndWatchOnly(t *testing.T, admin kubernetes.Interface, account *corev1.ServiceAccount, flags ...string) {
	t.Helper()
	ctx := context.Background()
	web := func(kind string) map[string]string {
		return map[string]string{"namespace": workloadNamespace, "kind": kind, "name": "web"}
	}
	kubeconfig := tokenKubeconfig(t, admin, account.Namespace, account.Name)
	e := startExporter(t, kubeconfig, flags...)
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "the figures of the workload, matching the API server", func(m map[string]*dto.MetricFamily) error {
		ready, nodes, err := readyPods(ctx, admin)
		if err != nil {
			return err
		}
		if ready != 2 {
			return fmt.Errorf("API: %d ready pods, waiting for 2", ready)
		}
		return errors.Join(
			expect(m, "kube_spread_replicas_desired", web("Deployment"), 2),
			expect(m, "kube_spread_replicas_ready", web("Deployment"), 2),
			expect(m, "kube_spread_nodes", web("Deployment"), float64(nodes)),
			// The Service's replicas come from its EndpointSlices.
			expect(m, "kube_spread_replicas_ready", web("Service"), 2),
			expect(m, "kube_spread_nodes", web("Service"), float64(nodes)),
		)
	})

	// The role grants list and watch, and nothing else: no get of a
	// single object, no secrets.
	client := clientFromKubeconfig(t, kubeconfig)
	if _, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list nodes as the ServiceAccount: %v", err)
	}
	if _, err := client.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list poddisruptionbudgets as the ServiceAccount: %v", err)
	}
	if _, err := client.PolicyV1().PodDisruptionBudgets(workloadNamespace).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get poddisruptionbudget as the ServiceAccount: %v, want forbidden", err)
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, "deploy-a", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get node as the ServiceAccount: %v, want forbidden", err)
	}
	if _, err := client.CoreV1().Secrets(workloadNamespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets as the ServiceAccount: %v, want forbidden", err)
	}
}

// healthFamilies are the self-metrics the exporter publishes before its
// caches have synced; everything else of kube_spread_ is a figure.
var healthFamilies = map[string]bool{
	"kube_spread_build_info":                          true,
	"kube_spread_cache_synced":                        true,
	"kube_spread_list_watch_errors_total":             true,
	"kube_spread_cache_last_update_timestamp_seconds": true,
	"kube_spread_min_nodes_annotation_errors_total":   true,
	"kube_spread_api_server_up":                       true,
}

// forbiddenLogged reports whether the log has the watcher's warning about
// a forbidden list or watch of the resource.
func forbiddenLogged(log, resource string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="list/watch failed"`) && strings.Contains(line, "resource="+resource) && strings.Contains(strings.ToLower(line), "forbidden") {
			return true
		}
	}
	return false
}

// createRBAC creates a ServiceAccount, ClusterRole and ClusterRoleBinding
// for real, and deletes them when the test ends.
func createRBAC(t *testing.T, c kubernetes.Interface, account *corev1.ServiceAccount, role *rbacv1.ClusterRole, binding *rbacv1.ClusterRoleBinding) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CoreV1().ServiceAccounts(account.Namespace).Create(ctx, account, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount %s: %v", account.Name, err)
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRole %s: %v", role.Name, err)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRoleBinding %s: %v", binding.Name, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		errs := errors.Join(
			c.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}),
			c.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{}),
			c.CoreV1().ServiceAccounts(account.Namespace).Delete(ctx, account.Name, metav1.DeleteOptions{}),
		)
		if errs != nil {
			t.Errorf("delete RBAC objects: %v", errs)
		}
	})
}

// workload is created once per package: TestLeastPrivilege and the chart's
// least privilege test both run the exporter against it.
var workload struct {
	sync.Mutex
	created bool
}

// ensureWorkload creates the workload of createWorkload the first time
// it is called; a failed creation fails the test, and the next call tries
// again.
func ensureWorkload(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	workload.Lock()
	defer workload.Unlock()
	if !workload.created {
		createWorkload(t, c)
		workload.created = true
	}
}

// createWorkload creates two nodes (kwok runs every node) and a Deployment
// of two replicas behind a Service on them.
func createWorkload(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	const pool = "kube-spread.io/test-pool"
	for _, name := range []string{"deploy-a", "deploy-b"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name,
			pool:                     workloadNamespace,
		}}}
		if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node %s: %v", name, err)
		}
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: workloadNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	_, err := c.AppsV1().Deployments(workloadNamespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{pool: workloadNamespace},
					Containers:   []corev1.Container{{Name: "web", Image: "registry.invalid/web:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CoreV1().Services(workloadNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// readyPods counts the ready pods of the workload and the nodes they are
// on, as the API server has them.
func readyPods(ctx context.Context, c kubernetes.Interface) (ready, nodes int, err error) {
	pods, err := c.CoreV1().Pods(workloadNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return 0, 0, fmt.Errorf("list pods: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, condition := range p.Status.Conditions {
			if condition.Type == corev1.PodReady && condition.Status == corev1.ConditionTrue {
				ready++
				seen[p.Spec.NodeName] = true
			}
		}
	}
	return ready, len(seen), nil
}

// tokenKubeconfig mints a token for the ServiceAccount (TokenRequest, as
// the kubelet does for a pod) and writes a kubeconfig that uses it.
func tokenKubeconfig(t *testing.T, c kubernetes.Interface, namespace, name string) string {
	t.Helper()
	expiration := int64(time.Hour / time.Second)
	token, err := c.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiration}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", namespace, name, err)
	}
	ca := cp.Config.TLSClientConfig.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(cp.Config.TLSClientConfig.CAFile); err != nil {
			t.Fatalf("control plane CA: %v", err)
		}
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["test"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: ca}
	config.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	config.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name}
	config.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return path
}

func clientFromKubeconfig(t *testing.T, path string) kubernetes.Interface {
	t.Helper()
	config, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startExporter runs the exporter with a kubeconfig; it stops when the test
// ends, and its log is printed if the test failed. It does not wait for
// the caches to sync.
func startExporter(t *testing.T, kubeconfig string, flags ...string) *exporterproc.Exporter {
	t.Helper()
	return exporterproc.StartForTest(t, kubeconfig, flags...)
}

// The deploy tests poll /metrics and compare samples with these.
var (
	eventually = exporterproc.Eventually
	expect     = exporterproc.Expect
)
