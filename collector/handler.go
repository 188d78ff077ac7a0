package collector

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Handler serves a scrape: the families of a gatherer (the exporter's own
// metrics) and the collector's figures, merged by family name into one text
// exposition, gzip-compressed when the client accepts it.
type Handler struct {
	gatherer   prometheus.Gatherer
	collector  *Collector
	families   []family
	compressor *compressor
	logger     *slog.Logger
}

// NewHandler returns the /metrics handler. The collector's health metrics
// reach it through gatherer, where the collector must be registered.
func NewHandler(gatherer prometheus.Gatherer, c *Collector, logger *slog.Logger) *Handler {
	families := figureFamilies(c.options)
	return &Handler{gatherer: gatherer, collector: c, families: families, compressor: newCompressor(families), logger: logger}
}

// ServeHTTP answers in the text format whatever the client asks for: every
// Prometheus accepts it, and it is the one format written here.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	format := expfmt.NegotiateAccept(r.Header, expfmt.FmtText)
	rw.Header().Set("Content-Type", string(format))
	var err error
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		rw.Header().Set("Content-Encoding", "gzip")
		err = h.writeGzip(rw, format)
	} else {
		err = h.Write(rw, format)
	}
	if err != nil {
		h.logger.Debug("scrape not delivered", "err", err)
	}
}

// deflaters compress at BestSpeed: on a 47 MB exposition it took a
// quarter of the default level's time (110 against 500 ms here) for a 9%
// larger body, and scrape latency is what matters in large clusters.
var deflaters = sync.Pool{New: func() any { return newDeflater() }}

// Write writes one whole exposition in format, which must be a text
// format. A gatherer error is logged and the families it did return are
// written, like promhttp's ContinueOnError; the error returned is about
// writing.
func (h *Handler) Write(w io.Writer, format expfmt.Format) error {
	if format.FormatType() != expfmt.TypeTextPlain {
		return fmt.Errorf("format %q: only the text format is written", format)
	}
	gathered, s := h.gather()
	buffered := bufio.NewWriterSize(w, 64<<10)
	encoder := expfmt.NewEncoder(buffered, format)
	text := &textWriter{Writer: buffered}
	err := h.merge(gathered, s != nil, encoder.Encode, func(i int) error {
		text.begin(&h.families[i])
		h.families[i].writeAll(text, s)
		return nil
	})
	if err != nil {
		return err
	}
	if err := buffered.Flush(); err != nil {
		return fmt.Errorf("write the exposition: %w", err)
	}
	return nil
}

// writeGzip writes what Write writes as one gzip member: the figures as
// the pieces the compressor keeps for the analysis (compressed.go), each
// run of the exporter's own families as a piece compressed now.
func (h *Handler) writeGzip(w io.Writer, format expfmt.Format) error {
	if format.FormatType() != expfmt.TypeTextPlain {
		return fmt.Errorf("format %q: only the text format is written", format)
	}
	gathered, s := h.gather()
	var figures *compressedFigures
	if s != nil {
		figures = h.compressor.figures(s)
	}
	out := bufio.NewWriterSize(w, 64<<10)
	d := deflaters.Get().(*deflater)
	defer deflaters.Put(d)
	text := bufio.NewWriterSize(d, 16<<10)
	encoder := expfmt.NewEncoder(text, format)
	err := gzipMember(out, d, func(add func(p *piece)) error {
		open := false
		// endRun ends the piece of the gathered families written since the
		// last figures.
		endRun := func() error {
			if !open {
				return nil
			}
			open = false
			if err := text.Flush(); err != nil {
				return fmt.Errorf("compress the exposition: %w", err)
			}
			if err := d.end(); err != nil {
				return fmt.Errorf("compress the exposition: %w", err)
			}
			// The data went to out already.
			add(&piece{crc: d.crc, size: d.size, shift: shiftOver(d.size)})
			return nil
		}
		err := h.merge(gathered, s != nil,
			func(f *dto.MetricFamily) error {
				if !open {
					d.begin(out)
					text.Reset(d)
					open = true
				}
				return encoder.Encode(f)
			},
			func(i int) error {
				if err := endRun(); err != nil {
					return err
				}
				for _, p := range figures.families[i] {
					add(p)
				}
				return nil
			})
		if err != nil {
			return err
		}
		return endRun()
	})
	if err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write the exposition: %w", err)
	}
	return nil
}

// Prepare analyses the caches and compresses the figures as the next gzip
// scrape would, so that it finds them done: call it once the caches have
// synced, and the first scrape, which otherwise pays for the whole first
// analysis and its compression (100-260 ms at 150,000 pods), costs what a
// quiet one does. Before the sync it does nothing.
func (h *Handler) Prepare() {
	if s := h.collector.analysis(); s != nil {
		h.compressor.figures(s)
	}
}

// gather returns the exporter's own families and the analysis of the
// caches, nil before they have synced.
func (h *Handler) gather() ([]*dto.MetricFamily, *scrape) {
	gathered, err := h.gatherer.Gather()
	if err != nil {
		h.logger.Error("gathering the exporter's own metrics failed; serving what was gathered", "err", err)
	}
	return gathered, h.collector.analysis()
}

// merge calls gatheredFamily for each gathered family and figure with the
// index of each figure family, when withFigures, all in name order as the
// registry would write them.
func (h *Handler) merge(gathered []*dto.MetricFamily, withFigures bool, gatheredFamily func(*dto.MetricFamily) error, figure func(i int) error) error {
	next, figures := 0, 0
	if withFigures {
		figures = len(h.families)
	}
	// figuresBefore writes the figure families that sort before name; ""
	// stands for the end, after every name.
	figuresBefore := func(name string) error {
		for ; next < figures && (name == "" || h.families[next].name < name); next++ {
			if err := figure(next); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range gathered {
		if err := figuresBefore(f.GetName()); err != nil {
			return err
		}
		if next < figures && h.families[next].name == f.GetName() {
			return fmt.Errorf("metric family %s is both gathered and a figure", f.GetName())
		}
		if err := gatheredFamily(f); err != nil {
			return fmt.Errorf("encode %s: %w", f.GetName(), err)
		}
	}
	return figuresBefore("")
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, coding := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(coding, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q, found := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !found {
			return true
		}
		weight, err := strconv.ParseFloat(q, 64)
		return err == nil && weight > 0
	}
	return false
}
