package whatif

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// mathoidStartOfDayOne is the mathoid cluster before the 2018 reimage
// started: one mathoid replica on each of kubernetes2001-2004, in two
// rows, and mathoid's image (500 MiB) on all four nodes.
func mathoidStartOfDayOne() *spread.Cluster {
	names := []string{"kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"}
	nodes := map[string]*spread.Node{}
	pc := &placement.Cluster{}
	for i, name := range names {
		row := fmt.Sprintf("row-%c", 'a'+i%2)
		nodes[name] = &spread.Node{Name: name, Domains: []string{row}}
		pc.Nodes = append(pc.Nodes, placement.Node{
			Name:        name,
			Labels:      placement.Labels{{Key: placement.LabelHostname, Value: name}, {Key: placement.LabelZone, Value: row}},
			Allocatable: placement.Resources{MilliCPU: 16000, Memory: 64 << 30, Pods: 110},
			Images:      []*placement.Image{{Names: []string{"wikimedia/mathoid:2018"}, SizeBytes: 500 << 20}},
		})
	}
	mathoid := &placement.Template{
		Namespace: "mathoid", Owner: "ReplicaSet/mathoid-1", Labels: placement.Labels{{Key: "app", Value: "mathoid"}},
		Requests:      placement.Resources{MilliCPU: 1000, Memory: 1 << 30, Pods: 1},
		ScoreMilliCPU: 1000, ScoreMemory: 1 << 30,
		Images: []string{"wikimedia/mathoid:2018"}, Recreated: true,
	}
	var replicas []spread.Replica
	for i, name := range names {
		pc.Pods = append(pc.Pods, placement.Pod{Template: mathoid, Name: fmt.Sprintf("mathoid-1-%d", i), Node: int32(i), Ready: true})
		replicas = append(replicas, spread.Replica{Node: name, Ready: true, Pod: int32(len(pc.Pods))})
	}
	return &spread.Cluster{
		TopologyKeys: []string{"topology.kubernetes.io/zone"},
		Nodes:        nodes,
		Placement:    pc,
		Services: []*spread.Service{
			{Namespace: "mathoid", Kind: spread.KindDeployment, Name: "mathoid", DesiredReplicas: 4, Replicas: replicas},
			{Namespace: "mathoid", Kind: spread.KindService, Name: "mathoid", DesiredReplicas: -1, Replicas: replicas},
		},
	}
}

