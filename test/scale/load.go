package scale

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// loaderClient is a client for bulk loading: protobuf is several times
// cheaper than JSON for the API server to decode, and the client-side rate
// limit is lifted because the workers bound the concurrency themselves. It
// authenticates with token instead of the admin client certificate, which
// the API server would verify on every request.
func loaderClient(config *rest.Config, token string) (kubernetes.Interface, error) {
	config = rest.CopyConfig(config)
	config.CertData, config.KeyData, config.CertFile, config.KeyFile = nil, nil, "", ""
	config.BearerToken = token
	config.ContentType = "application/vnd.kubernetes.protobuf"
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.QPS, config.Burst = -1, 0 // no client-side limit
	config.Timeout = time.Minute
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("loader client: %w", err)
	}
	return client, nil
}

// parallel runs job(i) for i in [0, n) on workers goroutines and returns
// the first error. A failed request is retried a few times: a loaded API
// server answers 429 or times out now and then.
func parallel(ctx context.Context, n, workers int, job func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := retry(ctx, func() error { return job(ctx, i) }); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 5 {
		if err = f(); err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsTooManyRequests(err) && !apierrors.IsServerTimeout(err) && !apierrors.IsTimeout(err) &&
			!apierrors.IsInternalError(err) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// progressEvery is how often load reports how far a step is.
const progressEvery = 30 * time.Second

// load creates every object of the synthetic cluster. Pods are created
// bound (spec.nodeName set), so no scheduler is involved, and their status
// is then written through the status subresource as a kubelet would: the
// API server resets the status of a pod on create. Nodes likewise get their
// Ready condition through the status subresource, and EndpointSlices are
// created directly, as the endpointslice controller would.
func load(ctx context.Context, client kubernetes.Interface, c *synth.Cluster, workers int, logf func(string, ...any)) error {
	create := metav1.CreateOptions{}
	update := metav1.UpdateOptions{}
	step := func(what string, n int, job func(ctx context.Context, i int) error) error {
		began := time.Now()
		// At full size the pods take minutes: say how far they are.
		var done atomic.Int64
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(progressEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					d, elapsed := done.Load(), time.Since(began)
					logf("... %d of %d %s in %s (%.0f/s)", d, n, what, elapsed.Round(time.Second), float64(d)/elapsed.Seconds())
				}
			}
		}()
		err := parallel(ctx, n, workers, func(ctx context.Context, i int) error {
			err := job(ctx, i)
			if err == nil {
				done.Add(1)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("load %s: %w", what, err)
		}
		elapsed := time.Since(began)
		logf("loaded %d %s in %s (%.0f/s)", n, what, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
		return nil
	}
	err := step("namespaces", len(c.Namespaces), func(ctx context.Context, i int) error {
		ns := c.Namespaces[i]
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		// No controller-manager runs to create it, and the ServiceAccount
		// admission plugin refuses pods without it.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service account %s/default: %w", ns, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = step("nodes", len(c.Nodes), func(ctx context.Context, i int) error {
		node := c.Nodes[i]
		created, err := client.CoreV1().Nodes().Create(ctx, node, create)
		if apierrors.IsAlreadyExists(err) {
			created, err = client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
		created.Status = node.Status
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, update); err != nil {
			return fmt.Errorf("set status of node %s: %w", node.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = step("workloads, services and endpointslices", len(c.Services), func(ctx context.Context, i int) error {
		s := c.Services[i]
		if s.Deployment != nil {
			if _, err := client.AppsV1().Deployments(s.Namespace).Create(ctx, s.Deployment, create); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create deployment %s/%s: %w", s.Namespace, s.Deployment.Name, err)
			}
			if _, err := client.AppsV1().ReplicaSets(s.Namespace).Create(ctx, s.ReplicaSet, create); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create replicaset %s/%s: %w", s.Namespace, s.ReplicaSet.Name, err)
			}
		}
		if s.StatefulSet != nil {
			if _, err := client.AppsV1().StatefulSets(s.Namespace).Create(ctx, s.StatefulSet, create); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create statefulset %s/%s: %w", s.Namespace, s.StatefulSet.Name, err)
			}
		}
		if _, err := client.CoreV1().Services(s.Namespace).Create(ctx, s.Service, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service %s/%s: %w", s.Namespace, s.Service.Name, err)
		}
		slice := synth.EndpointSlice(s)
		if _, err := client.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, slice, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpointslice %s/%s: %w", s.Namespace, slice.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var pods []*corev1.Pod
	for _, s := range c.Services {
		pods = append(pods, s.Pods...)
	}
	return step("pods (create and status)", len(pods), func(ctx context.Context, i int) error {
		pod := pods[i]
		// UIDs are the API server's to assign; the owner references keep
		// the synthetic ones, which nothing checks without a garbage
		// collector (and the exporter matches owners by kind and name).
		pod = pod.DeepCopy()
		pod.UID = ""
		created, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, create)
		if apierrors.IsAlreadyExists(err) {
			created, err = client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		created.Status = pods[i].Status
		if _, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, update); err != nil {
			return fmt.Errorf("set status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	})
}
