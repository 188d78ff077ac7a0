package cluster

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"

	"github.com/kube-spread-exporter/kube-spread-exporter/placement"
)

func requests(cpu, memory string) corev1.ResourceRequirements {
	list := corev1.ResourceList{}
	if cpu != "" {
		list[corev1.ResourceCPU] = apiresource.MustParse(cpu)
	}
	if memory != "" {
		list[corev1.ResourceMemory] = apiresource.MustParse(memory)
	}
	return corev1.ResourceRequirements{Requests: list}
}

func TestBuildTemplate(t *testing.T) {
	base := func(mutate func(p *corev1.Pod)) *corev1.Pod {
		p := pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1"))
		p.Labels = map[string]string{"app": "web", "pod-template-hash": "1"}
		p.Spec.Containers[0].Resources = requests("250m", "256Mi")
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	webSelector := placement.Selector{Requirements: []placement.Requirement{{Key: "app", Operator: placement.OpIn, Values: []string{"web"}}}}
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		check func(t *testing.T, got *placement.Template)
	}{
		{"requests, labels, owner, image", base(nil), func(t *testing.T, got *placement.Template) {
			want := placement.Resources{MilliCPU: 250, Memory: 256 << 20, Pods: 1}
			if !reflect.DeepEqual(got.Requests, want) || got.ScoreMilliCPU != 250 || got.ScoreMemory != 256<<20 {
				t.Errorf("requests %+v, scored %d/%d", got.Requests, got.ScoreMilliCPU, got.ScoreMemory)
			}
			if got.Owner != "ReplicaSet/web-1" || !got.Recreated || got.Unknown != "" {
				t.Errorf("owner %q, recreated %v, unknown %q", got.Owner, got.Recreated, got.Unknown)
			}
			if !reflect.DeepEqual(got.Labels, placement.Labels{{Key: "app", Value: "web"}, {Key: "pod-template-hash", Value: "1"}}) {
				t.Errorf("labels %v", got.Labels)
			}
			if !reflect.DeepEqual(got.Images, []string{"app:1"}) {
				t.Errorf("images %v", got.Images)
			}
		}},
		{"init containers, sidecars and overhead", base(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{
				{Name: "migrate", Image: "migrate:1", Resources: requests("1", "64Mi")},
				{Name: "proxy", Image: "proxy:1", Resources: requests("100m", "32Mi"), RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
			}
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("10m")}
		}), func(t *testing.T, got *placement.Template) {
			// CPU: the largest init container (1) beats the containers
			// and sidecar (350m); memory: containers and sidecar (288Mi)
			// beat the init container (64Mi); plus overhead.
			if got.Requests.MilliCPU != 1010 || got.Requests.Memory != 288<<20 {
				t.Errorf("requests %+v, want 1010m and 288Mi", got.Requests)
			}
			if !reflect.DeepEqual(got.Images, []string{"migrate:1", "proxy:1", "app:1"}) {
				t.Errorf("images %v", got.Images)
			}
		}},
		{"no requests: scored with the scheduler's defaults", base(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
		}), func(t *testing.T, got *placement.Template) {
			if got.Requests.MilliCPU != 0 || got.ScoreMilliCPU != 100 || got.ScoreMemory != 200<<20 {
				t.Errorf("requests %+v, scored %d/%d", got.Requests, got.ScoreMilliCPU, got.ScoreMemory)
			}
		}},
		{"scheduling constraints", base(func(p *corev1.Pod) {
			p.Spec.Priority = ptr.To[int32](100)
			p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule}}
			p.Spec.NodeSelector = map[string]string{"pool": "web"}
			p.Spec.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"ssd"}}}},
				}}, PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 20, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "rack", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
				}},
				PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
					{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, TopologyKey: "kubernetes.io/hostname"},
				}},
			}
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{
				{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, MatchLabelKeys: []string{"pod-template-hash"}, MinDomains: ptr.To[int32](3)},
				{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			}
		}), func(t *testing.T, got *placement.Template) {
			if got.Priority != 100 || len(got.Tolerations) != 1 || got.Tolerations[0].Value != "web" {
				t.Errorf("priority %d, tolerations %+v", got.Priority, got.Tolerations)
			}
			if !reflect.DeepEqual(got.NodeSelector, placement.Labels{{Key: "pool", Value: "web"}}) || len(got.NodeAffinity) != 1 {
				t.Errorf("node selector %v, affinity %+v", got.NodeSelector, got.NodeAffinity)
			}
			wantSpread := []placement.SpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", MinDomains: 3, Selector: placement.Selector{Requirements: []placement.Requirement{
				{Key: "app", Operator: placement.OpIn, Values: []string{"web"}},
				{Key: "pod-template-hash", Operator: placement.OpIn, Values: []string{"1"}},
			}}}}
			if !reflect.DeepEqual(got.Spread, wantSpread) {
				t.Errorf("spread (hard only, matchLabelKeys merged) %+v", got.Spread)
			}
			wantSoft := []placement.SpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", MinDomains: 1, Selector: webSelector}}
			if !reflect.DeepEqual(got.SoftSpread, wantSoft) {
				t.Errorf("soft spread %+v", got.SoftSpread)
			}
			wantPreferred := []placement.PreferredTerm{{Weight: 20, Term: placement.NodeSelectorTerm{Expressions: []placement.Requirement{{Key: "rack", Operator: placement.OpIn, Values: []string{"a"}}}}}}
			if !reflect.DeepEqual(got.PreferredAffinity, wantPreferred) {
				t.Errorf("preferred affinity %+v", got.PreferredAffinity)
			}
			if want := []placement.AffinityTerm{{Selector: webSelector, TopologyKey: "kubernetes.io/hostname"}}; !reflect.DeepEqual(got.AntiAffinity, want) {
				t.Errorf("anti-affinity %+v", got.AntiAffinity)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, buildTemplate(tc.pod, kindReplicaSet, metav1.GetControllerOfNoCopy(&tc.pod.ObjectMeta)))
		})
	}
}

