// Package synth generates a synthetic cluster of a given size: Nodes,
// Deployments with their ReplicaSets, StatefulSets, Services with their
// EndpointSlices, and bound, Ready pods. The Go benchmarks feed it to fake
// clientsets and the scale harness loads it into a real API server, so both
// measure the same shape of cluster.
//
// The objects look like what the API server hands out: pods carry
// containers with images and resource requests, the tolerations the
// DefaultTolerationSeconds admission plugin adds, labels, an owner reference
// with a UID, a pod IP and the conditions a kubelet sets; nodes carry
// allocatable resources and the 30 to 50 images a kubelet reports. So the
// cost of trimming them, and of the placement model's input, is measured too.
package synth

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ZoneKey is the topology label every synthetic node carries.
const ZoneKey = "topology.kubernetes.io/zone"

// Zones is the number of distinct zones the nodes are spread over.
const Zones = 3

// ServicesPerNamespace keeps namespaces at a realistic size.
const ServicesPerNamespace = 100

// StatefulEvery makes every n-th service a StatefulSet instead of a
// Deployment, so both pod ownership paths of the snapshot are exercised.
const StatefulEvery = 10

// Size is the shape of a synthetic cluster.
type Size struct {
	Nodes, Pods, Services int
}

// String names the size as in the results table.
func (s Size) String() string {
	return fmt.Sprintf("%d nodes / %d pods / %d services", s.Nodes, s.Pods, s.Services)
}

// ForPods is the size the benchmarks use: 30 pods per node and 10 pods per
// service, the density of the Kubernetes scalability thresholds (5,000
// nodes, 150,000 pods).
func ForPods(pods int) Size {
	return Size{Nodes: max(1, pods/30), Pods: pods, Services: max(1, pods/10)}
}

// Service is one synthetic service: its workload, the ReplicaSet of a
// Deployment, the Service in front of it and its pods.
type Service struct {
	Namespace   string
	Deployment  *appsv1.Deployment
	ReplicaSet  *appsv1.ReplicaSet
	StatefulSet *appsv1.StatefulSet
	Service     *corev1.Service
	Pods        []*corev1.Pod
}

// Cluster is every object of a synthetic cluster.
type Cluster struct {
	Size       Size
	Namespaces []string
	Nodes      []*corev1.Node
	Services   []*Service
}

// NodeName is the name of the i-th node.
func NodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// NamespaceName is the namespace of the i-th service.
func NamespaceName(service int) string {
	return fmt.Sprintf("ns-%03d", service/ServicesPerNamespace)
}

