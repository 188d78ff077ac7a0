package fidelity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Bounds of the waits on the control plane. kwok and the scheduler react in
// milliseconds; the margins are for two loaded cores.
const (
	// quietFor is how long a state must hold before it counts as settled.
	// A pod the scheduler found unschedulable is retried on cluster events
	// after a backoff of one second, doubling per attempt: a state that
	// holds for five seconds after the last change is the scheduler's last
	// word on the pods of a case, which change nothing after that.
	quietFor = 5 * time.Second
	// controllersQuietFor is the same while the scheduler is stopped: once
	// every deleted pod has its replacement the controllers create no more.
	controllersQuietFor = time.Second
	pollInterval        = 250 * time.Millisecond
	// settleTimeout bounds each wait for pods to be placed or given up on.
	settleTimeout = 2 * time.Minute
	// settleRounds bounds how often Settle scales workloads down to what
	// fits before it gives up.
	settleRounds = 6
)

// Runner creates cases on a control plane and observes what the scheduler
// does with them.
type Runner struct {
	Client kubernetes.Interface
	// Scheduler, when set, is stopped while TakeDown deletes the batch's
	// pods and started once every replacement exists, so that the
	// scheduler takes the replacements in a known order (see TakeDown).
	Scheduler SchedulerControl
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// SchedulerControl stops and starts kube-scheduler
// (*controlplane.ControlPlane does).
type SchedulerControl interface {
	StopScheduler() error
	StartScheduler(context.Context) error
}

func (r *Runner) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// Placement is where the pods of one workload are, as the API server says.
type Placement struct {
	// Running counts the Running and Ready pods per node.
	Running map[string]int
	// Unschedulable counts the Pending pods the scheduler marked
	// PodScheduled=False, reason Unschedulable.
	Unschedulable int
	// Waiting counts the pods the scheduler has not looked at yet.
	Waiting int
	// InProgress names the other pods: terminating, or bound but not yet
	// Running.
	InProgress []string
}

// RunningTotal counts the Running pods, or those on nodes outside skip.
func (p *Placement) RunningTotal(skip ...string) int {
	total := 0
	for node, n := range p.Running {
		if !slices.Contains(skip, node) {
			total += n
		}
	}
	return total
}

// Observed maps a workload's name to its placement.
type Observed map[string]*Placement

// Occupied returns the nodes that hold a Running pod.
func (o Observed) Occupied() map[string]bool {
	nodes := map[string]bool{}
	for _, p := range o {
		for node, n := range p.Running {
			if n > 0 {
				nodes[node] = true
			}
		}
	}
	return nodes
}

// Create creates the case's namespace and nodes, waits until kwok has made
// every node Ready and the node lifecycle controller has lifted its
// not-ready taint, then creates the workloads. Creating pods before that
// would pile them onto the first node that is ready.
func (r *Runner) Create(ctx context.Context, c *Case) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace}}
	if _, err := r.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", c.Namespace, err)
	}
	if err := r.CreateNodes(ctx, c.Nodes); err != nil {
		return err
	}
	if err := r.waitServiceAccount(ctx, c.Namespace); err != nil {
		return err
	}
	for _, w := range c.Workloads {
		var err error
		if w.Deployment != nil {
			_, err = r.Client.AppsV1().Deployments(c.Namespace).Create(ctx, w.Deployment, metav1.CreateOptions{})
		} else {
			_, err = r.Client.AppsV1().StatefulSets(c.Namespace).Create(ctx, w.StatefulSet, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("create %s %s/%s: %w", w.Kind(), c.Namespace, w.Name(), err)
		}
	}
	return nil
}

