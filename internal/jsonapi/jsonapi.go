// Package jsonapi holds what the exporter's two JSON APIs (the what-if
// preflight in whatif/ and the checks' API in collector/) do alike: query
// parameters checked by name, comma-separated lists, JSON answers and
// JSON errors that repeat only a bounded part of the request.
package jsonapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxNamed and MaxEcho bound what an error repeats of the request: an
// error line must stay short however large the request was.
const (
	MaxNamed = 10
	MaxEcho  = 200
)

// OnlyParams rejects unknown query parameters: a misspelt "nodes=" must not
// silently ask about nothing. The error names at most MaxNamed of them.
func OnlyParams(query url.Values, allowed ...string) error {
	var unknown []string
	for name := range query {
		if !slices.Contains(allowed, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	named := unknown
	if len(named) > MaxNamed {
		named = append(slices.Clip(named[:MaxNamed]), fmt.Sprintf("and %d more", len(unknown)-MaxNamed))
	}
	for i := range named {
		named[i] = Shorten(named[i])
	}
	if len(allowed) == 0 {
		return fmt.Errorf("unknown parameters %s; it takes none", strings.Join(named, ", "))
	}
	return fmt.Errorf("unknown parameters %s; allowed: %s", strings.Join(named, ", "), strings.Join(allowed, ", "))
}

// Shorten cuts a value an error repeats to MaxEcho bytes, on a rune
// boundary, saying how much was left out.
func Shorten(value string) string {
	if len(value) <= MaxEcho {
		return value
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(value[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d more bytes)", value[:cut], len(value)-cut)
}

// SplitLists flattens repeated and comma-separated values, trimming
// spaces and dropping empty items.
func SplitLists(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// WriteJSON answers 200 with v as JSON; indent is "" for a compact answer
// (a check reads it) or the indentation for one a person reads.
func WriteJSON(w http.ResponseWriter, v any, indent string) {
	w.Header().Set("Content-Type", "application/json")
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", indent)
	_ = encoder.Encode(v)
}

// WriteError answers status with {"error": "..."}.
func WriteError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{fmt.Sprintf(format, args...)})
}
