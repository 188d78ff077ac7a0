package fidelity

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
)

// TestPDBBlocksDrainWherePredicted asks the what-if which budgets a batch's
// evictions would exceed, then drains the batch through the Eviction API
// as kubectl drain does, and checks that the API server refuses exactly
// the evictions beyond each budget's allowance: needed - allowed of them,
// none where the budget allows them all.
//
// Every service here keeps one replica per node (required anti-affinity),
// so the replacement of an evicted replica cannot be scheduled while the
// batch is cordoned and cannot restore the budget between two evictions:
// the outcome depends on the budget alone, not on how fast the
// controllers react.
func TestPDBBlocksDrainWherePredicted(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	const namespace = "fidelity-pdb"
	nodes := make([]*corev1.Node, 4)
	var names []string
	for i := range nodes {
		name := fmt.Sprintf("pdb-n%d", i+1)
		names = append(names, name)
		allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
		nodes[i] = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels: map[string]string{CaseLabel: "pdb", hostnameLabel: name, zoneLabel: "zone-a"}},
			Status: corev1.NodeStatus{Allocatable: allocatable, Capacity: allocatable.DeepCopy()},
		}
	}
	batch := names[:2]
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteAndWait(context.Background(), c, namespace, names); err != nil {
			t.Error(err)
		}
	})
	runner := &Runner{Client: c, Logf: t.Logf}
	if err := runner.CreateNodes(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	if err := runner.waitServiceAccount(ctx, namespace); err != nil {
		t.Fatal(err)
	}

	// guarded may lose one replica of four, and the batch holds two: its
	// drain blocks. relaxed may lose two, and loses two: its drain passes.
	budgets := []struct {
		name    string
		budget  policyv1.PodDisruptionBudgetSpec
		allowed int
	}{
		{name: "guarded", budget: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(3))}, allowed: 1},
		{name: "relaxed", budget: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(2))}, allowed: 2},
	}
	c2 := &Case{Seed: 0, Namespace: namespace}
	for _, b := range budgets {
		labels := map[string]string{AppLabel: b.name}
		deployment := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: namespace},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](4),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector:                  map[string]string{CaseLabel: "pdb"},
						TerminationGracePeriodSeconds: ptr.To[int64](0),
						Containers:                    []corev1.Container{{Name: b.name, Image: "fidelity.invalid/" + b.name + ":1"}},
						Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
							RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
								LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: hostnameLabel,
							}},
						}},
					},
				},
			},
		}
		if _, err := c.AppsV1().Deployments(namespace).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		spec := b.budget
		spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: namespace}, Spec: spec}
		if _, err := c.PolicyV1().PodDisruptionBudgets(namespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c2.Workloads = append(c2.Workloads, Workload{Deployment: deployment})
	}
	before, replicas, err := runner.Settle(ctx, c2)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range replicas {
		if n != 4 {
			t.Fatalf("%s: %d replicas run, want 4, one per node: %s", name, n, describe(before))
		}
	}
	// The disruption controller must have counted the healthy pods before
	// the budgets mean anything.
	for _, b := range budgets {
		err := poll(ctx, settleTimeout, "PodDisruptionBudget "+b.name+" observed", func(ctx context.Context) error {
			pdb, err := c.PolicyV1().PodDisruptionBudgets(namespace).Get(ctx, b.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pdb.Status.ObservedGeneration != pdb.Generation || int(pdb.Status.DisruptionsAllowed) != b.allowed {
				return fmt.Errorf("observed generation %d of %d, %d disruptions allowed, want %d",
					pdb.Status.ObservedGeneration, pdb.Generation, pdb.Status.DisruptionsAllowed, b.allowed)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	e := exporterproc.ForTest(t, cp.Kubeconfig)
	var answer *Answer
	err = poll(ctx, settleTimeout, "a what-if answer with both services", func(ctx context.Context) error {
		if answer, _, err = AskWhatIf(ctx, e, batch); err != nil {
			return err
		}
		for _, b := range budgets {
			if s := answer.Service(namespace, "Deployment", b.name); s == nil || s.Now.Replicas != 4 {
				return fmt.Errorf("Deployment %s not in the answer with 4 replicas", b.name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Drain: cordon the batch, then evict its pods one at a time in name
	// order, as kubectl drain would, each once.
	if err := Cordon(ctx, c, batch...); err != nil {
		t.Fatal(err)
	}
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	refused := map[string]int{}
	onBatch := map[string]int{}
	for _, pod := range pods.Items {
		if !slices.Contains(batch, pod.Spec.NodeName) {
			continue
		}
		app := pod.Labels[AppLabel]
		onBatch[app]++
		eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: namespace}}
		err := c.CoreV1().Pods(namespace).EvictV1(ctx, eviction)
		switch {
		case err == nil:
			t.Logf("evicted %s from %s", pod.Name, pod.Spec.NodeName)
		case apierrors.IsTooManyRequests(err):
			t.Logf("eviction of %s from %s refused: %v", pod.Name, pod.Spec.NodeName, err)
			refused[app]++
		default:
			t.Fatalf("evict %s: %v", pod.Name, err)
		}
	}

	for _, b := range budgets {
		s := answer.Service(namespace, "Deployment", b.name)
		if onBatch[b.name] != 2 {
			t.Fatalf("%s: %d pods on the batch, want 2 (one per node)", b.name, onBatch[b.name])
		}
		if s.PDB == nil && s.Placement == nil {
			t.Errorf("Deployment %s: %s", b.name, ErrNoPlacement)
			continue
		}
		// A budget the batch does not exceed may be listed or left out.
		predictedRefusals := 0
		for _, p := range s.PDB {
			if p.Name != b.name {
				t.Errorf("Deployment %s: budget %q predicted, want %q", b.name, p.Name, b.name)
				continue
			}
			if p.Allowed != b.allowed || p.Needed != onBatch[b.name] {
				t.Errorf("Deployment %s: predicted allowed %d, needed %d; the API server allows %d, the batch holds %d",
					b.name, p.Allowed, p.Needed, b.allowed, onBatch[b.name])
			}
			predictedRefusals += max(0, p.Needed-p.Allowed)
		}
		if predictedRefusals != refused[b.name] {
			t.Errorf("Deployment %s: predicted %d evictions refused (pdb %+v), the API server refused %d of %d",
				b.name, predictedRefusals, s.PDB, refused[b.name], onBatch[b.name])
		}
	}
	if refused["guarded"] != 1 || refused["relaxed"] != 0 {
		t.Errorf("the API server refused %v evictions, want guarded 1, relaxed 0: the case does not test what it means to", refused)
	}
}
