package nagios

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseRange(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		text string
		want Range
		// string is the canonical form String gives back.
		string string
	}{
		{"10", Range{0, 10, false}, "10"},
		{"10:", Range{10, inf, false}, "10:"},
		{"~:10", Range{math.Inf(-1), 10, false}, "~:10"},
		{"10:20", Range{10, 20, false}, "10:20"},
		{"@10:20", Range{10, 20, true}, "@10:20"},
		{"0", Range{0, 0, false}, "0"},
		{"0:10", Range{0, 10, false}, "10"},
		{"~:", Range{math.Inf(-1), inf, false}, "~:"},
		{"@0", Range{0, 0, true}, "@0"},
		{"-5:-1", Range{-5, -1, false}, "-5:-1"},
		{"1.5:2.25", Range{1.5, 2.25, false}, "1.5:2.25"},
		{".5", Range{0, 0.5, false}, "0.5"},
		{"+3", Range{0, 3, false}, "3"},
		{"@~:0", Range{math.Inf(-1), 0, true}, "@~:0"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseRange(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseRange(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
			if s := got.String(); s != tc.string {
				t.Errorf("String() = %q, want %q", s, tc.string)
			}
		})
	}
}

func TestParseRangeErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"", `range "": empty`},
		{"@", `range "@": empty`},
		{"abc", `range "abc": "abc" is not a number`},
		{"20:10", `range "20:10": start 20 is above end 10`},
		{":10", `range ":10": no start before ':' (write 0:10, or ~:10 for no lower bound)`},
		{"~", `range "~": "~" is not a number`},
		{"10:~", `range "10:~": "~" is not a number`},
		{"1e3", `range "1e3": "1e3" is not a number`},
		{"inf", `range "inf": "inf" is not a number`},
		{"NaN", `range "NaN": "NaN" is not a number`},
		{"1:2:3", `range "1:2:3": "2:3" is not a number`},
		{"@@1", `range "@@1": "@1" is not a number`},
		{" 10", `range " 10": " 10" is not a number`},
		{"10,5", `range "10,5": "10,5" is not a number`},
		{"-5", `range "-5": start 0 is above end -5`},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			_, err := ParseRange(tc.text)
			if err == nil || err.Error() != tc.want {
				t.Errorf("ParseRange(%q) error = %v, want %s", tc.text, err, tc.want)
			}
		})
	}
}

// TestRangeAlert is the table of the guidelines: which values raise an
// alert for each form, bounds included in the range.
func TestRangeAlert(t *testing.T) {
	tests := []struct {
		text  string
		alert map[float64]bool
	}{
		{"10", map[float64]bool{-1: true, 0: false, 10: false, 10.5: true}},
		{"10:", map[float64]bool{9.99: true, 10: false, 1e9: false}},
		{"~:10", map[float64]bool{-1e9: false, 10: false, 11: true}},
		{"10:20", map[float64]bool{9: true, 10: false, 20: false, 21: true}},
		{"@10:20", map[float64]bool{9: false, 10: true, 15: true, 20: true, 21: false}},
		{"0", map[float64]bool{0: false, 1: true}},
		{"~:", map[float64]bool{-1e300: false, 1e300: false}},
	}
	for _, tc := range tests {
		r := MustParseRange(tc.text)
		for v, want := range tc.alert {
			if got := r.Alert(v); got != want {
				t.Errorf("range %q: Alert(%v) = %t, want %t", tc.text, v, got, want)
			}
		}
	}
}

func TestThreshold(t *testing.T) {
	th, err := ParseThreshold("5", "10")
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[float64]State{0: OK, 5: OK, 6: Warning, 10: Warning, 11: Critical, -1: Critical} {
		if got := th.State(v); got != want {
			t.Errorf("State(%v) = %s, want %s", v, got, want)
		}
	}
	none, err := ParseThreshold("", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := none.State(1e9); got != OK {
		t.Errorf("no ranges: State = %s, want OK", got)
	}
	if _, err := ParseThreshold("1", "x"); err == nil || err.Error() != `critical threshold: range "x": "x" is not a number` {
		t.Errorf("bad critical: error = %v", err)
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		states []State
		want   State
	}{
		{nil, OK},
		{[]State{OK, OK}, OK},
		{[]State{OK, Unknown}, Unknown},
		{[]State{Unknown, Warning}, Warning},
		{[]State{Warning, Critical, Unknown}, Critical},
		{[]State{Critical, OK}, Critical},
	}
	for _, tc := range tests {
		if got := Worst(tc.states...); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.states, got, tc.want)
		}
	}
	for s, code := range map[State]int{OK: 0, Warning: 1, Critical: 2, Unknown: 3, State(7): 3, State(-1): 3} {
		if got := s.ExitCode(); got != code {
			t.Errorf("%s.ExitCode() = %d, want %d", s, got, code)
		}
	}
}