// Generate builds a cluster of the given size. Pods are dealt to services
// as evenly as possible and to nodes round-robin, so every node holds about
// Pods/Nodes of them and a service's replicas land on distinct nodes.
func Generate(size Size) *Cluster {
	c := &Cluster{Size: size}
	for i := range size.Nodes {
		c.Nodes = append(c.Nodes, Node(i))
	}
	nextNode := 0
	nodeImages := make([]map[string]bool, size.Nodes)
	for i := range nodeImages {
		nodeImages[i] = map[string]bool{}
	}
	for i := range size.Services {
		ns := NamespaceName(i)
		if len(c.Namespaces) == 0 || c.Namespaces[len(c.Namespaces)-1] != ns {
			c.Namespaces = append(c.Namespaces, ns)
		}
		replicas := size.Pods / size.Services
		if i < size.Pods%size.Services {
			replicas++
		}
		svc := &Service{Namespace: ns}
		name := fmt.Sprintf("svc-%05d", i)
		labels := map[string]string{"app": name}
		uid := func(kind string) types.UID { return types.UID(fmt.Sprintf("%s-%s-%s", kind, ns, name)) }
		var owner metav1.OwnerReference
		podName := func(j int) string { return fmt.Sprintf("%s-%d", name, j) }
		if i%StatefulEvery == StatefulEvery-1 {
			svc.StatefulSet = &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid("sts"), Labels: labels},
				Spec: appsv1.StatefulSetSpec{
					Replicas: ptr(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: labels},
					ServiceName: name, Template: template(i, labels),
				},
			}
			owner = controllerRef("apps/v1", "StatefulSet", name, svc.StatefulSet.UID)
		} else {
			svc.Deployment = &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid("deploy"), Labels: labels},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: template(i, labels),
					// The harness runs no controller-manager; paused says
					// so to anyone reading the objects.
					Paused: true,
				},
			}
			rsName := name + "-7d9f8b6c5"
			rsLabels := map[string]string{"app": name, "pod-template-hash": "7d9f8b6c5"}
			svc.ReplicaSet = &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: ns, Name: rsName, UID: uid("rs"), Labels: rsLabels,
					OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", name, svc.Deployment.UID)},
				},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: ptr(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
					Template: template(i, rsLabels),
				},
			}
			owner = controllerRef("apps/v1", "ReplicaSet", rsName, svc.ReplicaSet.UID)
			labels = rsLabels
			podName = func(j int) string { return fmt.Sprintf("%s-%05x", rsName, j) }
		}
		svc.Service = &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid("svc")},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": name},
				// Headless: no cluster IP to allocate at 15,000 Services.
				ClusterIP: corev1.ClusterIPNone,
				Ports:     []corev1.ServicePort{{Name: "http", Port: 8080}},
			},
		}
		spec := template(i, labels).Spec
		for j := range replicas {
			node := nextNode % size.Nodes
			nextNode++
			svc.Pods = append(svc.Pods, Pod(ns, podName(j), labels, owner, spec, NodeName(node), podIP(nextNode)))
			for _, c := range spec.InitContainers {
				nodeImages[node][c.Image] = true
			}
			for _, c := range spec.Containers {
				nodeImages[node][c.Image] = true
			}
		}
		c.Services = append(c.Services, svc)
	}
	for i, node := range c.Nodes {
		node.Status.Images = nodeImageList(nodeImages[i])
	}
	return c
}

// Node is the i-th node: Ready, with the labels a kubelet sets.
func Node(i int) *corev1.Node {
	name := NodeName(i)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID("node-" + name),
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				ZoneKey:                  fmt.Sprintf("zone-%d", i%Zones),
			},
		},
		Status: NodeStatus(),
	}
}

// NodeStatus is the status of a healthy node: 32 CPUs, 128 GiB, room for
// 110 pods, and the images every node runs (its pods' images are added by
// Generate).
func NodeStatus() corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("128Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"),
	}
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("31500m"),
		corev1.ResourceMemory:           resource.MustParse("125Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("180Gi"),
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Images:      nodeImageList(nil),
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure"},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID"},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"},
		},
	}
}

// Pod is a pod of the given template bound to node, with the status of a
// running, Ready pod.
func Pod(namespace, name string, labels map[string]string, owner metav1.OwnerReference, spec corev1.PodSpec, node, ip string) *corev1.Pod {
	spec.NodeName = node
	// What the DefaultTolerationSeconds admission plugin adds to every pod.
	spec.Tolerations = []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, UID: types.UID("pod-" + namespace + "-" + name),
			Labels: labels, OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec:   spec,
		Status: PodStatus(ip, true),
	}
}

// PodStatus is the status a kubelet reports for a running pod.
func PodStatus(ip string, ready bool) corev1.PodStatus {
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	return corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: readyStatus},
			{Type: corev1.ContainersReady, Status: readyStatus},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		},
		PodIP:  ip,
		PodIPs: []corev1.PodIP{{IP: ip}},
		HostIP: "10.0.0.1",
	}
}