// TestAskCampaignMathoid is the proof of issue 17 on the model: from the
// start of day one, the campaigns of 2018 end with mathoid on no node,
// say why, and name a remedy that the simulation verified.
func TestAskCampaignMathoid(t *testing.T) {
	const (
		k1, k2, k3, k4 = "kubernetes2001", "kubernetes2002", "kubernetes2003", "kubernetes2004"
	)
	type placed = []NodeReplicas
	for _, tc := range []struct {
		name    string
		batches [][]string
		back    bool
		// zoneless: the nodes have no zone label.
		zoneless bool
		// before is mathoid's predicted placement before each batch.
		before   []placed
		verdicts []spread.Verdict
		why      string
		remedy   []string
	}{
		{
			name:     "the replay: day one, then day two",
			batches:  [][]string{{k3, k4}, {k1, k2}},
			back:     true,
			before:   []placed{{{k1, 1}, {k2, 1}, {k3, 1}, {k4, 1}}, {{k1, 2}, {k2, 2}}},
			verdicts: []spread.Verdict{spread.VerdictOK, spread.VerdictNoReplicasLeft},
			why:      "batch 1 moves all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 2 takes them down",
			remedy:   []string{"restarting mathoid/Deployment/mathoid after batch 1"},
		},
		{
			// Nothing is left in service for the last batch's pods: only
			// the nodes' return, with a restart, helps.
			name:     "one node a day, the reimaged nodes kept away",
			batches:  [][]string{{k3}, {k4}, {k1, k2}},
			back:     false,
			before:   []placed{{{k1, 1}, {k2, 1}, {k3, 1}, {k4, 1}}, {{k1, 2}, {k2, 1}, {k4, 1}}, {{k1, 2}, {k2, 2}}},
			verdicts: []spread.Verdict{spread.VerdictOK, spread.VerdictOK, spread.VerdictNoReplicasLeft},
			why:      "batches 1–2 move all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 3 takes them down",
			remedy:   []string{"letting the nodes of each batch return after it", "restarting mathoid/Deployment/mathoid after batch 2"},
		},
		{
			// 2003 comes back empty and cold. For 2004's pod the system
			// default spreading scores 2002 and 2003 alike (2003 has no
			// replica, but shares its row with 2001, which has two), and
			// ImageLocality breaks the tie for the warm 2002
			// (docs/whatif.md).
			name:     "one node a day, each node back empty and cold",
			batches:  [][]string{{k3}, {k4}, {k1, k2}},
			back:     true,
			before:   []placed{{{k1, 1}, {k2, 1}, {k3, 1}, {k4, 1}}, {{k1, 2}, {k2, 1}, {k4, 1}}, {{k1, 2}, {k2, 2}}},
			verdicts: []spread.Verdict{spread.VerdictOK, spread.VerdictOK, spread.VerdictNoReplicasLeft},
			why:      "batches 1–2 move all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 3 takes them down",
			remedy:   []string{"restarting mathoid/Deployment/mathoid after batch 2"},
		},
		{
			// Without rows, the hostname constraint alone decides: the
			// cold 2003 has no replica, spreading beats image locality.
			name:     "one node a day, back empty and cold, no zones",
			batches:  [][]string{{k3}, {k4}, {k1, k2}},
			back:     true,
			zoneless: true,
			before:   []placed{{{k1, 1}, {k2, 1}, {k3, 1}, {k4, 1}}, {{k1, 2}, {k2, 1}, {k4, 1}}, {{k1, 2}, {k2, 1}, {k3, 1}}},
			verdicts: []spread.Verdict{spread.VerdictOK, spread.VerdictOK, spread.VerdictBelowMinNodes},
			why:      "batches 1–2 move the 4 mathoid replicas onto kubernetes2001, kubernetes2002 and kubernetes2003; batch 3 leaves 1 replica of mathoid on 1 node, fewer than the 2 it needs",
			remedy:   []string{"restarting mathoid/Deployment/mathoid after batch 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mathoidStartOfDayOne()
			if tc.zoneless {
				for i := range c.Placement.Nodes {
					c.Placement.Nodes[i].Labels = c.Placement.Nodes[i].Labels[:1]
				}
			}
			campaign, err := AskCampaign(c, tc.batches, tc.back, spread.Options{DefaultMinNodes: 2})
			if err != nil {
				t.Fatal(err)
			}
			var verdicts []spread.Verdict
			var before []placed
			for _, b := range campaign.Batches {
				verdicts = append(verdicts, b.Verdict)
				for _, s := range b.Services {
					if s.Kind == spread.KindDeployment {
						before = append(before, s.Before)
					}
				}
			}
			if !reflect.DeepEqual(verdicts, tc.verdicts) {
				t.Errorf("verdicts %v, want %v", verdicts, tc.verdicts)
			}
			if !reflect.DeepEqual(before, tc.before) {
				t.Errorf("mathoid before each batch %v, want %v", before, tc.before)
			}
			if campaign.FirstUnsafe == nil || campaign.FirstUnsafe.Why != tc.why {
				t.Errorf("first unsafe %+v, want why %q", campaign.FirstUnsafe, tc.why)
			}
			var remedy []string
			if campaign.Remedy != nil {
				for _, change := range campaign.Remedy.Changes {
					remedy = append(remedy, change.Description)
				}
			}
			if !reflect.DeepEqual(remedy, tc.remedy) {
				t.Errorf("remedy %v, want %v (%+v)", remedy, tc.remedy, campaign.Remedy)
			}
			// The remedy, simulated again, leaves mathoid on two nodes at
			// least through every batch.
			if campaign.Remedy == nil || !campaign.Remedy.Found {
				return
			}
			spec := campaignSpec{batches: campaign.Remedy.Batches, nodesReturn: tc.back}
			for _, change := range campaign.Remedy.Changes {
				switch change.Kind {
				case ChangeReturn:
					spec.nodesReturn = true
				case ChangeRestart:
					spec.restarts = map[int][]serviceID{change.Batch: {{"mathoid", "Deployment", "mathoid"}}}
				}
			}
			again, err := simulateCampaign(c, spec, spread.Options{DefaultMinNodes: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range again.Batches {
				for _, s := range b.Services {
					if s.After.Nodes < 2 {
						t.Errorf("with the remedy, batch %d leaves %s/%s on %d nodes", b.Index, s.Kind, s.Name, s.After.Nodes)
					}
				}
			}
		})
	}
}

// TestAskCampaignRejects: bad campaigns are errors, never "safe".
func TestAskCampaignRejects(t *testing.T) {
	opts := spread.Options{DefaultMinNodes: 2}
	for _, tc := range []struct {
		name    string
		cluster *spread.Cluster
		batches [][]string
		want    string
	}{
		{"no batch", mathoidStartOfDayOne(), nil, "no node given"},
		{"a node twice", mathoidStartOfDayOne(), [][]string{{"kubernetes2001"}, {"kubernetes2002", "kubernetes2001"}}, "node kubernetes2001 is in batches 1 and 2: a campaign takes each node once"},
		{"unknown node", mathoidStartOfDayOne(), [][]string{{"kubernetes2001"}, {"nope"}}, "batch 2: unknown nodes: nope"},
		{"no placement input", &spread.Cluster{Nodes: map[string]*spread.Node{"a": {Name: "a"}}}, [][]string{{"a"}}, spread.ErrNoPlacement.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AskCampaign(tc.cluster, tc.batches, true, opts)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// smallCluster has empty nodes by name and one workload "web" with one
// replica on each of the nodes named in on.
func smallCluster(nodeNames []string, on ...string) *spread.Cluster {
	c := &spread.Cluster{Nodes: map[string]*spread.Node{}, Placement: &placement.Cluster{}}
	index := map[string]int32{}
	for i, name := range nodeNames {
		c.Nodes[name] = &spread.Node{Name: name}
		c.Placement.Nodes = append(c.Placement.Nodes, placement.Node{Name: name, Labels: placement.Labels{{Key: placement.LabelHostname, Value: name}},
			Allocatable: placement.Resources{MilliCPU: 4000, Memory: 16 << 30, Pods: 110}})
		index[name] = int32(i)
	}
	web := &placement.Template{Namespace: "default", Owner: "ReplicaSet/web-1", Labels: placement.Labels{{Key: "app", Value: "web"}},
		Requests: placement.Resources{MilliCPU: 500, Memory: 1 << 30, Pods: 1}, ScoreMilliCPU: 500, ScoreMemory: 1 << 30, Recreated: true}
	svc := &spread.Service{Namespace: "default", Kind: spread.KindDeployment, Name: "web", DesiredReplicas: len(on)}
	for i, name := range on {
		c.Placement.Pods = append(c.Placement.Pods, placement.Pod{Template: web, Name: fmt.Sprintf("web-1-%d", i), Node: index[name], Ready: true})
		svc.Replicas = append(svc.Replicas, spread.Replica{Node: name, Ready: true, Pod: int32(len(c.Placement.Pods))})
	}
	c.Services = []*spread.Service{svc}
	return c
}

func TestCampaignRemedies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster *spread.Cluster
		batches [][]string
		back    bool
		// bound is the search's bound asked for; 0 asks for the default.
		bound int
		want  *Remedy
	}{
		{
			// [a, b] leaves web on c alone; one node at a time, each
			// displaced replica finds an empty node.
			name:    "a batch too large is split",
			cluster: smallCluster([]string{"a", "b", "c", "d"}, "a", "b", "c"),
			batches: [][]string{{"b", "a"}, {"c"}},
			back:    true,
			// The restart before batch 1 is tried first, in vain: it puts
			// the replicas back where they are, the nodes equal.
			want: &Remedy{Found: true, Tried: 2, Batches: [][]string{{"a"}, {"b"}, {"c"}},
				Changes: []Change{{Kind: ChangeSplit, Batch: 1, Restart: []string{}, Description: "splitting batch 1 into [a] and [b]"}},
				Why:     "splitting batch 1 into [a] and [b] makes every batch safe"},
		},
		{
			// The split needs three batches simulated: a search bounded to
			// two cannot finish it, and says so.
			name:    "a search too small for the split",
			cluster: smallCluster([]string{"a", "b", "c", "d"}, "a", "b", "c"),
			batches: [][]string{{"b", "a"}, {"c"}},
			back:    true,
			bound:   2,
			want: &Remedy{Found: false, Tried: 2, Changes: []Change{},
				Why: "none of the 2 changed campaigns tried (a restart of the broken workloads just before the first unsafe batch, a split of one batch, a move of one batch; at most 2 batches simulated) makes every batch safe"},
		},
		{
			// web is on a and b, two replicas each: batch 1 [a] leaves it
			// single-homed on b. A restart before the campaign respreads
			// it over the four nodes.
			name:    "a restart before batch 1",
			cluster: smallCluster([]string{"a", "b", "c", "d"}, "a", "a", "b", "b"),
			batches: [][]string{{"a"}, {"c"}},
			back:    true,
			want: &Remedy{Found: true, Tried: 1, Batches: [][]string{{"a"}, {"c"}},
				Changes: []Change{{Kind: ChangeRestart, Batch: 1, Restart: []string{"default/Deployment/web"}, Description: "restarting default/Deployment/web before batch 1"}},
				Why:     "restarting default/Deployment/web before batch 1 makes every batch safe"},
		},
		{
			// Two nodes hold two replicas: whichever goes first, the other
			// alone is fewer than the two nodes web needs.
			name:    "nothing helps two replicas on two nodes",
			cluster: smallCluster([]string{"a", "b"}, "a", "b"),
			batches: [][]string{{"a"}, {"b"}},
			back:    true,
			want: &Remedy{Found: false, Tried: 2, Changes: []Change{},
				Why: "none of the 2 changed campaigns tried (a restart of the broken workloads just before the first unsafe batch, a split of one batch, a move of one batch; at most 40 batches simulated) makes every batch safe"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bound := defaultRemedyBatches
			if tc.bound > 0 {
				bound = tc.bound
			}
			campaign, err := askCampaign(tc.cluster, nil, tc.batches, tc.back, bound, spread.Options{DefaultMinNodes: 2})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(campaign.Remedy, tc.want) {
				t.Errorf("remedy\n%+v\nwant\n%+v", campaign.Remedy, tc.want)
			}
		})
	}
}

// TestRemedyBudget: the search's bound is 40 batches up to 75,000 pods,
// then shrinks with the cluster, never below 4.
func TestRemedyBudget(t *testing.T) {
	for _, tc := range []struct{ pods, want int }{
		{0, 40}, {10_000, 40}, {75_000, 40}, {100_000, 30}, {150_000, 20}, {750_000, 4}, {10_000_000, 4},
	} {
		if got := remedyBudget(tc.pods); got != tc.want {
			t.Errorf("remedyBudget(%d) = %d, want %d", tc.pods, got, tc.want)
		}
	}
}

// TestCampaignFromAnIndexedCluster: a campaign asked of an indexed cluster,
// whose states get their index moved from the state before, answers what
// the same campaign asked of a copy that is not indexed answers, every
// state walked: batches, predicted placement, the remedy search. The
// cluster is BenchmarkCampaign's, small, with its pinned Deployment, so
// that the search runs too.
func TestCampaignFromAnIndexedCluster(t *testing.T) {
	for _, back := range []bool{true, false} {
		c := syntheticCampaignCluster(3000)
		nodes := len(c.Placement.Nodes)
		var batches [][]string
		for batch := range 5 {
			var names []string
			for k := range 4 {
				names = append(names, c.Placement.Nodes[(batch*4+k)*nodes/20].Name)
			}
			batches = append(batches, names)
		}
		pinTwoReplicas(c, batches[4][0], batches[4][3])
		walked := *c
		walked.Placement = &placement.Cluster{Nodes: c.Placement.Nodes, Pods: c.Placement.Pods, PDBs: c.Placement.PDBs}
		c.Placement.Prepare()
		opts := spread.Options{DefaultMinNodes: 2}
		indexed, err := AskCampaign(c, batches, back, opts)
		if err != nil {
			t.Fatal(err)
		}
		// askCampaign, not AskCampaign, which would index the copy.
		plain, err := askCampaign(&walked, nil, batches, back, defaultRemedyBatches, opts)
		if err != nil {
			t.Fatal(err)
		}
		if indexed.Remedy == nil || indexed.Remedy.Tried == 0 {
			t.Fatalf("nodes return %v: no remedy search ran: %+v", back, indexed.Remedy)
		}
		got, _ := json.Marshal(indexed)
		want, _ := json.Marshal(plain)
		if string(got) != string(want) {
			t.Errorf("nodes return %v: the campaign from the indexed cluster\n%s\nfrom the walked one\n%s", back, got, want)
		}
	}
}
