package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// BenchmarkTrimPod is what the informer's transform costs for one pod of
// a ReplicaSet whose template is interned already: every pod of a sync
// after the first of its ReplicaSet.
func BenchmarkTrimPod(b *testing.B) {
	var pods []*corev1.Pod
	for _, obj := range synth.Generate(synth.ForPods(1_000)).Objects() {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, pod)
		}
	}
	kept := make([]any, len(pods)) // keeps the interned templates alive
	for i, pod := range pods {
		kept[i], _ = trim(pod)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := trim(pods[i%len(pods)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	_ = kept
}
