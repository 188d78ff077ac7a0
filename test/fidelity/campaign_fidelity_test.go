package fidelity

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// The sample of generated campaigns `go test` runs; `make
// fidelity-campaign` runs more (docs/whatif.md). They share
// -fidelity.seed with the placement cases.
var flagCampaigns = flag.Int("fidelity.campaigns", 2, "how many generated campaigns to run")

// CampaignBatch is how one batch of a generated campaign went, predicted
// at the start of the campaign and real.
type CampaignBatch struct {
	Seed  uint64
	Index int
	Nodes []string
	// VerdictsAgree: the batch's verdict and the verdict of every service
	// it makes worse are those the what-if gives on the real placement
	// just before the batch.
	VerdictsAgree bool
	// CountsAgree: for every workload with replicas on the batch's nodes,
	// the predicted Ready replicas per node before the batch are the real
	// ones.
	CountsAgree bool
	Differences []string
}

// CampaignBatches draws the campaign of a case from its seed: 3 to 6
// batches of 1 or 2 nodes, in BatchOrder, each node once, as long as
// nodes last.
func (c *Case) CampaignBatches() [][]string {
	r := rand.New(rand.NewPCG(c.Seed, 0x63616d70)) // "camp"
	count := 3 + r.IntN(4)
	var batches [][]string
	next := 0
	for len(batches) < count && next < len(c.BatchOrder) {
		size := min(1+r.IntN(2), len(c.BatchOrder)-next)
		batch := slices.Clone(c.BatchOrder[next : next+size])
		slices.Sort(batch)
		batches = append(batches, batch)
		next += size
	}
	return batches
}

// TestCampaignMatchesScheduler generates campaigns (a generated case and
// its CampaignBatches), asks the exporter's campaign API once at the
// start, nodes returning, then runs the campaign on the control plane
// batch by batch: the what-if on the real placement just before the batch
// gives the real verdicts; the batch is taken down (Runner.TakeDown), the
// nodes holding the replacements pull their images as a kubelet would,
// and the batch's nodes come back, uncordoned and without images. It
// compares, per batch, the predicted verdicts and replica counts per node
// with the real ones and prints the agreement.
func TestCampaignMatchesScheduler(t *testing.T) {
	binary := exporterproc.BuildForTest(t, "kube-spread-exporter")
	runner := &Runner{Client: client(t), Scheduler: cp, Logf: t.Logf}
	var results []*CampaignBatch
	for i := range *flagCampaigns {
		c := Generate(*flagSeed + uint64(i))
		t.Run(fmt.Sprintf("seed=%d", c.Seed), func(t *testing.T) {
			results = append(results, runCampaign(t, runner, binary, c)...)
		})
	}
	t.Log("\n" + CampaignSummary(*flagSeed, *flagCampaigns, results))
}

