package cluster

import (
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

// TestInformersHaveNoIndexes: the factory's informers index by namespace,
// which costs memory per object and serves nobody here.
func TestInformersHaveNoIndexes(t *testing.T) {
	w, err := New(fake.NewClientset(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range w.resources {
		if indexers := r.informer.GetIndexer().GetIndexers(); len(indexers) != 0 {
			t.Errorf("%s: indexers %v", r.name, indexers)
		}
	}
}