// EndpointSlice lists the pods of a service as its endpoint controller
// would: one endpoint per pod with its address, node and readiness.
func EndpointSlice(svc *Service) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace, Name: svc.Service.Name + "-x7k2p",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Service.Name,
				discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
	}
	for _, pod := range svc.Pods {
		ready := podReady(pod)
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready), Serving: ptr(ready), Terminating: ptr(false)},
			NodeName:   ptr(pod.Spec.NodeName),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		})
	}
	return slice
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Objects returns every object of the cluster, EndpointSlices included, in
// an order an API server accepts (owners before what they own).
func (c *Cluster) Objects() []any {
	var objs []any
	for _, ns := range c.Namespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for _, n := range c.Nodes {
		objs = append(objs, n)
	}
	for _, s := range c.Services {
		if s.Deployment != nil {
			objs = append(objs, s.Deployment, s.ReplicaSet)
		}
		if s.StatefulSet != nil {
			objs = append(objs, s.StatefulSet)
		}
		objs = append(objs, s.Service, EndpointSlice(s))
		for _, p := range s.Pods {
			objs = append(objs, p)
		}
	}
	return objs
}

// template is the pod template of the i-th service: its own image, a mesh
// proxy sidecar in every second service, an init container in every fifth,
// and requests and limits in a few common sizes.
func template(i int, labels map[string]string) corev1.PodTemplateSpec {
	size := podSizes[i%len(podSizes)]
	app := corev1.Container{
		Name: "app", Image: fmt.Sprintf("registry.example/%s/svc-%05d:1.%d", NamespaceName(i), i, i%7),
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(size.cpu), corev1.ResourceMemory: resource.MustParse(size.memory)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(size.memory)},
		},
	}
	spec := corev1.PodSpec{
		Containers: []corev1.Container{app},
		// No token volume: nothing runs, and it keeps etcd smaller.
		AutomountServiceAccountToken: ptr(false),
	}
	if i%2 == 0 {
		spec.Containers = append(spec.Containers, corev1.Container{
			Name: "proxy", Image: proxyImage,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
		})
	}
	if i%5 == 0 {
		spec.InitContainers = []corev1.Container{{
			Name: "wait-for-db", Image: initImage,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			},
		}}
	}
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
}

// podSizes are the requests of the services' main containers, dealt round
// robin. 30 pods of the mean size take about a third of a node.
var podSizes = []struct{ cpu, memory string }{
	{"50m", "64Mi"}, {"100m", "128Mi"}, {"250m", "512Mi"}, {"500m", "1Gi"}, {"1", "2Gi"}, {"250m", "256Mi"},
}

const (
	proxyImage = "registry.example/mesh/proxy:1.30.2"
	initImage  = "registry.example/tools/wait-for:2.1.0"
)

// systemImages are on every node: what its daemons and the pause container run.
var systemImages = []string{
	"registry.k8s.io/pause:3.10",
	"registry.k8s.io/kube-proxy:v1.35.0",
	"registry.example/monitoring/node-exporter:1.9.1",
	"registry.example/logging/fluent-bit:4.0.3",
	"registry.example/network/cni-node:3.30.2",
	"registry.example/storage/csi-node-driver:1.14.0",
	"registry.example/security/falco:0.41.0",
}

// nodeImageList is what a kubelet reports in status.images: the system
// images and the given ones, each under its digest and its tag, sorted so
// the output does not depend on map order.
func nodeImageList(images map[string]bool) []corev1.ContainerImage {
	names := append([]string(nil), systemImages...)
	for name := range images {
		names = append(names, name)
	}
	sort.Strings(names)
	list := make([]corev1.ContainerImage, 0, len(names))
	for _, name := range names {
		digest := sha256.Sum256([]byte(name))
		repo := name[:strings.LastIndex(name, ":")]
		list = append(list, corev1.ContainerImage{
			Names:     []string{fmt.Sprintf("%s@sha256:%x", repo, digest), name},
			SizeBytes: int64(20<<20 + int(digest[0])<<20),
		})
	}
	return list
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
}

// podIP is a distinct address in 10.128.0.0/9 for each pod.
func podIP(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", 128+(i>>16)&0x7f, (i>>8)&0xff, i&0xff)
}

func ptr[T any](v T) *T { return &v }
