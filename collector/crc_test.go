package collector

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCombineCRC holds combineCRC to hash/crc32 over random splits of
// random texts, empty pieces and long ones included.
func TestCombineCRC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		text := make([]byte, r.IntN(1<<(i%18)+1))
		for j := range text {
			text[j] = byte(r.Uint32())
		}
		split := r.IntN(len(text) + 1)
		a, b := text[:split], text[split:]
		got := combineCRC(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), shiftOver(int64(len(b))))
		if want := crc32.ChecksumIEEE(text); got != want {
			t.Fatalf("%d + %d bytes: combined CRC %08x, want %08x", len(a), len(b), got, want)
		}
	}
}