func TestBuildTemplateUnknown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   string
	}{
		{"nothing", func(*corev1.Pod) {}, ""},
		{"required pod affinity", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "zone"}}}}
		}, "required inter-pod affinity"},
		{"preferred pod affinity is fine", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 1}}}}
		}, ""},
		{"anti-affinity by namespace labels", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
				{TopologyKey: "zone", NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}},
			}}}
		}, "anti-affinity namespace selector"},
		{"claim", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
		}, "persistent volume claim"},
		{"emptyDir is fine", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, ""},
		{"DRA", func(p *corev1.Pod) { p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}} }, "dynamic resource allocation claims"},
		{"another scheduler", func(p *corev1.Pod) { p.Spec.SchedulerName = "bin-packer" }, "scheduler bin-packer"},
		{"the default scheduler named", func(p *corev1.Pod) { p.Spec.SchedulerName = "default-scheduler" }, ""},
		{"host ports", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, "host ports"},
		{"scheduling gates", func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "x"}} }, "scheduling gates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1"))
			tc.mutate(p)
			if got := buildTemplate(p, kindReplicaSet, nil).Unknown; got != tc.want {
				t.Errorf("Unknown = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAntiAffinityNamespaceSelector: a term selecting namespaces by labels
// says so, so that the model holds every pod it may match unknown; an
// empty namespaceSelector is every namespace.
func TestAntiAffinityNamespaceSelector(t *testing.T) {
	byLabels, _ := antiAffinityTerm(corev1.PodAffinityTerm{TopologyKey: "zone",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}, nil)
	if !byLabels.NamespaceSelector || byLabels.AllNamespaces {
		t.Errorf("namespaceSelector by labels: %+v, want NamespaceSelector only", byLabels)
	}
	empty, reason := antiAffinityTerm(corev1.PodAffinityTerm{TopologyKey: "zone", NamespaceSelector: &metav1.LabelSelector{}}, nil)
	if empty.NamespaceSelector || !empty.AllNamespaces || reason != "" {
		t.Errorf("empty namespaceSelector: %+v, %q; want AllNamespaces, known", empty, reason)
	}
}

// TestTemplatesInterned: the pods of one ReplicaSet in different zones,
// and of one StatefulSet revision despite their per-pod labels, share one
// template; another ReplicaSet has its own.
func TestTemplatesInterned(t *testing.T) {
	sts := func(name string) *corev1.Pod {
		p := pod("ns", name, "a", true, owned("StatefulSet", "db"))
		p.Labels = map[string]string{"app": "db", "statefulset.kubernetes.io/pod-name": name, "controller-revision-hash": "r1"}
		return p
	}
	a := mustTrim(t, sts("db-0")).(*cachedPod)
	b := mustTrim(t, sts("db-1")).(*cachedPod)
	if a.template != b.template {
		t.Errorf("pods of one StatefulSet revision have two templates: %p, %p", a.template, b.template)
	}
	// The API server copies the zone and region of a pod's node onto it
	// (PodTopologyLabels admission): pods of one ReplicaSet in two zones.
	inZone := func(p *corev1.Pod, zone string) *corev1.Pod {
		p.Labels = map[string]string{"app": "web", "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "r"}
		return p
	}
	rs1 := mustTrim(t, inZone(pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1")), "z1")).(*cachedPod)
	rs1b := mustTrim(t, inZone(pod("ns", "web-1-a", "b", false, owned("ReplicaSet", "web-1")), "z2")).(*cachedPod)
	rs2 := mustTrim(t, pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-2"))).(*cachedPod)
	if rs1.template != rs1b.template || rs1.template == rs2.template {
		t.Errorf("templates: same ReplicaSet %p %p, another %p", rs1.template, rs1b.template, rs2.template)
	}
}

func TestPDBInput(t *testing.T) {
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "mathoid", Name: "mathoid", Generation: 2},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromString("50%")),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mathoid"}},
		},
		Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 2, DisruptionsAllowed: 2},
	}
	got := mustTrim(t, pdb).(*cachedPDB).pdb
	want := placement.PDB{Namespace: "mathoid", Name: "mathoid", DisruptionsAllowed: 2, Selector: placement.Selector{
		Requirements: []placement.Requirement{{Key: "app", Operator: placement.OpIn, Values: []string{"mathoid"}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pdb = %+v, want %+v", got, want)
	}
	pdb.Generation = 3 // changed, not yet seen by the disruption controller
	if got := mustTrim(t, pdb).(*cachedPDB).pdb.DisruptionsAllowed; got != 0 {
		t.Errorf("disruptionsAllowed of an unobserved generation = %d, want 0", got)
	}
}

// TestNodeImagesShareInternedImages: nodes that hold the same image (same
// names, same size) share one Image, and different ones do not merge.
func TestNodeImagesShareInternedImages(t *testing.T) {
	status := func(size int64, names ...string) []corev1.ContainerImage {
		return []corev1.ContainerImage{{Names: names, SizeBytes: size}}
	}
	a := nodeImages(status(100, "registry.invalid/app@sha256:1", "registry.invalid/app:1"))
	b := nodeImages(status(100, "registry.invalid/app@sha256:1", "registry.invalid/app:1"))
	if a[0] != b[0] {
		t.Errorf("two nodes holding the same image got two copies: %p %p", a[0], b[0])
	}
	for _, other := range [][]corev1.ContainerImage{
		status(101, "registry.invalid/app@sha256:1", "registry.invalid/app:1"),
		status(100, "registry.invalid/app@sha256:1"),
		status(100, "registry.invalid/app:1", "registry.invalid/app@sha256:1"),
	} {
		if got := nodeImages(other); got[0] == a[0] {
			t.Errorf("%v shares the Image of %v", other, *a[0])
		}
	}
}

// TestTemplatesShareInternedTemplates: equal templates are one pointer,
// templates that differ in any field are not.
func TestTemplatesShareInternedTemplates(t *testing.T) {
	one := &placement.Template{Namespace: "ns", Owner: "ReplicaSet/a", Requests: placement.Resources{MilliCPU: 100}}
	same := &placement.Template{Namespace: "ns", Owner: "ReplicaSet/a", Requests: placement.Resources{MilliCPU: 100}}
	other := &placement.Template{Namespace: "ns", Owner: "ReplicaSet/a", Requests: placement.Resources{MilliCPU: 101}}
	if templates.intern(one) != templates.intern(same) {
		t.Error("equal templates are two pointers")
	}
	if templates.intern(other) == templates.intern(one) {
		t.Error("templates with different requests share a pointer")
	}
}

// TestPodRequestsMatchesResourceHelper: the allocation-free podRequests
// agrees with resourcehelper.PodRequests, which it replaces for common
// pods, and declines the pods only the helper handles.
func TestPodRequestsMatchesResourceHelper(t *testing.T) {
	req := func(cpu, memory string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}}
		if cpu != "" {
			r.Requests[corev1.ResourceCPU] = apiresource.MustParse(cpu)
		}
		if memory != "" {
			r.Requests[corev1.ResourceMemory] = apiresource.MustParse(memory)
		}
		return r
	}
	always := corev1.ContainerRestartPolicyAlways
	storage := req("100m", "")
	storage.Requests[corev1.ResourceEphemeralStorage] = apiresource.MustParse("1Gi")
	specs := map[string]corev1.PodSpec{
		"no requests":    {Containers: []corev1.Container{{Name: "a"}}},
		"one container":  {Containers: []corev1.Container{{Name: "a", Resources: req("250m", "512Mi")}}},
		"cpu only":       {Containers: []corev1.Container{{Name: "a", Resources: req("1", "")}, {Name: "b", Resources: req("", "1Gi")}}},
		"ephemeral":      {Containers: []corev1.Container{{Name: "a", Resources: storage}}},
		"big init":       {InitContainers: []corev1.Container{{Name: "i", Resources: req("2", "64Mi")}}, Containers: []corev1.Container{{Name: "a", Resources: req("500m", "1Gi")}}},
		"sidecar":        {InitContainers: []corev1.Container{{Name: "s", RestartPolicy: &always, Resources: req("100m", "128Mi")}, {Name: "i", Resources: req("1", "")}}, Containers: []corev1.Container{{Name: "a", Resources: req("500m", "1Gi")}}},
		"init then side": {InitContainers: []corev1.Container{{Name: "i", Resources: req("3", "")}, {Name: "s", RestartPolicy: &always, Resources: req("100m", "128Mi")}}, Containers: []corev1.Container{{Name: "a", Resources: req("500m", "")}}},
		"overhead":       {Overhead: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("50m")}, Containers: []corev1.Container{{Name: "a", Resources: req("500m", "1Gi")}}},
		"sub-milli sums": {Containers: []corev1.Container{{Name: "a", Resources: req("1.5", "1.5Gi")}, {Name: "b", Resources: req("333m", "100M")}}},
		"two sidecars":   {InitContainers: []corev1.Container{{Name: "s1", RestartPolicy: &always, Resources: req("100m", "")}, {Name: "s2", RestartPolicy: &always, Resources: req("", "64Mi")}}, Containers: []corev1.Container{{Name: "a"}}},
	}
	for name, spec := range specs {
		pod := &corev1.Pod{Spec: spec}
		for _, defaults := range []bool{false, true} {
			opts := resourcehelper.PodResourcesOptions{}
			if defaults {
				opts.NonMissingContainerRequests = scoreDefaults
			}
			want := resourcehelper.PodRequests(pod, opts)
			got, ok := podRequests(&pod.Spec, defaults)
			if !ok {
				t.Errorf("%s: declined", name)
				continue
			}
			storage := want[corev1.ResourceEphemeralStorage]
			if w := (requestVector{want.Cpu().MilliValue(), want.Memory().Value(), storage.Value()}); got != w {
				t.Errorf("%s (defaults %v): %v, helper %v", name, defaults, got, w)
			}
		}
	}
	gpu := corev1.ResourceRequirements{Requests: corev1.ResourceList{"example.com/gpu": apiresource.MustParse("1")}}
	for name, spec := range map[string]corev1.PodSpec{
		"extended resource":   {Containers: []corev1.Container{{Name: "a", Resources: gpu}}},
		"pod-level resources": {Resources: &corev1.ResourceRequirements{}, Containers: []corev1.Container{{Name: "a"}}},
		"resource claims":     {ResourceClaims: []corev1.PodResourceClaim{{Name: "c"}}, Containers: []corev1.Container{{Name: "a"}}},
	} {
		if _, ok := podRequests(&spec, false); ok {
			t.Errorf("%s: computed without the helper", name)
		}
	}
}

// TestTemplatesShareTolerations: templates of different workloads with the
// same tolerations share one copy, equal to their own.
func TestTemplatesShareTolerations(t *testing.T) {
	withDefaults := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.Tolerations = []corev1.Toleration{
			{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
			{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
		}
		return p
	}
	a := mustTrim(t, withDefaults(pod("ns", "web-1-a", "a", true, owned("ReplicaSet", "web-1")))).(*cachedPod).template
	b := mustTrim(t, withDefaults(pod("ns", "api-1-a", "a", true, owned("ReplicaSet", "api-1")))).(*cachedPod).template
	if a == b {
		t.Fatal("two workloads share a template")
	}
	want := []placement.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: "Exists", Effect: placement.EffectNoExecute},
		{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: placement.EffectNoExecute},
	}
	if !reflect.DeepEqual(a.Tolerations, want) || !reflect.DeepEqual(b.Tolerations, want) {
		t.Errorf("tolerations %+v and %+v, want %+v", a.Tolerations, b.Tolerations, want)
	}
	if &a.Tolerations[0] != &b.Tolerations[0] {
		t.Error("the two templates keep a copy each")
	}
	if cap(a.Tolerations) != len(a.Tolerations) {
		t.Error("the shared tolerations are not clipped: an append would write into them")
	}
}