// CreateNodes creates nodes with the status they carry (allocatable,
// capacity, images: the API server keeps a new Node's status, as it does
// for a kubelet registering) and waits until they are Ready with no taint
// but their own.
func (r *Runner) CreateNodes(ctx context.Context, nodes []*corev1.Node) error {
	for _, node := range nodes {
		if _, err := r.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	return poll(ctx, time.Minute, "nodes Ready without the not-ready taint", func(ctx context.Context) error {
		var notReady []string
		for _, want := range nodes {
			node, err := r.Client.CoreV1().Nodes().Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil || !NodeReady(node) || len(node.Spec.Taints) != len(want.Spec.Taints) {
				notReady = append(notReady, want.Name)
			}
		}
		if len(notReady) > 0 {
			return fmt.Errorf("not yet: %s", strings.Join(notReady, ", "))
		}
		return nil
	})
}

// waitServiceAccount waits for the namespace's default ServiceAccount,
// without which the API server refuses the controllers' pods.
func (r *Runner) waitServiceAccount(ctx context.Context, namespace string) error {
	return poll(ctx, time.Minute, "ServiceAccount "+namespace+"/default", func(ctx context.Context) error {
		_, err := r.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// Observe lists the case's pods and sums them up per workload.
func (r *Runner) Observe(ctx context.Context, c *Case) (Observed, error) {
	pods, err := r.Client.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", c.Namespace, err)
	}
	observed := Observed{}
	for _, w := range c.Workloads {
		observed[w.Name()] = &Placement{Running: map[string]int{}}
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		p := observed[pod.Labels[AppLabel]]
		if p == nil {
			continue
		}
		switch {
		case pod.DeletionTimestamp != nil:
			p.InProgress = append(p.InProgress, pod.Name+" (terminating)")
		case pod.Spec.NodeName != "" && pod.Status.Phase == corev1.PodRunning && podCondition(pod, corev1.PodReady) == corev1.ConditionTrue:
			p.Running[pod.Spec.NodeName]++
		case pod.Spec.NodeName == "" && unschedulable(pod):
			p.Unschedulable++
		case pod.Spec.NodeName == "":
			p.Waiting++
		default:
			p.InProgress = append(p.InProgress, fmt.Sprintf("%s (on %s, %s)", pod.Name, pod.Spec.NodeName, pod.Status.Phase))
		}
	}
	return observed, nil
}

// Settle waits until every pod of the case is Running, or the scheduler has
// given up on it. Pods it cannot place are not part of the question (the
// what-if is about the pods that run), so workloads with such pods are
// scaled down to the pods that run, until every pod runs. It returns the
// placement and the replicas each workload ends with.
func (r *Runner) Settle(ctx context.Context, c *Case) (Observed, map[string]int, error) {
	replicas := map[string]int{}
	for _, w := range c.Workloads {
		replicas[w.Name()] = int(w.Replicas())
	}
	for round := range settleRounds {
		observed, err := r.waitQuiet(ctx, c, quietFor, "every pod Running or Unschedulable", func(o Observed) error {
			return settled(o, replicas, nil)
		})
		if err != nil {
			return nil, nil, err
		}
		var scaled []string
		for _, w := range c.Workloads {
			p := observed[w.Name()]
			if p.Unschedulable == 0 {
				continue
			}
			replicas[w.Name()] = p.RunningTotal()
			if err := r.scale(ctx, c.Namespace, w, p.RunningTotal()); err != nil {
				return nil, nil, err
			}
			scaled = append(scaled, fmt.Sprintf("%s to %d", w.Name(), p.RunningTotal()))
		}
		if len(scaled) == 0 {
			return observed, replicas, nil
		}
		r.logf("seed %d, round %d: scaled down what the scheduler could not place: %s", c.Seed, round+1, strings.Join(scaled, ", "))
	}
	return nil, nil, fmt.Errorf("seed %d: pods still unschedulable after %d rounds of scaling down", c.Seed, settleRounds)
}

func (r *Runner) scale(ctx context.Context, namespace string, w Workload, replicas int) error {
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	var err error
	if w.Deployment != nil {
		_, err = r.Client.AppsV1().Deployments(namespace).Patch(ctx, w.Name(), types.MergePatchType, patch, metav1.PatchOptions{})
	} else {
		_, err = r.Client.AppsV1().StatefulSets(namespace).Patch(ctx, w.Name(), types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		return fmt.Errorf("scale %s %s/%s to %d: %w", w.Kind(), namespace, w.Name(), replicas, err)
	}
	return nil
}

// TakeDown does what a maintenance does to the batch: cordon every node,
// then delete its pods at once (grace period zero: kwok runs nothing that
// needs to stop). It then waits until the controllers have replaced every
// deleted pod and the scheduler has placed each replacement or marked it
// Unschedulable, and returns that placement.
//
// Where displaced pods compete for the same room, how many of each service
// fit depends on the order the scheduler takes them in, which in a real
// drain is the order the controllers happen to recreate them. With
// Runner.Scheduler set, the scheduler is stopped while the pods are deleted
// and replaced, and started once every replacement exists: it then takes
// them in the order it lists them, by name, which is the placement model's
// documented order (namespace, owner, pod name). A disagreement is then
// about the model's filters and scores, not about a race.
func (r *Runner) TakeDown(ctx context.Context, c *Case, batch []string, replicas map[string]int) (Observed, error) {
	if r.Scheduler != nil {
		if err := r.Scheduler.StopScheduler(); err != nil {
			return nil, fmt.Errorf("stop the scheduler: %w", err)
		}
		started := false
		defer func() {
			// Whatever failed, the next case needs a scheduler.
			if !started {
				if err := r.Scheduler.StartScheduler(context.Background()); err != nil {
					r.logf("start the scheduler after a failed take-down: %v", err)
				}
			}
		}()
		if err := r.deleteBatchPods(ctx, c, batch); err != nil {
			return nil, err
		}
		_, err := r.waitQuiet(ctx, c, controllersQuietFor, "every displaced pod replaced while the scheduler is stopped", func(o Observed) error {
			return replaced(o, replicas, batch)
		})
		if err != nil {
			return nil, err
		}
		started = true
		if err := r.Scheduler.StartScheduler(ctx); err != nil {
			return nil, fmt.Errorf("start the scheduler: %w", err)
		}
	} else if err := r.deleteBatchPods(ctx, c, batch); err != nil {
		return nil, err
	}
	return r.waitQuiet(ctx, c, quietFor, "every displaced pod replaced, and the replacement Running or Unschedulable", func(o Observed) error {
		return settled(o, replicas, batch)
	})
}

// deleteBatchPods cordons the batch and deletes the case's pods on it.
func (r *Runner) deleteBatchPods(ctx context.Context, c *Case, batch []string) error {
	if err := Cordon(ctx, r.Client, batch...); err != nil {
		return err
	}
	pods, err := r.Client.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", c.Namespace, err)
	}
	for _, pod := range pods.Items {
		if !slices.Contains(batch, pod.Spec.NodeName) {
			continue
		}
		err := r.Client.CoreV1().Pods(c.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", c.Namespace, pod.Name, err)
		}
	}
	return nil
}

// Cordon marks nodes unschedulable, as kubectl cordon does.
func Cordon(ctx context.Context, client kubernetes.Interface, nodes ...string) error {
	for _, name := range nodes {
		if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("cordon %s: %w", name, err)
		}
	}
	return nil
}

// Cleanup deletes the case's namespace and nodes and waits until they are
// gone, so the next case starts from an empty cluster.
func (r *Runner) Cleanup(ctx context.Context, c *Case) error {
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return DeleteAndWait(ctx, r.Client, c.Namespace, names)
}

// DeleteAndWait deletes a namespace, waits until it is gone (its pods
// first), then deletes the nodes and waits until they are gone too.
func DeleteAndWait(ctx context.Context, client kubernetes.Interface, namespace string, nodes []string) error {
	err := client.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", namespace, err)
	}
	err = poll(ctx, 2*time.Minute, "namespace "+namespace+" deleted", func(ctx context.Context) error {
		_, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.New("still there")
	})
	if err != nil {
		return err
	}
	return DeleteNodes(ctx, client, nodes...)
}

// DeleteNodes deletes nodes and waits until they are gone.
func DeleteNodes(ctx context.Context, client kubernetes.Interface, nodes ...string) error {
	for _, name := range nodes {
		if err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete node %s: %w", name, err)
		}
	}
	return poll(ctx, time.Minute, "nodes deleted", func(ctx context.Context) error {
		var left []string
		for _, name := range nodes {
			if _, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, name)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("still there: %s", strings.Join(left, ", "))
		}
		return nil
	})
}