func runCampaign(t *testing.T, runner *Runner, binary string, c *Case) []*CampaignBatch {
	ctx := context.Background()
	t.Log(c.Describe())
	t.Log("nodes: " + c.DescribeNodes())
	t.Cleanup(func() {
		if err := runner.Cleanup(context.Background(), c); err != nil {
			t.Errorf("clean up seed %d: %v", c.Seed, err)
		}
	})
	if err := runner.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	observed, replicas, err := runner.Settle(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	batches := c.CampaignBatches()
	t.Logf("campaign %v; placed: %s", batches, describe(observed))
	// The generated node images do not follow where the scheduler put
	// the pods; after every batch the harness gives each node the images
	// of the pods it runs, as a kubelet that pulled them holds them. Do
	// the same before the campaign is asked, so that the model and the
	// control plane start from the same images.
	if err := reimaged(ctx, runner, c, nil, observed); err != nil {
		t.Fatal(err)
	}

	e, err := exporterproc.Start(ctx, binary, cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var predicted *whatif.Campaign
	err = poll(ctx, 30*time.Second, "a campaign answer with the case's replicas", func(ctx context.Context) error {
		var answer whatif.Campaign
		if err := getJSON(ctx, e, whatif.PathCampaign+"?"+campaignQuery(batches), &answer); err != nil {
			return err
		}
		if err := sameReplicas(c, observed, answer.Batches[0].Services, batches[0]); err != nil {
			return err
		}
		predicted = &answer
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var results []*CampaignBatch
	for i, batch := range batches {
		result := &CampaignBatch{Seed: c.Seed, Index: i + 1, Nodes: batch}
		var real whatif.Answer
		query := url.Values{"node": batch}
		err := poll(ctx, 30*time.Second, fmt.Sprintf("the what-if of batch %d on the real placement", i+1), func(ctx context.Context) error {
			if err := getJSON(ctx, e, whatif.PathWhatIf+"?"+query.Encode(), &real); err != nil {
				return err
			}
			services := make([]whatif.CampaignService, len(real.Services))
			for i, s := range real.Services {
				services[i] = whatif.CampaignService{Service: s}
			}
			return sameReplicas(c, observed, services, batch)
		})
		if err != nil {
			t.Fatal(err)
		}
		compareBatch(result, &predicted.Batches[i], &real, c, observed)
		for _, d := range result.Differences {
			t.Logf("seed %d batch %d %v: %s", c.Seed, i+1, batch, d)
		}
		results = append(results, result)

		after, err := runner.TakeDown(ctx, c, batch, replicas)
		if err != nil {
			t.Fatal(err)
		}
		if err := reimaged(ctx, runner, c, batch, after); err != nil {
			t.Fatal(err)
		}
		observed, err = runner.waitQuiet(ctx, c, quietFor, "the pods after the batch came back", func(o Observed) error {
			return settled(o, replicas, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("after batch %d: %s", i+1, describe(observed))
	}
	return results
}

func campaignQuery(batches [][]string) string {
	query := url.Values{"nodes_return": {"true"}}
	for _, b := range batches {
		query.Add("batch", strings.Join(b, ","))
	}
	return query.Encode()
}

// getJSON asks the exporter and decodes a 200 answer.
func getJSON(ctx context.Context, e *exporterproc.Exporter, path string, into any) error {
	status, body, err := e.Get(ctx, path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), into); err != nil {
		return fmt.Errorf("%s: decode: %w", path, err)
	}
	return nil
}

// sameReplicas checks that the answer's services count the Running
// replicas the API server shows, for every workload with one on the
// batch: the exporter's caches have caught up.
func sameReplicas(c *Case, observed Observed, services []whatif.CampaignService, batch []string) error {
	for _, w := range c.Workloads {
		p := observed[w.Name()]
		if p == nil || p.RunningTotal()-p.RunningTotal(batch...) == 0 {
			continue
		}
		found := false
		for _, s := range services {
			if string(s.Kind) == w.Kind() && s.Name == w.Name() {
				found = true
				if s.Now.Replicas != p.RunningTotal() {
					return fmt.Errorf("%s %s: %d replicas in the answer, %d Running", w.Kind(), w.Name(), s.Now.Replicas, p.RunningTotal())
				}
			}
		}
		if !found {
			return fmt.Errorf("%s %s not in the answer", w.Kind(), w.Name())
		}
	}
	return nil
}

// compareBatch fills in the agreement of a batch: verdicts against the
// what-if on the real placement, replica counts per node against the API
// server's.
func compareBatch(result *CampaignBatch, predicted *whatif.CampaignBatch, real *whatif.Answer, c *Case, observed Observed) {
	blocking := func(services []whatif.Service) map[string]string {
		out := map[string]string{}
		for _, s := range services {
			if s.Blocking {
				out[string(s.Kind)+"/"+s.Name] = string(s.Verdict)
			}
		}
		return out
	}
	var predictedServices []whatif.Service
	for _, s := range predicted.Services {
		predictedServices = append(predictedServices, s.Service)
	}
	want, got := blocking(real.Services), blocking(predictedServices)
	result.VerdictsAgree = predicted.Verdict == real.Verdict && maps.Equal(want, got)
	if !result.VerdictsAgree {
		result.Differences = append(result.Differences, fmt.Sprintf("verdict predicted %s %v, real %s %v", predicted.Verdict, got, real.Verdict, want))
	}
	result.CountsAgree = true
	for _, w := range c.Workloads {
		p := observed[w.Name()]
		if p == nil || p.RunningTotal()-p.RunningTotal(result.Nodes...) == 0 {
			continue
		}
		real := map[string]int{}
		for node, n := range p.Running {
			if n > 0 {
				real[node] = n
			}
		}
		guess := map[string]int{}
		for _, s := range predicted.Services {
			if string(s.Kind) == w.Kind() && s.Name == w.Name() {
				for _, n := range s.Before {
					guess[n.Node] = n.Replicas
				}
			}
		}
		if !maps.Equal(real, guess) {
			result.CountsAgree = false
			result.Differences = append(result.Differences, fmt.Sprintf("%s %s [%s]: predicted %v, real %v", w.Kind(), w.Name(), constraints(w.Template()), guess, real))
		}
	}
}

// reimaged does to the batch's nodes what a reimage and a kubelet do:
// nodes that now run a workload's pod hold its image (with the largest
// size a node of the case reports for it, as the model assumes), the
// batch's nodes hold only the base image, and they come back into
// service.
func reimaged(ctx context.Context, runner *Runner, c *Case, batch []string, after Observed) error {
	nodes := map[string]*corev1.Node{}
	sizes := map[string]int64{}
	for _, n := range c.Nodes {
		node, err := runner.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s: %w", n.Name, err)
		}
		nodes[n.Name] = node
		for _, image := range node.Status.Images {
			for _, name := range image.Names {
				sizes[name] = max(sizes[name], image.SizeBytes)
			}
		}
	}
	for name, node := range nodes {
		images := node.Status.Images
		if slices.Contains(batch, name) {
			images = []corev1.ContainerImage{{Names: []string{baseImage}, SizeBytes: 700 << 10}}
		}
		changed := slices.Contains(batch, name)
		for _, w := range c.Workloads {
			image := w.Template().Spec.Containers[0].Image
			if p := after[w.Name()]; p == nil || p.Running[name] == 0 || holds(images, image) {
				continue
			}
			images = append(slices.Clip(images), corev1.ContainerImage{Names: []string{image}, SizeBytes: sizes[image]})
			changed = true
		}
		if !changed {
			continue
		}
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"images": images}})
		if err != nil {
			return err
		}
		if _, err := runner.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			return fmt.Errorf("set the images of %s: %w", name, err)
		}
	}
	for _, name := range batch {
		if _, err := runner.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("uncordon %s: %w", name, err)
		}
	}
	return nil
}

