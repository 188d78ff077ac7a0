package collector

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"hash/maphash"
	"io"
	"sync"
)

// A gzip scrape writes the figures compressed once per analysis, not once
// per scrape: Prometheus asks for gzip, and rendering and compressing half
// a million series was most of a scrape's time (docs/benchmarks.md).
//
// The response is one gzip member (RFC 1952) whose DEFLATE stream is the
// concatenation of pieces, each compressed on its own and ended with a
// sync flush: an empty stored block that leaves it byte-aligned and not
// final, so that the next piece may follow (RFC 1951; what zlib's
// Z_SYNC_FLUSH and flate.Writer.Flush write). The exporter's own metrics,
// which change from scrape to scrape, are compressed per scrape into
// pieces between the figures' pieces. The member's CRC-32 is combined from
// the pieces' (crc.go). A stream of several gzip members would need no
// CRC arithmetic, but curl --compressed and other readers stop after the
// first member without a word: a scrape cut short that looks complete.
//
// After the caches change, most services' figures have not: the pieces of
// per-service families are cut into chunks of services, and a chunk whose
// services have the same labels and figures as a chunk of the analysis
// before keeps its piece. Chunks end where a service's labels hash to a
// marker, not every so many services, so that a service created or deleted
// changes the chunk it is in and no other.

const (
	// chunkMarker ends a chunk after a service whose label hash has
	// these bits set: a chunk holds 256 services on average.
	chunkMarker = 1<<8 - 1
	// maxChunk bounds a chunk should the hash find no marker for long.
	maxChunk = 1024
)

// piece is text compressed into DEFLATE blocks that end byte-aligned and
// not final, with the CRC-32 and the length of the text.
type piece struct {
	data  []byte
	crc   uint32
	size  int64
	shift crcShift // over size bytes
}

// compressedFigures is the figures of one analysis as pieces, for each
// family of the handler (in its order) the pieces to write one after the
// other; none for a family without samples.
type compressedFigures struct {
	families [][]*piece
}

// pieceKey names the piece of one family for a chunk of services by the
// chunk's content: its services' labels and figures.
type pieceKey struct {
	family int
	chunk  uint64
}

// chunk is a run of consecutive services of a scrape and the hash of their
// content.
type chunk struct {
	from, to int
	hash     uint64
}

// deflater compresses what is written to it into a piece.
type deflater struct {
	flate *flate.Writer
	crc   uint32
	size  int64
}

func newDeflater() *deflater {
	w, err := flate.NewWriter(nil, flate.BestSpeed)
	if err != nil {
		panic(err) // Only for an invalid level.
	}
	return &deflater{flate: w}
}

// begin starts a piece written to w.
func (d *deflater) begin(w io.Writer) {
	d.flate.Reset(w)
	d.crc, d.size = 0, 0
}

func (d *deflater) Write(p []byte) (int, error) {
	d.crc = crc32.Update(d.crc, crc32.IEEETable, p)
	d.size += int64(len(p))
	return d.flate.Write(p)
}

// end ends the piece with a sync flush.
func (d *deflater) end() error { return d.flate.Flush() }

// gzipHeader starts a gzip member: no name, no time, compressed with
// DEFLATE at its fastest (XFL 4), on an unknown operating system.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

// gzipMember writes one gzip member: the header, then the pieces that
// write appends with its add function, then the final block and the
// trailer. Write errors stick in w; the caller flushes it.
func gzipMember(w *bufio.Writer, d *deflater, write func(add func(p *piece)) error) error {
	w.Write(gzipHeader)
	var crc uint32
	var size int64
	err := write(func(p *piece) {
		w.Write(p.data)
		crc = combineCRC(crc, p.crc, p.shift)
		size += p.size
	})
	if err != nil {
		return err
	}
	// The final block: an empty one.
	d.begin(w)
	if err := d.flate.Close(); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(size)) // modulo 2^32, as RFC 1952 says
	w.Write(trailer[:])
	return nil
}

