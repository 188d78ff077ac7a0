package fidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// TestMathoidCampaignWithRemedy is issue 17's proof on the real
// scheduler: from the start of day one (one mathoid replica per node, the
// image everywhere) the exporter is asked about the replay's campaign,
// [2003, 2004] then [2001, 2002]. It must say the last batch leaves
// mathoid with no replica, and propose a remedy; the remedied campaign is
// then run for real, batch by batch (cordon, delete the pods, wait for
// the replacements, wipe the node's images, uncordon), with any restart
// the remedy asks for done as kubectl rollout restart does it. Mathoid's
// Ready replicas must stay on at least 2 schedulable nodes throughout.
func TestMathoidCampaignWithRemedy(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	t.Cleanup(func() {
		if err := DeleteAndWait(context.Background(), c, replay.Namespace, replay.Nodes); err != nil {
			t.Error(err)
		}
	})
	scenario := &replay.Scenario{Client: c, Logf: t.Logf}
	if err := scenario.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	e := exporterproc.ForTest(t, cp.Kubeconfig)
	asked := [][]string{{"kubernetes2003", "kubernetes2004"}, {"kubernetes2001", "kubernetes2002"}}

	var campaign *whatif.Campaign
	err := poll(ctx, settleTimeout, "the campaign answer on four Ready replicas", func(ctx context.Context) error {
		answer, body, err := askCampaign(ctx, e, asked)
		if err != nil {
			return err
		}
		if len(answer.Batches) != 2 || len(answer.Batches[0].Services) == 0 || answer.Batches[0].Services[0].Now.Replicas != replay.Replicas {
			return fmt.Errorf("not four replicas in batch 1 yet: %s", body)
		}
		campaign = answer
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	first := campaign.FirstUnsafe
	if campaign.Verdict != spread.VerdictNoReplicasLeft || first == nil || first.Batch != 2 || first.Name != replay.Name {
		t.Fatalf("campaign: verdict %s, first unsafe %+v; want no_replicas_left at batch 2 for mathoid", campaign.Verdict, first)
	}
	t.Logf("the exporter: %s", first.Why)
	if campaign.Remedy == nil || !campaign.Remedy.Found {
		t.Fatalf("no remedy proposed: %+v", campaign.Remedy)
	}
	t.Logf("remedy: %s", campaign.Remedy.Why)

	run := &campaignRun{t: t, client: c, scenario: scenario}
	run.atLeastTwoNodes(ctx, "before the campaign")
	for i, batch := range campaign.Remedy.Batches {
		index := i + 1
		for _, change := range campaign.Remedy.Changes {
			switch change.Kind {
			case whatif.ChangeRestart:
				if change.Batch == index {
					run.rolloutRestart(ctx)
					run.atLeastTwoNodes(ctx, fmt.Sprintf("after the restart before batch %d", index))
				}
			case whatif.ChangeSplit, whatif.ChangeReorder:
				// Remedy.Batches has them already.
			default:
				t.Fatalf("remedy change %q cannot be run by this test", change.Kind)
			}
		}
		run.batch(ctx, index, batch)
	}
}

// askCampaign asks the exporter's campaign API, nodes returning.
func askCampaign(ctx context.Context, e *exporterproc.Exporter, batches [][]string) (*whatif.Campaign, string, error) {
	query := url.Values{}
	for _, b := range batches {
		query.Add("batch", strings.Join(b, ","))
	}
	status, body, err := e.Get(ctx, whatif.PathCampaign+"?"+query.Encode())
	if err != nil {
		return nil, "", fmt.Errorf("campaign: %w", err)
	}
	if status != http.StatusOK {
		return nil, body, fmt.Errorf("campaign: status %d: %s", status, body)
	}
	var answer whatif.Campaign
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		return nil, body, fmt.Errorf("campaign: decode: %w: %s", err, body)
	}
	return &answer, body, nil
}

// campaignRun takes the replay's cluster through a campaign.
type campaignRun struct {
	t        *testing.T
	client   kubernetes.Interface
	scenario *replay.Scenario
}

// batch reimages the nodes: cordon, check what is left, delete their
// mathoid pods, wipe their images, wait for four Ready replicas elsewhere,
// uncordon.
func (r *campaignRun) batch(ctx context.Context, index int, nodes []string) {
	r.t.Helper()
	r.t.Logf("batch %d: reimaging %s", index, strings.Join(nodes, ", "))
	if err := r.scenario.Cordon(ctx, true, nodes...); err != nil {
		r.t.Fatal(err)
	}
	r.atLeastTwoNodes(ctx, fmt.Sprintf("batch %d cordoned", index))
	pods, err := r.client.CoreV1().Pods(replay.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, pod := range pods.Items {
		if slices.Contains(nodes, pod.Spec.NodeName) {
			err := r.client.CoreV1().Pods(replay.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			if err != nil && !apierrors.IsNotFound(err) {
				r.t.Fatal(err)
			}
		}
	}
	if err := r.scenario.SetImages(ctx, replay.PristineImages, nodes...); err != nil {
		r.t.Fatal(err)
	}
	placement := r.waitReplicas(ctx, fmt.Sprintf("batch %d's replacements", index), func(node string) bool { return !slices.Contains(nodes, node) })
	r.t.Logf("batch %d: the scheduler placed the replicas: %s", index, placement)
	r.atLeastTwoNodes(ctx, fmt.Sprintf("batch %d down", index))
	if err := r.scenario.Cordon(ctx, false, nodes...); err != nil {
		r.t.Fatal(err)
	}
}

// rolloutRestart does what kubectl rollout restart does: it stamps the
// pod template, and the Deployment replaces every pod.
func (r *campaignRun) rolloutRestart(ctx context.Context) {
	r.t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	deployment, err := r.client.AppsV1().Deployments(replay.Namespace).Patch(ctx, replay.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	generation := deployment.Generation
	err = poll(ctx, settleTimeout, "the rollout restart", func(ctx context.Context) error {
		d, err := r.client.AppsV1().Deployments(replay.Namespace).Get(ctx, replay.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s := d.Status; s.ObservedGeneration < generation || s.UpdatedReplicas != replay.Replicas || s.ReadyReplicas != replay.Replicas || s.Replicas != replay.Replicas {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	placement := r.waitReplicas(ctx, "the restarted replicas", func(string) bool { return true })
	r.t.Logf("restart: the scheduler placed the replicas: %s", placement)
}

// waitReplicas waits until exactly the replay's replicas exist, all Ready
// on nodes allowed, and returns their placement.
func (r *campaignRun) waitReplicas(ctx context.Context, what string, allowed func(node string) bool) string {
	r.t.Helper()
	var placement string
	err := poll(ctx, settleTimeout, what, func(ctx context.Context) error {
		pods, err := r.client.CoreV1().Pods(replay.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		perNode := map[string]int{}
		count := 0
		for _, pod := range pods.Items {
			if pod.DeletionTimestamp != nil {
				return fmt.Errorf("pod %s terminating", pod.Name)
			}
			if podCondition(&pod, corev1.PodReady) != corev1.ConditionTrue || !allowed(pod.Spec.NodeName) {
				return fmt.Errorf("pod %s on %q not Ready where allowed", pod.Name, pod.Spec.NodeName)
			}
			perNode[pod.Spec.NodeName]++
			count++
		}
		if count != replay.Replicas {
			return fmt.Errorf("%d pods, want %d", count, replay.Replicas)
		}
		var parts []string
		for _, node := range replay.Nodes {
			if n := perNode[node]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", node, n))
			}
		}
		placement = strings.Join(parts, " ")
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return placement
}

// atLeastTwoNodes checks that mathoid's Ready replicas on schedulable
// nodes span two nodes or more.
func (r *campaignRun) atLeastTwoNodes(ctx context.Context, when string) {
	r.t.Helper()
	pods, err := r.client.CoreV1().Pods(replay.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	nodes := map[string]bool{}
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp != nil || podCondition(&pod, corev1.PodReady) != corev1.ConditionTrue {
			continue
		}
		node, err := r.client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			r.t.Fatal(err)
		}
		if !node.Spec.Unschedulable {
			nodes[node.Name] = true
		}
	}
	if len(nodes) < 2 {
		r.t.Errorf("%s: mathoid's Ready replicas are on %d schedulable nodes (%v), want 2 or more", when, len(nodes), nodes)
	}
}