func holds(images []corev1.ContainerImage, image string) bool {
	for _, i := range images {
		if slices.Contains(i.Names, image) {
			return true
		}
	}
	return false
}

// CampaignSummary is the table `make fidelity-campaign` prints.
func CampaignSummary(firstSeed uint64, campaigns int, results []*CampaignBatch) string {
	var verdicts, counts int
	for _, r := range results {
		if r.VerdictsAgree {
			verdicts++
		}
		if r.CountsAgree {
			counts++
		}
	}
	share := func(n int) string {
		if len(results) == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%% (%d of %d)", 100*float64(n)/float64(len(results)), n, len(results))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "campaign fidelity against kube-scheduler, seeds %d to %d\n", firstSeed, firstSeed+uint64(campaigns)-1)
	fmt.Fprintf(&b, "%-44s %d\n", "campaigns", campaigns)
	fmt.Fprintf(&b, "%-44s %d\n", "batches", len(results))
	fmt.Fprintf(&b, "%-44s %s\n", "every service's verdict as predicted", share(verdicts))
	fmt.Fprintf(&b, "%-44s %s\n", "replicas per node as predicted", share(counts))
	for _, r := range results {
		for _, d := range r.Differences {
			fmt.Fprintf(&b, "seed %d batch %d %v: %s\n", r.Seed, r.Index, r.Nodes, d)
		}
	}
	return b.String()
}
