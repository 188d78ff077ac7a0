// Package replay replays the mathoid incident of 2018-07-04 on a cluster:
// four nodes kubernetes2001..2004, a Deployment and Service mathoid with
// four replicas. On day one 2003 and 2004 are reimaged (cordoned, their
// pods deleted): the scheduler moves every replica to 2001 and 2002, and
// nothing moves them back when 2003 and 2004 return. On day two 2001 and
// 2002 are cordoned together, and no surviving node holds a replica.
//
// Each node lists the container images it holds (status.images), as a
// kubelet reports them: every node has run mathoid before the replay and
// holds its image, and a reimage wipes a node's images. After day one
// 2003 and 2004 are pristine: replicas moved there must pull mathoid first,
// the slow recovery of the incident report.
//
// The demo (cmd/mathoid-replay) and the integration tests run the same
// steps, so the demo shows what the tests prove.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const (
	// Namespace and Name of the mathoid Deployment and Service.
	Namespace = "mathoid"
	Name      = "mathoid"
	// Replicas is mathoid's replica count in codfw.
	Replicas = 4
	// PoolLabel keeps the replay's pods on the replay's nodes when other
	// tests share the cluster.
	PoolLabel = "kube-spread.io/test-pool"
	pool      = "mathoid"
)

// Nodes are the codfw Kubernetes nodes of the incident.
var Nodes = []string{"kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"}

// Image is mathoid's container image.
const Image = "registry.invalid/wikimedia/mathoid:2018-07-03"

// Images a node reports: a freshly imaged node holds only the pause image,
// which the node's setup pulls; a node that has run mathoid holds its image
// too. Sizes are of the order of the real images.
var (
	PristineImages = []corev1.ContainerImage{{Names: []string{"registry.invalid/pause:3.1"}, SizeBytes: 742472}}
	MathoidImages  = append(slices.Clone(PristineImages), corev1.ContainerImage{Names: []string{Image}, SizeBytes: 389 << 20})
)

// Scenario drives the replay against a cluster whose nodes are simulated
// by kwok and whose pods are placed by the real scheduler.
type Scenario struct {
	Client kubernetes.Interface
	// Logf reports each step; nil is silent.
	Logf func(format string, args ...any)
}

func (s *Scenario) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Setup creates the four nodes, the Deployment and the Service, and waits
// until all four replicas are Ready.
func (s *Scenario) Setup(ctx context.Context) error {
	s.logf("creating nodes %s, Deployment and Service %s/%s with %d replicas", strings.Join(Nodes, ", "), Namespace, Name, Replicas)
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	for i, name := range Nodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				// kwok simulates the kubelet; the annotation marks the node as
				// fake for people reading the cluster.
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					// Two rows, as two racks of codfw.
					"topology.kubernetes.io/zone": fmt.Sprintf("codfw-row-%c", 'a'+i%2),
					PoolLabel:                     pool,
				},
			},
			// The API server keeps the status of a new Node, as for a kubelet
			// registering, and kwok's node stages leave images alone.
			Status: corev1.NodeStatus{Images: slices.Clone(MathoidImages)},
		}
		if _, err := s.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	// Pods created before every node is Ready, and rid of the not-ready
	// taint the node lifecycle controller sets, would all land on the
	// first node that is.
	if err := s.waitNodesReady(ctx); err != nil {
		return err
	}
	labels := map[string]string{"app": Name}
	replicas := int32(Replicas)
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{PoolLabel: pool},
					// One replica per node at first, so the replay starts from
					// the same placement every time. Nodes that are cordoned
					// (tainted unschedulable) are left out of the count, so day
					// one can still place all four on 2001 and 2002; like every
					// scheduling rule it acts only when a pod is placed, and
					// nothing rebalances afterwards.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       "kubernetes.io/hostname",
						WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
						NodeTaintsPolicy:  ptr.To(corev1.NodeInclusionPolicyHonor),
					}},
					Containers: []corev1.Container{{
						Name: Name,
						// kwok runs nothing, so the image is never pulled.
						Image: Image,
						Ports: []corev1.ContainerPort{{ContainerPort: 10044}},
					}},
				},
			},
		},
	}
	if _, err := s.Client.AppsV1().Deployments(Namespace).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: Name},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 10044}}},
	}
	if _, err := s.Client.CoreV1().Services(Namespace).Create(ctx, service, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	placement, err := s.waitReady(ctx, Nodes)
	if err != nil {
		return err
	}
	s.logf("the scheduler placed the replicas: %s", placement)
	return nil
}

