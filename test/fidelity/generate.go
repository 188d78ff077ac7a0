package fidelity

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Labels and keys the generated cases use.
const (
	// CaseLabel is on every node of a case, and every pod of the case
	// selects it: the nodes of other cases and tests are outside the case
	// for the scheduler (nodeSelector) and for topology spreading, whose
	// default nodeAffinityPolicy Honor counts only the nodes a pod may use.
	CaseLabel = "fidelity.kube-spread.io/case"
	// AppLabel names the workload a pod belongs to.
	AppLabel = "app"

	zoneLabel     = "topology.kubernetes.io/zone"
	hostnameLabel = "kubernetes.io/hostname"
	rackLabel     = "fidelity.kube-spread.io/rack"
	diskLabel     = "fidelity.kube-spread.io/disk"
	dedicatedKey  = "fidelity.kube-spread.io/dedicated"
	// baseImage is on every node, as the pause image is on a real one.
	baseImage = "fidelity.invalid/pause:3.10"
)

// Case is one generated cluster: nodes, workloads, and how many nodes the
// maintenance batch takes down. Everything in it follows from Seed.
type Case struct {
	Seed      uint64
	Namespace string
	Nodes     []*corev1.Node
	// Workloads are *appsv1.Deployment and *appsv1.StatefulSet.
	Workloads []Workload
	// BatchSize is how many nodes go down together. The batch itself is
	// chosen once the scheduler has placed the pods (see PickBatch), among
	// the nodes that hold some: the initial placement is the scheduler's,
	// and a batch of empty nodes would test nothing.
	BatchSize int
	// BatchOrder is the order in which nodes are considered for the batch.
	BatchOrder []string
}

// Workload is a Deployment or a StatefulSet of a case.
type Workload struct {
	Deployment  *appsv1.Deployment
	StatefulSet *appsv1.StatefulSet
}

// Kind is "Deployment" or "StatefulSet", as the what-if answer names it.
func (w Workload) Kind() string {
	if w.Deployment != nil {
		return "Deployment"
	}
	return "StatefulSet"
}

// Name is the workload's name.
func (w Workload) Name() string {
	if w.Deployment != nil {
		return w.Deployment.Name
	}
	return w.StatefulSet.Name
}

// Replicas is the workload's replica count.
func (w Workload) Replicas() int32 {
	if w.Deployment != nil {
		return *w.Deployment.Spec.Replicas
	}
	return *w.StatefulSet.Spec.Replicas
}

// Template is the workload's pod template.
func (w Workload) Template() *corev1.PodTemplateSpec {
	if w.Deployment != nil {
		return &w.Deployment.Spec.Template
	}
	return &w.StatefulSet.Spec.Template
}

// Node shapes: CPU in millicores and memory in MiB, small enough that a few
// replicas fill a node.
var (
	nodeCPUs     = []int64{2000, 4000, 8000}
	nodeMemories = []int64{4096, 8192, 16384}
	podCPUs      = []int64{100, 250, 500, 1000, 1500, 2000}
	podMemories  = []int64{128, 256, 512, 1024, 2048, 4096}
	teams        = []string{"db", "batch"}
)

