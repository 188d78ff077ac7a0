package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestImageHolders: the holders found per distinct image are those a walk
// over every name on every node finds, for nodes sharing images, listing
// one twice, and two images under one name (of one size: which size a
// node holding both reports is not defined).
func TestImageHolders(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		var images []*Image
		for i := range 1 + r.IntN(8) {
			image := &Image{Names: []string{fmt.Sprintf("img-%d:1", i)}, SizeBytes: 100 << 20}
			if r.IntN(3) == 0 {
				image.Names = append(image.Names, fmt.Sprintf("img-%d@sha256:x", i))
			}
			if i > 0 && r.IntN(4) == 0 {
				// A tag that moved: two images under one name.
				image.Names = append(image.Names, fmt.Sprintf("img-%d:1", i-1))
			}
			images = append(images, image)
		}
		nodes := make([]Node, 1+r.IntN(10))
		for i := range nodes {
			for range r.IntN(6) {
				nodes[i].Images = append(nodes[i].Images, images[r.IntN(len(images))])
			}
		}
		want := map[string][]nodeImage{}
		for i := range nodes {
			for _, image := range nodes[i].Images {
				for _, name := range image.Names {
					if list := want[name]; len(list) == 0 || list[len(list)-1].node != int32(i) {
						want[name] = append(list, nodeImage{node: int32(i), size: image.SizeBytes})
					}
				}
			}
		}
		holders := newImageHolders(nodes)
		for name, list := range want {
			if got := holders.of(name); !reflect.DeepEqual(got, list) {
				t.Fatalf("seed %d: holders of %s %v, want %v", seed, name, got, list)
			}
		}
		if got := holders.of("not-there:1"); got != nil {
			t.Fatalf("seed %d: holders of an image no node has: %v", seed, got)
		}
	}
}