// DayOne reimages 2003 and 2004: cordoned, their pods deleted, then back in
// service. Every replica ends on 2001 and 2002, and stays there.
func (s *Scenario) DayOne(ctx context.Context) error {
	reimaged := []string{"kubernetes2003", "kubernetes2004"}
	s.logf("day one: reimaging %s (cordon, delete their pods)", strings.Join(reimaged, " and "))
	if err := s.Cordon(ctx, true, reimaged...); err != nil {
		return err
	}
	if err := s.deletePodsOn(ctx, reimaged...); err != nil {
		return err
	}
	if err := s.SetImages(ctx, PristineImages, reimaged...); err != nil {
		return err
	}
	placement, err := s.waitReady(ctx, []string{"kubernetes2001", "kubernetes2002"})
	if err != nil {
		return err
	}
	s.logf("the scheduler moved the replicas: %s", placement)
	if err := s.Cordon(ctx, false, reimaged...); err != nil {
		return err
	}
	s.logf("%s are back in service; Kubernetes does not rebalance, so nothing moves", strings.Join(reimaged, " and "))
	return nil
}

// DayTwo cordons 2001 and 2002 together, the step that took mathoid down.
// The pods are still running: this is the moment a page can still help.
func (s *Scenario) DayTwo(ctx context.Context) error {
	s.logf("day two: cordoning kubernetes2001 and kubernetes2002 together, before their reimage")
	return s.Cordon(ctx, true, "kubernetes2001", "kubernetes2002")
}

// Cordon sets or clears spec.unschedulable on the nodes.
func (s *Scenario) Cordon(ctx context.Context, unschedulable bool, nodes ...string) error {
	patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, unschedulable)
	for _, name := range nodes {
		if _, err := s.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("cordon %s (unschedulable=%t): %w", name, unschedulable, err)
		}
	}
	return nil
}

// SetImages sets the images the nodes report, through the status
// subresource, as a kubelet does after pulling or after a reimage.
func (s *Scenario) SetImages(ctx context.Context, images []corev1.ContainerImage, nodes ...string) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"images": images}})
	if err != nil {
		return err
	}
	for _, name := range nodes {
		// A merge patch replaces the list whole, and needs no resourceVersion
		// that kwok's heartbeats would keep changing.
		if _, err := s.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			return fmt.Errorf("set the images of %s: %w", name, err)
		}
	}
	return nil
}

func (s *Scenario) deletePodsOn(ctx context.Context, nodes ...string) error {
	pods, err := s.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for _, pod := range pods.Items {
		if !slices.Contains(nodes, pod.Spec.NodeName) {
			continue
		}
		// Grace period 0: kwok does not run the pod, and the replay should
		// not wait for a termination nothing performs.
		err := s.Client.CoreV1().Pods(Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s: %w", pod.Name, err)
		}
	}
	return nil
}

// waitReady waits until exactly Replicas pods exist, all Ready on the
// allowed nodes, and returns their placement.
func (s *Scenario) waitReady(ctx context.Context, allowed []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		placement, err := s.placement(ctx, allowed)
		if err == nil {
			return placement, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %d Ready replicas on %s: %w", Replicas, strings.Join(allowed, ", "), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Scenario) placement(ctx context.Context, allowed []string) (string, error) {
	pods, err := s.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	perNode := make(map[string]int)
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp != nil || !podReady(&pod) || !slices.Contains(allowed, pod.Spec.NodeName) {
			return "", fmt.Errorf("pod %s on %q not yet Ready where allowed", pod.Name, pod.Spec.NodeName)
		}
		perNode[pod.Spec.NodeName]++
	}
	if len(pods.Items) != Replicas {
		return "", fmt.Errorf("%d pods, want %d", len(pods.Items), Replicas)
	}
	var parts []string
	for _, node := range Nodes {
		if n := perNode[node]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", node, n))
		}
	}
	return strings.Join(parts, " "), nil
}

// waitNodesReady waits until kwok reports every node Ready and the node
// lifecycle controller has removed the node.kubernetes.io/not-ready taint.
func (s *Scenario) waitNodesReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		notReady := []string{}
		for _, name := range Nodes {
			node, err := s.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !nodeReady(node) || len(node.Spec.Taints) > 0 {
				notReady = append(notReady, name)
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not Ready: %s", strings.Join(notReady, ", "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