// TestScratchTemplateLeavesNothingBehind: podTemplate builds every pod's
// template into one scratch template; whatever pod came before, each gets
// the template built for it alone, and a pod with fewer labels,
// tolerations, selectors or images than the one before gets none of its.
func TestScratchTemplateLeavesNothingBehind(t *testing.T) {
	rich := func(name string) *corev1.Pod {
		p := pod("ns", name, "a", true, owned("ReplicaSet", "rich"))
		p.Labels = map[string]string{"app": "rich", "tier": "db", "pod-template-hash": "9"}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "registry.invalid/side:2"})
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.invalid/init:3"}}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		p.Spec.NodeSelector = map[string]string{"disk": "ssd", "pool": "db"}
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "rich"}},
		}}
		return p
	}
	bare := func(name string) *corev1.Pod {
		p := pod("other", name, "b", true, owned("ReplicaSet", "bare"))
		p.Labels = nil
		p.Spec.Containers = []corev1.Container{{Name: "c"}}
		return p
	}
	for i, p := range []*corev1.Pod{rich("r-1"), bare("b-1"), rich("r-2"), bare("b-2"), pod("ns", "plain", "a", true, owned("ReplicaSet", "plain"))} {
		ref := metav1.GetControllerOfNoCopy(&p.ObjectMeta)
		want := buildTemplate(p, kindReplicaSet, ref)
		if got := podTemplate(p, kindReplicaSet, ref); !reflect.DeepEqual(got, want) {
			t.Errorf("pod %d (%s): template\n%+v\nwant\n%+v", i, p.Name, got, want)
		}
	}
	if podTemplate(rich("r-3"), kindReplicaSet, nil) == podTemplate(bare("b-3"), kindReplicaSet, nil) {
		t.Error("a rich and a bare pod share a template")
	}
}