// settled returns nil when every workload has its replicas, each Running
// on a node outside gone or Unschedulable, and nothing in progress.
func settled(o Observed, replicas map[string]int, gone []string) error {
	return eachWorkload(o, replicas, gone, func(p *Placement, want, running, onGone int) bool {
		return running+p.Unschedulable == want && p.Waiting == 0 && len(p.InProgress) == 0 && onGone == 0
	})
}

// replaced returns nil when every pod on gone has been deleted and
// replaced by one the scheduler has not looked at yet.
func replaced(o Observed, replicas map[string]int, gone []string) error {
	return eachWorkload(o, replicas, gone, func(p *Placement, want, running, onGone int) bool {
		return running+p.Waiting+p.Unschedulable == want && len(p.InProgress) == 0 && onGone == 0
	})
}

// eachWorkload returns an error naming every workload whose placement ok
// refuses.
func eachWorkload(o Observed, replicas map[string]int, gone []string, ok func(p *Placement, want, running, onGone int) bool) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(replicas)) {
		p, want := o[name], replicas[name]
		running := p.RunningTotal(gone...)
		onGone := p.RunningTotal() - running
		if !ok(p, want, running, onGone) {
			errs = append(errs, fmt.Errorf("%s: want %d replicas: %d Running, %d Running on a gone node, %d Unschedulable, %d not yet looked at by the scheduler, in progress: [%s]",
				name, want, running, onGone, p.Unschedulable, p.Waiting, strings.Join(p.InProgress, ", ")))
		}
	}
	return errors.Join(errs...)
}