// compressor compresses the figures of an analysis, reusing the pieces
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
	headers []*piece
	// built is the id of the scrape of the last build and result its
	// pieces; pieces are its per-service pieces by content, nil for a
	// chunk without samples: what the next build may reuse. The scrape
	// itself is not kept: the collector drops its analysis before it
	// builds the next, so that the two are never live together.
	built  uint64
	result *compressedFigures
	pieces map[pieceKey]*piece
	// compressed and reused count the per-service pieces compressed and
	// those taken from the build before, for tests and benchmarks.
	compressed, reused int

	// Scratch reused by each compression.
	out      bytes.Buffer
	deflater *deflater
	text     *bufio.Writer
}

func newCompressor(families []family) *compressor {
	return &compressor{families: families, seed: maphash.MakeSeed(), marker: chunkMarker, deflater: newDeflater(), text: bufio.NewWriterSize(nil, 32<<10)}
}

// figures returns the compressed figures of s.
func (c *compressor) figures(s *scrape) *compressedFigures {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.result != nil && c.built == s.id {
		return c.result
	}
	if c.headers == nil {
		c.headers = make([]*piece, len(c.families))
		for i := range c.families {
			c.headers[i] = c.compress(func(w *textWriter) {
				w.family = &c.families[i]
				w.header()
			})
		}
	}
	chunks := c.chunks(s)
	result := &compressedFigures{families: make([][]*piece, len(c.families))}
	pieces := make(map[pieceKey]*piece, len(c.pieces))
	for i := range c.families {
		f := &c.families[i]
		var list []*piece
		if f.service == nil {
			if p := c.compress(func(w *textWriter) {
				w.begin(f)
				f.write(w, s)
			}); p != nil {
				list = append(list, p)
			}
			result.families[i] = list
			continue
		}
		for _, ch := range chunks {
			key := pieceKey{family: i, chunk: ch.hash}
			p, ok := c.pieces[key]
			if ok {
				c.reused++
			} else {
				c.compressed++
				p = c.compress(func(w *textWriter) {
					w.family = f
					for j := ch.from; j < ch.to; j++ {
						f.service(w, s, &s.services[j])
					}
				})
			}
			pieces[key] = p
			if p != nil {
				list = append(list, p)
			}
		}
		if len(list) > 0 {
			list = append([]*piece{c.headers[i]}, list...)
		}
		result.families[i] = list
	}
	c.built, c.result, c.pieces = s.id, result, pieces
	return result
}

// compress returns what write writes as a piece, or nil when it writes
// nothing.
func (c *compressor) compress(write func(w *textWriter)) *piece {
	c.out.Reset()
	c.deflater.begin(&c.out)
	c.text.Reset(c.deflater)
	w := &textWriter{Writer: c.text}
	write(w)
	if !w.wrote {
		return nil
	}
	// Writing to a bytes.Buffer fails only when memory does, which panics.
	_ = c.text.Flush()
	_ = c.deflater.end()
	d := c.deflater
	return &piece{data: bytes.Clone(c.out.Bytes()), crc: d.crc, size: d.size, shift: shiftOver(d.size)}
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
		if svc.labelsHash&c.marker == c.marker || i+1-from == maxChunk || i+1 == len(s.services) {
			chunks = append(chunks, chunk{from: from, to: i + 1, hash: h.Sum64()})
			from = i + 1
			begin()
		}
	}
	return chunks
}

// hashService writes into h whatever a per-service family writes of svc:
// its labels and figures through their hash (see hashFigures), and what
// the scrape adds.
func hashService(h *maphash.Hash, svc *service) {
	values := [...]uint64{
		svc.figuresHash, uint64(svc.unplaceable), uint64(boolInt(svc.unplaceableKnown)), uint64(svc.warmNodes),
		uint64(boolInt(svc.displaced)), uint64(boolInt(svc.atRisk)),
	}
	var b [len(values) * 8]byte
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[i*8:], v)
	}
	h.Write(b[:])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
