package nagios

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Range is a threshold in the syntax of the monitoring plugins:
//
//	10       alert when the value is < 0 or > 10
//	10:      alert when < 10
//	~:10     alert when > 10
//	10:20    alert when < 10 or > 20
//	@10:20   alert when >= 10 and <= 20
//
// Start may be -Inf ("~") and End +Inf (nothing after the colon).
type Range struct {
	Start, End float64
	// Inside inverts the range ("@"): alert when the value is within it.
	Inside bool
}

// number is a plain decimal: no exponent, no "inf" or "nan", which
// strconv.ParseFloat would accept and no plugin user means.
var number = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// ParseRange parses a range in the standard syntax. It is stricter than
// the C library of the monitoring plugins, which reads "abc" as 0: a typo
// in a threshold must be an error, not a silent "alert above 0".
func ParseRange(s string) (Range, error) {
	r := Range{Start: 0, End: math.Inf(1)}
	body := s
	if strings.HasPrefix(body, "@") {
		r.Inside = true
		body = body[1:]
	}
	if body == "" {
		return Range{}, fmt.Errorf("range %q: empty", s)
	}
	start, end, hasColon := strings.Cut(body, ":")
	if !hasColon {
		// A lone number is the end; the start stays 0.
		end, start = start, ""
		v, err := parseNumber(s, end)
		if err != nil {
			return Range{}, err
		}
		r.End = v
	} else {
		switch start {
		case "~":
			r.Start = math.Inf(-1)
		case "":
			return Range{}, fmt.Errorf("range %q: no start before ':' (write 0:%s, or ~:%s for no lower bound)", s, end, end)
		default:
			v, err := parseNumber(s, start)
			if err != nil {
				return Range{}, err
			}
			r.Start = v
		}
		if end != "" {
			v, err := parseNumber(s, end)
			if err != nil {
				return Range{}, err
			}
			r.End = v
		}
	}
	if r.Start > r.End {
		return Range{}, fmt.Errorf("range %q: start %s is above end %s", s, formatBound(r.Start), formatBound(r.End))
	}
	return r, nil
}

func parseNumber(rangeText, s string) (float64, error) {
	if !number.MatchString(s) {
		return 0, fmt.Errorf("range %q: %q is not a number", rangeText, s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("range %q: %q is not a number in range", rangeText, s)
	}
	return v, nil
}

// MustParseRange is ParseRange for constants; it panics on a bad range.
func MustParseRange(s string) Range {
	r, err := ParseRange(s)
	if err != nil {
		panic(err)
	}
	return r
}

// Alert reports whether the value violates the threshold: outside the
// range, or inside it for an "@" range. Bounds belong to the range.
func (r Range) Alert(v float64) bool {
	within := v >= r.Start && v <= r.End
	if r.Inside {
		return within
	}
	return !within
}

// String renders the range in its shortest standard form; ParseRange reads
// it back to the same range.
func (r Range) String() string {
	var b strings.Builder
	if r.Inside {
		b.WriteByte('@')
	}
	switch {
	case r.Start == 0 && !math.IsInf(r.End, 1):
		b.WriteString(formatBound(r.End))
		return b.String()
	case math.IsInf(r.Start, -1):
		b.WriteString("~")
	default:
		b.WriteString(formatBound(r.Start))
	}
	b.WriteByte(':')
	if !math.IsInf(r.End, 1) {
		b.WriteString(formatBound(r.End))
	}
	return b.String()
}

func formatBound(v float64) string {
	switch {
	case math.IsInf(v, -1):
		return "~"
	case math.IsInf(v, 1):
		return "inf"
	}
	return formatNumber(v)
}

// Threshold is an optional warning and an optional critical range on one
// value.
type Threshold struct {
	Warning, Critical *Range
}

// ParseThreshold parses the two ranges of a threshold; an empty string
// leaves that range unset, so the value never raises that state.
func ParseThreshold(warning, critical string) (Threshold, error) {
	var t Threshold
	for _, p := range []struct {
		text string
		dst  **Range
		name string
	}{{warning, &t.Warning, "warning"}, {critical, &t.Critical, "critical"}} {
		if p.text == "" {
			continue
		}
		r, err := ParseRange(p.text)
		if err != nil {
			return Threshold{}, fmt.Errorf("%s threshold: %w", p.name, err)
		}
		*p.dst = &r
	}
	return t, nil
}

// State is CRITICAL when the value violates the critical range, else
// WARNING when it violates the warning range, else OK.
func (t Threshold) State(v float64) State {
	switch {
	case t.Critical != nil && t.Critical.Alert(v):
		return Critical
	case t.Warning != nil && t.Warning.Alert(v):
		return Warning
	}
	return OK
}
