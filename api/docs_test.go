package api

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocsNameEveryField: every JSON field of the answers appears in
// docs/api.md, so that a field added to the code is a field documented.
func TestDocsNameEveryField(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{Services{}, Totals{}, Service{}, Finding{}, Health{}, Cache{}, Error{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), typ.Field(i).Name)
				continue
			}
			if !strings.Contains(string(doc), name) {
				t.Errorf("docs/api.md does not mention %s (%s.%s)", name, typ.Name(), typ.Field(i).Name)
			}
		}
	}
	for _, path := range []string{PathServices, PathHealth} {
		if !strings.Contains(string(doc), "## `GET "+path+"`") {
			t.Errorf("docs/api.md has no heading for %s", path)
		}
	}
	for _, param := range []string{ParamNamespace, ParamKind, ParamName, ParamVerdict, ParamSeverity, string(SeverityNone)} {
		if !strings.Contains(string(doc), "`"+param+"`") {
			t.Errorf("docs/api.md does not document the parameter or value %s", param)
		}
	}
}