// Generate builds the case of a seed. The same seed always gives the same
// case, whatever else runs.
func Generate(seed uint64) *Case {
	r := rand.New(rand.NewPCG(seed, 0x6b7365)) // second word: "kse"
	c := &Case{Seed: seed, Namespace: fmt.Sprintf("fidelity-%d", seed)}
	caseID := fmt.Sprint(seed)

	// Mostly small clusters, where a batch of one or two nodes matters;
	// one case in four has a few dozen nodes.
	nodeCount := 3 + r.IntN(6)
	if r.IntN(4) == 0 {
		nodeCount = 10 + r.IntN(21)
	}
	zoneCount := 1 + r.IntN(min(3, nodeCount))
	// One case in three has only small nodes, where the room left after
	// the batch runs out.
	cpus, memories := nodeCPUs, nodeMemories
	if r.IntN(3) == 0 {
		cpus, memories = nodeCPUs[:2], nodeMemories[:2]
	}
	for i := range nodeCount {
		name := fmt.Sprintf("fid%d-n%02d", seed, i)
		zone := fmt.Sprintf("zone-%c", 'a'+i%zoneCount)
		cpu, memory := pick(r, cpus), pick(r, memories)
		allocatable := corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memory<<20, resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels: map[string]string{
					CaseLabel:     caseID,
					hostnameLabel: name,
					zoneLabel:     zone,
					rackLabel:     fmt.Sprintf("%s-rack%d", zone, (i/zoneCount)%2),
					diskLabel:     pick(r, []string{"ssd", "hdd"}),
				},
			},
			Status: corev1.NodeStatus{
				Capacity:    allocatable.DeepCopy(),
				Allocatable: allocatable,
				Images:      []corev1.ContainerImage{{Names: []string{baseImage}, SizeBytes: 700 << 10}},
			},
		}
		if r.IntN(5) == 0 {
			node.Spec.Taints = []corev1.Taint{{Key: dedicatedKey, Value: pick(r, teams), Effect: corev1.TaintEffectNoSchedule}}
		}
		c.Nodes = append(c.Nodes, node)
	}

	workloadCount := 3 + r.IntN(min(8, nodeCount))
	for i := range workloadCount {
		c.Workloads = append(c.Workloads, generateWorkload(r, c, caseID, fmt.Sprintf("svc-%c", 'a'+i), zoneCount))
	}
	// Nodes hold the images of some workloads, as after earlier rollouts.
	for _, node := range c.Nodes {
		for _, w := range c.Workloads {
			if r.IntN(3) == 0 {
				image := w.Template().Spec.Containers[0].Image
				node.Status.Images = append(node.Status.Images, corev1.ContainerImage{Names: []string{image}, SizeBytes: int64(50+r.IntN(400)) << 20})
			}
		}
	}

	c.BatchSize = 1 + r.IntN(max(2, nodeCount/3))
	for _, i := range r.Perm(nodeCount) {
		c.BatchOrder = append(c.BatchOrder, c.Nodes[i].Name)
	}
	return c
}

func generateWorkload(r *rand.Rand, c *Case, caseID, name string, zoneCount int) Workload {
	labels := map[string]string{AppLabel: name}
	replicas := int32(1 + r.IntN(5))
	if len(c.Nodes) >= 10 {
		replicas = int32(2 + r.IntN(7))
	}
	spec := corev1.PodSpec{
		NodeSelector: map[string]string{CaseLabel: caseID},
		// kwok runs nothing; the grace period is for the deletions of the
		// test, which use zero anyway.
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Containers: []corev1.Container{{
			Name:  name,
			Image: fmt.Sprintf("fidelity.invalid/%s:%d", name, c.Seed),
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(pick(r, podCPUs), resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(pick(r, podMemories)<<20, resource.BinarySI),
			}},
		}},
	}
	if r.IntN(10) < 3 {
		spec.Tolerations = []corev1.Toleration{{Key: dedicatedKey, Operator: corev1.TolerationOpEqual, Value: pick(r, teams), Effect: corev1.TaintEffectNoSchedule}}
	}
	if r.IntN(5) == 0 {
		spec.NodeSelector[diskLabel] = "ssd"
	}
	if zoneCount > 1 && r.IntN(5) == 0 {
		zones := []string{}
		for z := range zoneCount {
			if r.IntN(2) == 0 {
				zones = append(zones, fmt.Sprintf("zone-%c", 'a'+z))
			}
		}
		if len(zones) == 0 {
			zones = []string{"zone-a"}
		}
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneLabel, Operator: corev1.NodeSelectorOpIn, Values: zones}},
			}}},
		}}
	}
	spread := func(key string) corev1.TopologySpreadConstraint {
		constraint := corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
		}
		// Both taint policies: the default, Ignore, counts cordoned
		// (tainted) nodes as domains, which is what a drain runs into.
		if r.IntN(2) == 0 {
			constraint.NodeTaintsPolicy = ptr.To(corev1.NodeInclusionPolicyHonor)
		}
		return constraint
	}
	if r.IntN(10) < 3 {
		spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, spread(hostnameLabel))
	}
	if zoneCount > 1 && r.IntN(10) < 2 {
		spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, spread(zoneLabel))
	}
	if r.IntN(4) == 0 {
		if spec.Affinity == nil {
			spec.Affinity = &corev1.Affinity{}
		}
		spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
				TopologyKey:   hostnameLabel,
			}},
		}
	}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
	meta := metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: labels}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	if r.IntN(10) < 3 {
		return Workload{StatefulSet: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, Selector: selector, Template: template, ServiceName: name,
			// Parallel: with the default OrderedReady the controller
			// creates no replacement behind one that cannot be scheduled,
			// so a displaced pod would have no replacement to count.
			PodManagementPolicy: appsv1.ParallelPodManagement,
		}}}
	}
	return Workload{Deployment: &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: selector, Template: template,
	}}}
}

