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

// Write prints the result in the plugin output format:
//
//	STATE - summary | 'label'=value;warn;crit;min;max ...
//	detail
//	detail
//
// A '|' inside the summary or a detail would start performance data, and a
// line break inside the summary would end the first line, so both are
// replaced.
func (r *Result) Write(w io.Writer) error {
	var b strings.Builder
	b.WriteString(r.State.String())
	b.WriteString(" - ")
	b.WriteString(oneLine(r.Summary))
	if len(r.Perfdata) > 0 {
		b.WriteString(" |")
		for _, p := range r.Perfdata {
			b.WriteByte(' ')
			b.WriteString(p.String())
		}
	}
	b.WriteByte('\n')
	for _, d := range r.Details {
		for _, line := range strings.Split(d, "\n") {
			b.WriteString(strings.ReplaceAll(line, "|", "/"))
			b.WriteByte('\n')
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write plugin output: %w", err)
	}
	return nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// UnknownResult is the result of a check that could not reach a verdict:
// bad arguments, an unreachable source, data it cannot read. The reason is
// its one line.
func UnknownResult(reason error) *Result {
	return &Result{State: Unknown, Summary: reason.Error()}
}
