package collector

import (
	"bufio"
	"strconv"
	"strings"
)

// textWriter writes samples in the Prometheus text exposition format
// (version 0.0.4), byte for byte what expfmt.MetricFamilyToText writes for
// the same family: TestExpositionIsWhatExpfmtWrites holds it to that.
//
// A family's HELP and TYPE lines wait for its first sample, because the
// registry leaves out families without samples. Write errors stick in the
// bufio.Writer and come out of its Flush.
type textWriter struct {
	*bufio.Writer
	family  *family
	pending bool
	// wrote is set by the first sample or header written.
	wrote bool
	// number and scratch are reused buffers for a value and a label.
	number, scratch []byte
}

// begin starts a family; its header is written with its first sample.
func (w *textWriter) begin(f *family) {
	w.family = f
	w.pending = true
}

// sample writes one sample of the current family; labels are name, value
// pairs in the order of family.labels.
func (w *textWriter) sample(value float64, labels ...string) {
	w.start()
	if len(labels) > 0 {
		w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.WriteByte(',')
			}
			w.label(labels[i], labels[i+1])
		}
		w.WriteByte('}')
	}
	w.end(value)
}

// serviceSample writes a sample labelled with a service's label block
// (see service.labels) and, unless extraName is empty, one more label that
// sorts after "namespace".
func (w *textWriter) serviceSample(labels string, extraName, extraValue string, value float64) {
	w.start()
	w.WriteByte('{')
	w.WriteString(labels)
	if extraName != "" {
		w.WriteByte(',')
		w.label(extraName, extraValue)
	}
	w.WriteByte('}')
	w.end(value)
}

// start writes the pending header and the metric name.
func (w *textWriter) start() {
	if w.pending {
		w.pending = false
		w.header()
	}
	w.wrote = true
	w.WriteString(w.family.name)
}

// header writes the HELP and TYPE lines of the current family.
func (w *textWriter) header() {
	w.wrote = true
	w.WriteString("# HELP ")
	w.WriteString(w.family.name)
	w.WriteByte(' ')
	helpEscaper.WriteString(w, w.family.help)
	w.WriteString("\n# TYPE ")
	w.WriteString(w.family.name)
	w.WriteString(" gauge\n")
}

func (w *textWriter) label(name, value string) {
	w.scratch = appendLabel(w.scratch[:0], name, value)
	w.Write(w.scratch)
}

// appendLabel appends name="value", the value escaped.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	if needsEscaping(value) {
		value = labelEscaper.Replace(value)
	}
	b = append(b, value...)
	return append(b, '"')
}

// needsEscaping is strings.ContainsAny(s, "\\\"\n") without building a
// character set for each of the million label values of a large scrape.
func needsEscaping(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '"', '\n':
			return true
		}
	}
	return false
}

// end writes the value the way expfmt does: the shortest 'g' form, with
// the common values spelt out.
func (w *textWriter) end(value float64) {
	w.WriteByte(' ')
	switch value {
	case 0:
		w.WriteByte('0')
	case 1:
		w.WriteByte('1')
	default:
		w.number = strconv.AppendFloat(w.number[:0], value, 'g', -1, 64)
		w.Write(w.number)
	}
	w.WriteByte('\n')
}

// The escaping of the text format: backslash and newline in HELP, and the
// double quote too in label values.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)