// PickBatch returns the first BatchSize nodes in BatchOrder that hold a pod
// of the case (fewer if fewer hold one), sorted.
func (c *Case) PickBatch(occupied map[string]bool) []string {
	var batch []string
	for _, name := range c.BatchOrder {
		if len(batch) < c.BatchSize && occupied[name] {
			batch = append(batch, name)
		}
	}
	slices.Sort(batch)
	return batch
}

// Describe is a one-line summary of the case, for logs.
func (c *Case) Describe() string {
	var b strings.Builder
	tainted := 0
	for _, n := range c.Nodes {
		if len(n.Spec.Taints) > 0 {
			tainted++
		}
	}
	fmt.Fprintf(&b, "seed %d: %d nodes (%d tainted), batch of %d;", c.Seed, len(c.Nodes), tainted, c.BatchSize)
	for _, w := range c.Workloads {
		fmt.Fprintf(&b, " %s/%s×%d[%s]", w.Kind(), w.Name(), w.Replicas(), constraints(w.Template()))
	}
	return b.String()
}

// DescribeNodes is one line on the case's nodes: zone, disk, taint and
// allocatable of each, what a disagreement is read against.
func (c *Case) DescribeNodes() string {
	var parts []string
	for _, n := range c.Nodes {
		part := fmt.Sprintf("%s[%s %s cpu=%s mem=%s", n.Name, n.Labels[zoneLabel], n.Labels[diskLabel],
			n.Status.Allocatable.Cpu(), n.Status.Allocatable.Memory())
		for _, taint := range n.Spec.Taints {
			part += fmt.Sprintf(" taint=%s:%s", taint.Value, taint.Effect)
		}
		parts = append(parts, part+"]")
	}
	return strings.Join(parts, " ")
}

// constraints names the scheduling constraints of a pod template, briefly.
func constraints(t *corev1.PodTemplateSpec) string {
	var parts []string
	spec := &t.Spec
	requests := spec.Containers[0].Resources.Requests
	parts = append(parts, fmt.Sprintf("cpu=%s mem=%s", requests.Cpu(), requests.Memory()))
	if len(spec.Tolerations) > 0 {
		parts = append(parts, "tolerates="+spec.Tolerations[0].Value)
	}
	if v, ok := spec.NodeSelector[diskLabel]; ok {
		parts = append(parts, "disk="+v)
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil {
		parts = append(parts, "zones="+strings.Join(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values, ","))
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		policy := "ignore-taints"
		if tsc.NodeTaintsPolicy != nil && *tsc.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor {
			policy = "honor-taints"
		}
		parts = append(parts, fmt.Sprintf("spread=%s/%s", shortKey(tsc.TopologyKey), policy))
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		parts = append(parts, "anti-affinity=hostname")
	}
	return strings.Join(parts, " ")
}

func shortKey(key string) string {
	return key[strings.LastIndex(key, "/")+1:]
}

func pick[T any](r *rand.Rand, from []T) T { return from[r.IntN(len(from))] }
