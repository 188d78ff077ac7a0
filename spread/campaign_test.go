package spread

import (
	"reflect"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

// campaignCluster: nodes a, b, c; web's three replicas on a, a and b,
// a DaemonSet pod on a; only a holds web's image.
func campaignCluster() *Cluster {
	c := &Cluster{Nodes: map[string]*Node{}, Placement: &placement.Cluster{}}
	for _, name := range []string{"a", "b", "c"} {
		c.Nodes[name] = &Node{Name: name}
		c.Placement.Nodes = append(c.Placement.Nodes, placement.Node{Name: name, Labels: placement.Labels{{Key: placement.LabelHostname, Value: name}},
			Allocatable: placement.Resources{MilliCPU: 4000, Memory: 16 << 30, Pods: 110}})
	}
	c.Placement.Nodes[0].Images = []*placement.Image{{Names: []string{"web:1"}, SizeBytes: 100 << 20}}
	web := &placement.Template{Namespace: "default", Owner: "ReplicaSet/web-1", Labels: placement.Labels{{Key: "app", Value: "web"}},
		Requests: placement.Resources{MilliCPU: 500, Memory: 1 << 30, Pods: 1}, ScoreMilliCPU: 500, ScoreMemory: 1 << 30, Recreated: true, Images: []string{"web:1"}}
	agent := &placement.Template{Namespace: "kube-system", Owner: "DaemonSet/agent", Requests: placement.Resources{Pods: 1}}
	svc := &Service{Namespace: "default", Kind: KindDeployment, Name: "web", DesiredReplicas: 3}
	for i, node := range []int32{0, 0, 1} {
		c.Placement.Pods = append(c.Placement.Pods, placement.Pod{Template: web, Name: "web-1-" + string(rune('x'+i)), Node: node, Ready: true})
		svc.Replicas = append(svc.Replicas, Replica{Node: c.Placement.Nodes[node].Name, Ready: true, Pod: int32(len(c.Placement.Pods))})
	}
	c.Placement.Pods = append(c.Placement.Pods, placement.Pod{Template: agent, Name: "agent-a", Node: 0, Ready: true})
	c.Services = []*Service{svc}
	return c
}

func replicaNodes(s *Service) []string {
	var nodes []string
	for _, r := range s.Replicas {
		nodes = append(nodes, r.Node)
	}
	return nodes
}

func TestAfterBatch(t *testing.T) {
	for _, back := range []bool{true, false} {
		c := campaignCluster()
		next, err := c.AfterBatch([]string{"a"}, back)
		if err != nil {
			t.Fatal(err)
		}
		// a's two replicas: one to c (no replica yet, default spreading),
		// then one to b or c; b has one, c one now: b by name.
		if got, want := replicaNodes(next.Services[0]), []string{"c", "b", "b"}; !reflect.DeepEqual(got, want) {
			t.Errorf("back %v: replicas on %v, want %v", back, got, want)
		}
		if got := replicaNodes(c.Services[0]); !reflect.DeepEqual(got, []string{"a", "a", "b"}) {
			t.Errorf("the caller's cluster changed: %v", got)
		}
		if next.Placement.Nodes[0].Images != nil || c.Placement.Nodes[0].Images == nil {
			t.Errorf("a's images %v, want none (and the caller's kept)", next.Placement.Nodes[0].Images)
		}
		// b and c pulled web's image, with the size a reported.
		for _, node := range next.Placement.Nodes[1:] {
			want := []placement.Image{{Names: []string{"web:1"}, SizeBytes: 100 << 20}}
			var got []placement.Image
			for _, image := range node.Images {
				got = append(got, *image)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s's images %v, want %v", node.Name, got, want)
			}
		}
		if next.Placement.Pods[3].Node != 0 {
			t.Errorf("the DaemonSet pod left a")
		}
		if got := next.Nodes["a"].Schedulable(); got != back {
			t.Errorf("back %v: a schedulable %v", back, got)
		}
	}
}

func TestAfterRestart(t *testing.T) {
	c := campaignCluster()
	next, err := c.AfterRestart(c.Services)
	if err != nil {
		t.Fatal(err)
	}
	// Placed anew, one per node: a first (the image), then b and c.
	if got, want := replicaNodes(next.Services[0]), []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("replicas on %v, want %v", got, want)
	}
	if _, err := (&Cluster{}).AfterRestart(nil); err != ErrNoPlacement {
		t.Errorf("without placement input: err = %v", err)
	}
}

// TestAfterBatchRetriesPending: replacements without room stay pending,
// not ready, and are placed when room comes back: at once when the
// batch's nodes return.
func TestAfterBatchRetriesPending(t *testing.T) {
	c := campaignCluster()
	// b and c have room for nothing more.
	c.Placement.Nodes[1].Allocatable.Pods = 1
	c.Placement.Nodes[2].Allocatable.Pods = 0
	next, err := c.AfterBatch([]string{"a"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := replicaNodes(next.Services[0]), []string{"", "", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a: replicas on %v, want %v", got, want)
	}
	if r := next.Services[0].Replicas[0]; r.Ready {
		t.Errorf("a pending replica is ready")
	}
	// When a comes back, the scheduler retries the pending pods there,
	// before the next batch.
	back, err := c.AfterBatch([]string{"a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := replicaNodes(back.Services[0]), []string{"a", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a, back: replicas on %v, want %v", got, want)
	}
	for _, r := range back.Services[0].Replicas {
		if !r.Ready {
			t.Errorf("replica on %q not ready", r.Node)
		}
	}
}