func TestPerfdataString(t *testing.T) {
	warn, crit := MustParseRange("10"), MustParseRange("@1:2")
	tests := []struct {
		p    Perfdata
		want string
	}{
		{Perfdata{Label: "services", Value: 12, Min: Float(0)}, "'services'=12;;;0"},
		{Perfdata{Label: "critical", Value: 1, Critical: &crit, Min: Float(0), Max: Float(12)}, "'critical'=1;;@1:2;0;12"},
		{Perfdata{Label: "age", Value: 0.25, UOM: "s", Warning: &warn}, "'age'=0.25s;10"},
		{Perfdata{Label: "no fields", Value: 3}, "'no fields'=3"},
		{Perfdata{Label: "big", Value: 1e21}, "'big'=1000000000000000000000"},
		{Perfdata{Label: "tiny", Value: 1e-7}, "'tiny'=0.0000001"},
		{Perfdata{Label: "nan", Value: math.NaN(), UOM: "s", Min: Float(math.NaN()), Max: Float(math.Inf(1))}, "'nan'=U"},
		{Perfdata{Label: "inf", Value: math.Inf(-1), Min: Float(0)}, "'inf'=U;;;0"},
		{Perfdata{Label: "it's a=b", Value: 1}, "'it''s a_b'=1"},
		{Perfdata{Label: "errors", Value: 2, UOM: "c", Min: Float(0)}, "'errors'=2c;;;0"},
		{Perfdata{Label: "negative", Value: -0.5}, "'negative'=-0.5"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestResultWrite(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want string
	}{
		{"summary, perfdata, details", Result{State: Critical, Summary: "1 critical", Perfdata: []Perfdata{{Label: "a", Value: 1}, {Label: "b", Value: 2, Min: Float(0)}}, Details: []string{"x", "y"}},
			"CRITICAL - 1 critical | 'a'=1 'b'=2;;;0\nx\ny\n"},
		{"no perfdata", Result{State: OK, Summary: "fine"}, "OK - fine\n"},
		{"a pipe or a newline cannot break the format", Result{State: Warning, Summary: "a | b\nc", Details: []string{"d|e", "f\ng"}},
			"WARNING - a / b\\nc\nd/e\nf\\ng\n"},
		{"CR, the other line breaks and control characters are escaped", Result{State: Critical, Summary: "a\rb\u2028c\u0085d", Details: []string{"e\r\nf\u2029g\x00h\ti\v"}},
			`CRITICAL - a\rb\u2028c\u0085d` + "\n" + `e\r\nf\u2029g\x00h\ti\v` + "\n"},
		{"invalid UTF-8 becomes the replacement character", Result{State: OK, Summary: "a\xffb"}, "OK - a\ufffdb\n"},
		{"unknown", *UnknownResult(errors.New("timeout after 10s during connect of http://x")), "UNKNOWN - timeout after 10s during connect of http://x\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.r.Write(&buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("got %q, want %q", buf.String(), tc.want)
			}
		})
	}
}

// TestResultWriteCapsTheFirstLine: a first line longer than NRPE v2's
// packet is cut in the summary, never in the perfdata, and the whole
// summary becomes the first detail line.
func TestResultWriteCapsTheFirstLine(t *testing.T) {
	perfdata := []Perfdata{{Label: "services", Value: 5, Min: Float(0)}, {Label: "critical", Value: 5, Min: Float(0)}}
	tests := []struct {
		name    string
		summary string
		wantCut bool
	}{
		{"short", "5 critical", false},
		{"exactly fits", strings.Repeat("x", MaxFirstLine-len("CRITICAL - ")-len(" | 'services'=5;;;0 'critical'=5;;;0")-1), false},
		{"one byte too long", strings.Repeat("x", MaxFirstLine-len("CRITICAL - ")-len(" | 'services'=5;;;0 'critical'=5;;;0")), true},
		{"multi-byte characters are not split", strings.Repeat("é", 2000), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := Result{State: Critical, Summary: tc.summary, Perfdata: perfdata, Details: []string{"detail"}}
			if err := r.Write(&buf); err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(buf.String(), "\n")
			first := lines[0]
			if len(first) > MaxFirstLine || !utf8.ValidString(first) {
				t.Errorf("first line of %d bytes (valid UTF-8: %v), want at most %d", len(first), utf8.ValidString(first), MaxFirstLine)
			}
			if !strings.HasSuffix(first, " | 'services'=5;;;0 'critical'=5;;;0\n") || !strings.HasPrefix(first, "CRITICAL - ") {
				t.Errorf("first line lost its state or perfdata: %q", first)
			}
			cut := strings.Contains(first, "... |")
			if cut != tc.wantCut {
				t.Errorf("summary cut: %v, want %v: %q", cut, tc.wantCut, first)
			}
			wantDetails := []string{"detail\n", ""}
			if tc.wantCut {
				wantDetails = []string{tc.summary + "\n", "detail\n", ""}
			}
			if !slices.Equal(lines[1:], wantDetails) {
				t.Errorf("details %q, want %q", lines[1:], wantDetails)
			}
		})
	}
}

// FuzzParseRange: a range either fails to parse or is well formed, and
// its canonical form parses back to the same range.
func FuzzParseRange(f *testing.F) {
	for _, seed := range []string{"10", "10:", "~:10", "10:20", "@10:20", "", "@", ":", "~:", "-1.5:.5", "1e3", "20:10"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRange(text)
		if err != nil {
			return
		}
		if math.IsNaN(r.Start) || math.IsNaN(r.End) || r.Start > r.End || math.IsInf(r.Start, 1) || math.IsInf(r.End, -1) {
			t.Fatalf("ParseRange(%q) = %+v: not a range", text, r)
		}
		again, err := ParseRange(r.String())
		if err != nil {
			t.Fatalf("ParseRange(%q).String() = %q does not parse: %v", text, r.String(), err)
		}
		if again != r {
			t.Fatalf("ParseRange(%q) = %+v, but its String %q parses to %+v", text, r, r.String(), again)
		}
		p := Perfdata{Label: "x", Value: 1, Warning: &r}
		if s := p.String(); s != "'x'=1;"+r.String() {
			t.Fatalf("perfdata with range %q: %q", text, s)
		}
	})
}
