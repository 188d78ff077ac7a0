package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The mixin and the chart read JSON copies of the rule file; CI must catch
// a rule file edited without regenerating them.
func TestJSONCopiesUpToDate(t *testing.T) {
	dir := root(t)
	want, err := GenerateJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{MixinRuleFile, ChartRuleFile} {
		got, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date with %s: run `go run ./rules/generate` and commit the result", path, RuleFile)
		}
	}
}

// The JSON copy carries the rules unchanged: read back, it equals the rule
// file, strings, durations and all.
func TestJSONIsTheRuleFile(t *testing.T) {
	source, err := os.ReadFile(filepath.Join(root(t), RuleFile))
	if err != nil {
		t.Fatal(err)
	}
	generated, err := JSON(source)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := yaml.Unmarshal(source, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(generated, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON differs from the rule file:\n%v\nwant\n%v", got, want)
	}
}

func TestJSONRejects(t *testing.T) {
	for _, tc := range []struct{ name, input string }{
		{"not YAML", "groups: [\n"},
		{"a list at the top", "- name: x\n"},
		{"no groups", "rules: []\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := JSON([]byte(tc.input)); err == nil {
				t.Errorf("JSON(%q) succeeded, want an error", tc.input)
			}
		})
	}
}
