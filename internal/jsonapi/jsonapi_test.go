package jsonapi

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShorten(t *testing.T) {
	tests := []struct{ value, want string }{
		{"short", "short"},
		{strings.Repeat("x", MaxEcho), strings.Repeat("x", MaxEcho)},
		{strings.Repeat("x", MaxEcho+5), strings.Repeat("x", MaxEcho) + "... (5 more bytes)"},
		// A cut inside a two-byte rune moves back to its start.
		{strings.Repeat("x", MaxEcho-1) + "éé", strings.Repeat("x", MaxEcho-1) + "... (4 more bytes)"},
	}
	for _, tc := range tests {
		got := Shorten(tc.value)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("Shorten(%d bytes) = %q, want %q", len(tc.value), got, tc.want)
		}
	}
}

func TestOnlyParams(t *testing.T) {
	query := url.Values{"node": {"a"}}
	if err := OnlyParams(query, "node", "selector"); err != nil {
		t.Errorf("known parameter: %v", err)
	}
	for i := range 12 {
		query.Set(string(rune('a'+i))+"x", "1")
	}
	want := "unknown parameters ax, bx, cx, dx, ex, fx, gx, hx, ix, jx, and 2 more; allowed: node, selector"
	if err := OnlyParams(query, "node", "selector"); err == nil || err.Error() != want {
		t.Errorf("12 unknown parameters: %v, want %s", err, want)
	}
	// An endpoint that takes none says so, not "allowed: " and nothing.
	want = "unknown parameters x; it takes none"
	if err := OnlyParams(url.Values{"x": {"1"}}); err == nil || err.Error() != want {
		t.Errorf("a parameter where none is allowed: %v, want %s", err, want)
	}
}

func TestSplitLists(t *testing.T) {
	got := SplitLists([]string{"a,b", " c ", ",", ""})
	if strings.Join(got, "|") != "a|b|c" {
		t.Errorf("SplitLists = %q", got)
	}
}
