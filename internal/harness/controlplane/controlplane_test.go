package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	code := controlplane.RunTests(m, &cp)
	// Stop must not leave a component behind. Every component's command
	// line names the working directory, so look for that.
	if cp != nil {
		if left := processesMentioning(cp.Dir); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "processes left behind after Stop:\n%s\n", strings.Join(left, "\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// TestWorkloadsRun checks that the whole chain works: the scheduler places
// the pods of a Deployment on kwok Nodes, kwok makes them Ready, and the
// controller-manager publishes them in the Service's EndpointSlice.
func TestWorkloadsRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := kubernetes.NewForConfigOrDie(cp.Config)

	const ns = "smoke"
	labels := map[string]string{"app": "smoke"}
	create(t, func() error {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	for i := range 2 {
		name := fmt.Sprintf("kwok-node-%d", i)
		create(t, func() error {
			_, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{
					Name: name,
					// kwok manages every Node here (--manage-all-nodes); the
					// annotation only marks the Node as fake for people.
					Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
					Labels:      map[string]string{"kubernetes.io/hostname": name, "type": "kwok"},
				},
			}, metav1.CreateOptions{})
			return err
		})
	}
	replicas := int32(3)
	create(t, func() error {
		_, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "smoke"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "app",
						// kwok runs nothing, so the image is never pulled.
						Image: "registry.invalid/pause:1",
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					}}},
				},
			},
		}, metav1.CreateOptions{})
		return err
	})
	create(t, func() error {
		_, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "smoke"},
			Spec: corev1.ServiceSpec{
				Selector: labels,
				Ports:    []corev1.ServicePort{{Port: 80}},
			},
		}, metav1.CreateOptions{})
		return err
	})

	eventually(ctx, t, "3 scheduled, Running and Ready pods", func() error {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning && podReady(&p) {
				ready++
			}
		}
		if ready != 3 || len(pods.Items) != 3 {
			return fmt.Errorf("%d pods, %d of them scheduled, Running and Ready", len(pods.Items), ready)
		}
		return nil
	})

	eventually(ctx, t, "an EndpointSlice with 3 ready endpoints", func() error {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=smoke",
		})
		if err != nil {
			return err
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && e.NodeName != nil && *e.NodeName != "" {
					ready++
				}
			}
		}
		if ready != 3 {
			return fmt.Errorf("%d EndpointSlices with %d ready endpoints on a node", len(slices.Items), ready)
		}
		return nil
	})
}

// TestKubeconfig checks that the kubeconfig file works on its own.
func TestKubeconfig(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatalf("load %s: %v", cp.Kubeconfig, err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	if _, err := client.CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace kube-system with %s: %v", cp.Kubeconfig, err)
	}
}

// TestRestarts checks that the API server and etcd come back after an outage,
// with their data.
func TestRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := kubernetes.NewForConfigOrDie(cp.Config)
	create(t, func() error {
		_, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor"}}, metav1.CreateOptions{})
		return err
	})
	get := func(ctx context.Context) error {
		_, err := client.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
		return err
	}

	began := time.Now()
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server stopped in %s", time.Since(began).Round(10*time.Millisecond))
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	err := get(short)
	cancelShort()
	if err == nil {
		t.Fatal("the API server answered after StopAPIServer")
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := get(ctx); err != nil {
		t.Fatalf("after the API server restart: %v", err)
	}

	began = time.Now()
	if err := cp.StopEtcd(); err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd stopped in %s", time.Since(began).Round(10*time.Millisecond))
	if err := cp.StartEtcd(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the ConfigMap after the etcd restart", func() error { return get(ctx) })
}

// TestSchedulerPause checks that a pod created while the scheduler is
// stopped waits, unlooked at, and is taken up once it starts again.
func TestSchedulerPause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := kubernetes.NewForConfigOrDie(cp.Config)
	if err := cp.StopScheduler(); err != nil {
		t.Fatal(err)
	}
	// No node has this label: the scheduler's only possible answer is
	// Unschedulable, which shows that it looked at the pod.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "waits-for-the-scheduler", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kube-spread.io/test": "no-such-node"},
			Containers:   []corev1.Container{{Name: "app", Image: "registry.invalid/pause:1"}},
		},
	}
	create(t, func() error {
		_, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	scheduled := func() (corev1.PodCondition, error) {
		got, err := client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return corev1.PodCondition{}, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				return c, nil
			}
		}
		return corev1.PodCondition{}, nil
	}
	// The scheduler answers in milliseconds; a second of silence is enough.
	time.Sleep(time.Second)
	if c, err := scheduled(); err != nil || c.Type != "" {
		t.Fatalf("pod looked at while the scheduler was stopped: %+v, %v", c, err)
	}
	if err := cp.StartScheduler(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the pod marked Unschedulable by the restarted scheduler", func() error {
		c, err := scheduled()
		if err != nil {
			return err
		}
		if c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
			return fmt.Errorf("PodScheduled %+v", c)
		}
		return nil
	})
	if err := client.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
}

// TestAPIServerOnly checks the mode of the scale harness: only etcd and
// kube-apiserver run, with the extra flags, and pods are accepted in the
// default namespace at once.
func TestAPIServerOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	only, err := controlplane.Start(ctx, controlplane.Options{
		APIServerOnly: true,
		ExtraArgs:     map[string][]string{controlplane.Etcd: {"--quota-backend-bytes=4294967296"}},
		ExtraEnv:      map[string][]string{controlplane.KubeAPIServer: {"KSE_TEST_MARKER=apiserver"}},
		Logf:          t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := only.Stop(); err != nil {
			t.Error(err)
		}
		if left := processesMentioning(only.Dir); len(left) > 0 {
			t.Errorf("processes left behind after Stop:\n%s", strings.Join(left, "\n"))
		}
	}()

	running := processesMentioning(only.Dir)
	if len(running) != 2 {
		t.Errorf("want etcd and kube-apiserver only, running:\n%s", strings.Join(running, "\n"))
	}
	for _, want := range []string{"/etcd ", "/kube-apiserver "} {
		if !slices.ContainsFunc(running, func(line string) bool { return strings.Contains(line, want) }) {
			t.Errorf("no %s among:\n%s", strings.Trim(want, "/ "), strings.Join(running, "\n"))
		}
	}
	if !slices.ContainsFunc(running, func(line string) bool { return strings.Contains(line, "--quota-backend-bytes=4294967296") }) {
		t.Errorf("the extra etcd flag is not on its command line:\n%s", strings.Join(running, "\n"))
	}

	if !slices.ContainsFunc(processesWithEnv("KSE_TEST_MARKER=apiserver"), func(line string) bool { return strings.Contains(line, only.Dir) }) {
		t.Error("the extra environment variable is not in kube-apiserver's environment")
	}

	client := kubernetes.NewForConfigOrDie(only.Config)
	create(t, func() error {
		_, err := client.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "bound"},
			Spec: corev1.PodSpec{
				NodeName:   "nowhere",
				Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/pause:1"}},
			},
		}, metav1.CreateOptions{})
		return err
	})
}

func create(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// eventually polls check until it succeeds or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, check func() error) {
	t.Helper()
	began := time.Now()
	for {
		err := check()
		if err == nil {
			t.Logf("%s after %s", what, time.Since(began).Round(10*time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// processesMentioning returns the command lines of the processes whose
// command line contains s.
func processesMentioning(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		line := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(line, s) {
			found = append(found, e.Name()+": "+line)
		}
	}
	return found
}

// processesWithEnv returns the command lines of the processes whose
// environment holds the variable v (NAME=value).
func processesWithEnv(v string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(environ), "\x00"), v) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}
