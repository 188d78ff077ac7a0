// Package nagios implements the conventions of the monitoring plugins
// (Nagios, Icinga, NRPE): the four states and their exit codes, the range
// syntax of thresholds, performance data, and the output format whose first
// line is "STATE - summary | perfdata".
//
// It follows the Monitoring Plugins Development Guidelines
// (https://www.monitoring-plugins.org/doc/guidelines.html) and knows
// nothing about Kubernetes, so any check of the project can use it.
package nagios

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// State is the result of a check. Its value is the plugin's exit code.
type State int

// The states, with the exit codes the guidelines assign them.
const (
	OK       State = 0
	Warning  State = 1
	Critical State = 2
	Unknown  State = 3
)

// String returns the state as it starts the first line of output.
func (s State) String() string {
	switch s {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	case Critical:
		return "CRITICAL"
	default:
		return "UNKNOWN"
	}
}

// ExitCode is the process exit code of the state; anything out of range is
// UNKNOWN, as monitoring cores treat it.
func (s State) ExitCode() int {
	if s < OK || s > Unknown {
		return int(Unknown)
	}
	return int(s)
}

// rank orders states by how urgently they need a person: a CRITICAL part
// makes the whole CRITICAL even when another part is UNKNOWN, as
// max_state_alt of the monitoring plugins does.
func (s State) rank() int {
	switch s {
	case OK:
		return 0
	case Unknown:
		return 1
	case Warning:
		return 2
	default:
		return 3
	}
}

// Worst returns the most urgent of the states, OK when there are none.
func Worst(states ...State) State {
	worst := OK
	for _, s := range states {
		if s.rank() > worst.rank() {
			worst = s
		}
	}
	return worst
}

// Perfdata is one item of performance data:
// 'label'=value[UOM];[warn];[crit];[min];[max].
type Perfdata struct {
	Label string
	Value float64
	// UOM is the unit: "", "s", "%", "B", "KB", "MB", "TB" or "c" (a
	// counter, so graphs can derive a rate).
	UOM      string
	Warning  *Range
	Critical *Range
	// Min and Max are optional; nil leaves the field empty.
	Min, Max *float64
}

// Float returns a pointer to v, for Perfdata.Min and Max.
func Float(v float64) *float64 { return &v }

// String renders the item. Numbers use a dot and no exponent whatever the
// locale (strconv never localises), so every graphing add-on parses them;
// a value that is NaN or infinite is "U", the guidelines' "undetermined".
func (p Perfdata) String() string {
	var b strings.Builder
	b.WriteString(quoteLabel(p.Label))
	b.WriteByte('=')
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		b.WriteString("U")
	} else {
		b.WriteString(formatNumber(p.Value))
		b.WriteString(p.UOM)
	}
	fields := []string{rangeField(p.Warning), rangeField(p.Critical), numberField(p.Min), numberField(p.Max)}
	// Trailing empty fields may be dropped, and are, to keep lines short.
	for len(fields) > 0 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	for _, f := range fields {
		b.WriteByte(';')
		b.WriteString(f)
	}
	return b.String()
}

// quoteLabel quotes the label in single quotes, as it may hold spaces; a
// quote inside is doubled and '=' (which would end the label) replaced.
func quoteLabel(label string) string {
	label = strings.ReplaceAll(label, "=", "_")
	label = strings.ReplaceAll(label, "'", "''")
	return "'" + label + "'"
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func numberField(v *float64) string {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return ""
	}
	return formatNumber(*v)
}

func rangeField(r *Range) string {
	if r == nil {
		return ""
	}
	return r.String()
}

// Result is what a check found: its state, a one-line summary, performance
// data and detail lines.
type Result struct {
	State    State
	Summary  string
	Perfdata []Perfdata
	// Details are printed one per line after the first line; Icinga shows
	// them as the long output.
	Details []string
}

// MaxFirstLine is the most bytes Write puts on the first line, perfdata
// and newline included: NRPE's version 2 packets carry 1,024 bytes, the
// last a NUL, and check_nrpe -2 cuts whatever is longer. A first line cut
// there would lose its perfdata, the part graphs read.
const MaxFirstLine = 1023

// Write prints the result in the plugin output format:
//
//	STATE - summary | 'label'=value;warn;crit;min;max ...
//	detail
//	detail
//
// Every text goes through Line, so no label value can add a line or start
// perfdata. A first line longer than MaxFirstLine has its summary cut
// (ending in "...") and printed whole as the first detail line: the state
// and the perfdata always fit.
func (r *Result) Write(w io.Writer) error {
	var b strings.Builder
	head := r.State.String() + " - "
	summary := Line(r.Summary)
	var perfdata string
	for _, p := range r.Perfdata {
		item := " " + p.String()
		// Perfdata that cannot fit even beside an empty summary is cut
		// item by item; the long output has the figures in words.
		if len(head)+len(" |")+len(perfdata)+len(item)+1 > MaxFirstLine {
			break
		}
		perfdata += item
	}
	if perfdata != "" {
		perfdata = " |" + perfdata
	}
	details := make([]string, 0, len(r.Details)+1)
	if room := MaxFirstLine - len(head) - len(perfdata) - 1; len(summary) > room {
		details = append(details, summary)
		summary = cut(summary, room-len("...")) + "..."
	}
	b.WriteString(head)
	b.WriteString(summary)
	b.WriteString(perfdata)
	b.WriteByte('\n')
	for _, d := range r.Details {
		details = append(details, Line(d))
	}
	for _, d := range details {
		b.WriteString(d)
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write plugin output: %w", err)
	}
	return nil
}

// Line makes s safe as one line of plugin output: '|' (which starts
// perfdata, on any line) becomes '/', and every control character and
// line or paragraph separator, which monitoring cores split lines on
// (Icinga splits on CR as well as LF), is written as a Go escape such as
// \n or \r. Label values of Kubernetes objects can hold any of them.
func Line(s string) string {
	clean := true
	for _, c := range s {
		if c == '|' || needsEscape(c) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '|':
			b.WriteByte('/')
		case needsEscape(c):
			quoted := strconv.QuoteRune(c)
			b.WriteString(quoted[1 : len(quoted)-1])
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func needsEscape(c rune) bool {
	return unicode.IsControl(c) || c == '\u2028' || c == '\u2029' || c == utf8.RuneError
}

// cut shortens s to at most n bytes without splitting a character.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// UnknownResult is the result of a check that could not reach a verdict:
// bad arguments, an unreachable source, data it cannot read. The reason is
// its one line.
func UnknownResult(reason error) *Result {
	return &Result{State: Unknown, Summary: reason.Error()}
}
