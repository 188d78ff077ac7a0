package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync"
)

// A gzip scrape writes the figures as gzip members compressed once per
// analysis, not once per scrape: Prometheus asks for gzip, and rendering
// and compressing half a million series was most of a scrape's time
// (docs/benchmarks.md). A gzip stream is a series of members (RFC 1952,
// section 2.2) that a reader decompresses as one: Go's gzip.Reader, which
// Prometheus and Go's HTTP client read with, gzip(1) and zlib's inflate
// all do. The exporter's own metrics, which change from scrape to scrape,
// are compressed per scrape into members of their own between them.
//
// After the caches change, most services' figures have not: the members of
// per-service families are cut into chunks of services, and a chunk whose
// services have the same labels and figures as a chunk of the analysis
// before keeps its member. Chunks end where a service's labels hash to a
// marker, not every so many services, so that a service created or deleted
// changes the chunk it is in and no other.

const (
	// chunkMarker ends a chunk after a service whose label hash has
	// these bits set: a chunk holds 256 services on average.
	chunkMarker = 1<<8 - 1
	// maxChunk bounds a chunk should the hash find no marker for long.
	maxChunk = 1024
)

// compressedFigures is the figures of one analysis as gzip members, for
// each family of the handler (in its order) the members to write one
// after the other; none for a family without samples.
type compressedFigures struct {
	families [][][]byte
}

// memberKey names the member of one family for a chunk of services by the
// chunk's content: its services' labels and figures.
type memberKey struct {
	family int
	chunk  uint64
}

// chunk is a run of consecutive services of a scrape and the hash of their
// content.
type chunk struct {
	from, to int
	hash     uint64
}

// compressor compresses the figures of an analysis, reusing the members
// of the analysis before where their content is the same.
type compressor struct {
	families []family
	seed     maphash.Seed
	// marker is chunkMarker; tests make chunks smaller.
	marker uint64

	// mu makes concurrent scrapes of one analysis wait for one build and
	// share it, and guards what follows.
	mu sync.Mutex
	// headers are the compressed HELP and TYPE lines of each family,
	// built on first use.
	headers [][]byte
	// built is the id of the scrape of the last build and result its
	// members; members are its per-service members by content, nil for a
	// chunk without samples: what the next build may reuse. The scrape
	// itself is not kept: the collector drops its analysis before it
	// builds the next, so that the two are never live together.
	built   uint64
	result  *compressedFigures
	members map[memberKey][]byte
	// compressed and reused count the per-service members compressed and
	// those taken from the build before, for tests and benchmarks.
	compressed, reused int

	// Scratch reused by each compression.
	out  bytes.Buffer
	gz   *gzip.Writer
	text *bufio.Writer
}

func newCompressor(families []family) *compressor {
	gz, err := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	if err != nil {
		panic(err) // Only for an invalid level.
	}
	return &compressor{families: families, seed: maphash.MakeSeed(), marker: chunkMarker, gz: gz, text: bufio.NewWriterSize(nil, 32<<10)}
}

// figures returns the compressed figures of s.
func (c *compressor) figures(s *scrape) *compressedFigures {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.result != nil && c.built == s.id {
		return c.result
	}
	if c.headers == nil {
		c.headers = make([][]byte, len(c.families))
		for i := range c.families {
			c.headers[i] = c.compress(func(w *textWriter) {
				w.family = &c.families[i]
				w.header()
			})
		}
	}
	chunks := c.chunks(s)
	result := &compressedFigures{families: make([][][]byte, len(c.families))}
	members := make(map[memberKey][]byte, len(c.members))
	for i := range c.families {
		f := &c.families[i]
		var list [][]byte
		if f.service == nil {
			if m := c.compress(func(w *textWriter) {
				w.begin(f)
				f.write(w, s)
			}); m != nil {
				list = append(list, m)
			}
			result.families[i] = list
			continue
		}
		for _, ch := range chunks {
			key := memberKey{family: i, chunk: ch.hash}
			m, ok := c.members[key]
			if ok {
				c.reused++
			} else {
				c.compressed++
				m = c.compress(func(w *textWriter) {
					w.family = f
					for j := ch.from; j < ch.to; j++ {
						f.service(w, s, &s.services[j])
					}
				})
			}
			members[key] = m
			if m != nil {
				list = append(list, m)
			}
		}
		if len(list) > 0 {
			list = append([][]byte{c.headers[i]}, list...)
		}
		result.families[i] = list
	}
	c.built, c.result, c.members = s.id, result, members
	return result
}

// compress returns what write writes as one gzip member, or nil when it
// writes nothing.
func (c *compressor) compress(write func(w *textWriter)) []byte {
	c.out.Reset()
	c.gz.Reset(&c.out)
	c.text.Reset(c.gz)
	w := &textWriter{Writer: c.text}
	write(w)
	if !w.wrote {
		return nil
	}
	// Writing to a bytes.Buffer fails only when memory does, which panics.
	_ = c.text.Flush()
	_ = c.gz.Close()
	return bytes.Clone(c.out.Bytes())
}

// chunks cuts the services of s into chunks and hashes their content:
// everything a per-service family writes.
func (c *compressor) chunks(s *scrape) []chunk {
	var h maphash.Hash
	h.SetSeed(c.seed)
	begin := func() {
		h.Reset()
		// The order the topology keys are written in.
		for _, k := range s.keys {
			h.WriteString(s.report.TopologyKeys[k])
			h.WriteByte(0)
		}
	}
	chunks := make([]chunk, 0, len(s.services)/int(c.marker+1)+1)
	begin()
	from := 0
	for i := range s.services {
		svc := &s.services[i]
		hashService(&h, svc)
		if maphash.String(c.seed, svc.labels)&c.marker == c.marker || i+1-from == maxChunk || i+1 == len(s.services) {
			chunks = append(chunks, chunk{from: from, to: i + 1, hash: h.Sum64()})
			from = i + 1
			begin()
		}
	}
	return chunks
}

// hashService writes into h whatever a per-service family writes of svc.
// A field a family starts to write must be added here, or a gzip scrape
// goes on writing its old value: TestGzipScrapesFollowChanges compares
// gzip and plain scrapes across random changes.
func hashService(h *maphash.Hash, svc *service) {
	h.WriteString(svc.labels)
	h.WriteByte(0)
	f := svc.Figures
	values := [...]int{
		svc.Service.DesiredReplicas, f.ReplicasReady, f.ReplicasSchedulable, f.Nodes, f.SchedulableNodes, f.MinNodes,
		svc.unplaceable, boolInt(svc.unplaceableKnown), svc.warmNodes, boolInt(svc.displaced),
		len(f.Domains), len(f.NodeReplicas), boolInt(svc.atRisk), int(math.Float64bits(f.ConcentrationRatio)),
	}
	var b [len(values) * 8]byte
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[i*8:], uint64(v))
	}
	h.Write(b[:])
	for _, d := range f.Domains {
		h.WriteString(d.Key)
		h.WriteByte(0)
		var n [16]byte
		binary.LittleEndian.PutUint64(n[:8], uint64(d.All))
		binary.LittleEndian.PutUint64(n[8:], uint64(d.Schedulable))
		h.Write(n[:])
	}
	for _, n := range f.NodeReplicas {
		h.WriteString(n.Node)
		var count [8]byte
		binary.LittleEndian.PutUint64(count[:], uint64(n.Count))
		h.Write(count[:])
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
