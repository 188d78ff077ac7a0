package fidelity

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
)

// TestMathoidColdStart replays the incident up to day two's question: after
// day one's reimage 2003 and 2004 are pristine, so if 2001 and 2002 go,
// mathoid's replicas restart on nodes that must first pull its image
// ("taking longer than normal since the available nodes are all
// pristine"). The what-if for {2001, 2002} must say so: no warm node. The
// same question before day one, when every node holds the image, must
// count 2003 and 2004 as warm, or the zero proves nothing.
func TestMathoidColdStart(t *testing.T) {
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
	parallelReimage := []string{"kubernetes2001", "kubernetes2002"}
	warmNodes := func(when string, replicasAfter int) int {
		t.Helper()
		var warm int
		err := poll(ctx, settleTimeout, "the what-if with mathoid's replicas "+when, func(ctx context.Context) error {
			answer, body, err := AskWhatIf(ctx, e, parallelReimage)
			if err != nil {
				return err
			}
			s := answer.Service(replay.Namespace, "Deployment", replay.Name)
			switch {
			case s == nil:
				return fmt.Errorf("Deployment mathoid not in the answer: %s", body)
			case s.Now.Replicas != replay.Replicas || s.After.Replicas != replicasAfter:
				return fmt.Errorf("Deployment mathoid: now %d, after %d replicas, want %d, %d", s.Now.Replicas, s.After.Replicas, replay.Replicas, replicasAfter)
			case s.WarmNodes == nil:
				t.Fatalf("%s: the what-if answer has no warm_nodes: %s", when, ErrNoPlacement)
			}
			warm = *s.WarmNodes
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return warm
	}

	// One replica per node; each node holds the image.
	if got := warmNodes("before day one", 2); got != 2 {
		t.Errorf("what-if {2001, 2002} before day one: warm_nodes %d, want 2 (2003 and 2004 hold %s)", got, replay.Image)
	}
	if err := scenario.DayOne(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kubernetes2003", "kubernetes2004"} {
		node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(node.Status.Images, replay.PristineImages) {
			t.Fatalf("%s after its reimage lists images %v, want the pristine %v", name, node.Status.Images, replay.PristineImages)
		}
	}
	if got := warmNodes("after day one", 0); got != 0 {
		t.Errorf("what-if {2001, 2002} after day one: warm_nodes %d, want 0: 2003 and 2004 were reimaged and hold no %s", got, replay.Image)
	}
}