// waitQuiet polls the case's pods until check has passed, with the same
// placement, for quiet; it fails after settleTimeout with check's last
// complaint.
func (r *Runner) waitQuiet(ctx context.Context, c *Case, quiet time.Duration, what string, check func(Observed) error) (Observed, error) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	var (
		last       error
		since      time.Time
		stable     Observed
		stableText string
	)
	for {
		observed, err := r.Observe(ctx, c)
		if err == nil {
			err = check(observed)
		}
		switch {
		case err != nil:
			last, stable, stableText = err, nil, ""
		case stable == nil || describe(observed) != stableText:
			last, stable, stableText, since = nil, observed, describe(observed), time.Now()
		case time.Since(since) >= quiet:
			return stable, nil
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = errors.New("the placement kept changing")
			}
			return nil, fmt.Errorf("seed %d: waiting %s for %s: %w", c.Seed, settleTimeout, what, last)
		case <-time.After(pollInterval):
		}
	}
}

// describe renders a placement in a stable order, to compare snapshots and
// to print them.
func describe(o Observed) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(o)) {
		p := o[name]
		fmt.Fprintf(&b, "%s:", name)
		for _, node := range slices.Sorted(maps.Keys(p.Running)) {
			fmt.Fprintf(&b, " %s=%d", node, p.Running[node])
		}
		if p.Unschedulable > 0 {
			fmt.Fprintf(&b, " unschedulable=%d", p.Unschedulable)
		}
		b.WriteString("; ")
	}
	return b.String()
}

// poll calls check until it returns nil, failing after timeout with its
// last error.
func poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
		case <-time.After(pollInterval):
		}
	}
}

// NodeReady says whether the node's Ready condition is True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

// unschedulable says whether the scheduler gave up on the pod for now.
func unschedulable(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}
