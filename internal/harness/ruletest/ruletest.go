// Package ruletest runs the promtool unit tests of rules/tests against rules
// rendered with another job selector and cluster label, by the monitoring
// mixin or the Helm chart: it rewrites the tests' series and expected
// alerts to carry that job and label, so the shipped tests test those rules.
package ruletest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// Relabelling is what the rendered rules were given instead of the
// shipped job selector and cluster label.
type Relabelling struct {
	// Job is the job of the exporter's series in the rewritten tests; it
	// must match JobSelector and not the shipped selector.
	Job string
	// JobSelector is the rendered rules' selector, such as job=~"kse-.+".
	// A regular expression keeps the tests' expectations of absent(),
	// which takes labels from equality matchers only.
	JobSelector string
	// ClusterLabel replaces the label cluster.
	ClusterLabel string
}

// rewrite is one change to a test file.
type rewrite struct {
	what        string
	pattern     *regexp.Regexp
	replacement func(Relabelling) string
}

// rewrites turn a promtool test of the shipped rules into one of rules with
// a Relabelling. The shipped tests name the job kube-spread-exporter and
// the cluster label cluster.
var rewrites = []rewrite{
	{"the job of the input series", regexp.MustCompile(`\bjob="kube-spread-exporter"`),
		func(r Relabelling) string { return `job="` + r.Job + `"` }},
	{"the job of the expected alerts", regexp.MustCompile(`(?m)^(\s+)job: kube-spread-exporter$`),
		func(r Relabelling) string { return "${1}job: " + r.Job }},
	{"the job in descriptions", regexp.MustCompile(`\bjob kube-spread-exporter\b`),
		func(r Relabelling) string { return "job " + r.Job }},
	{"the selector in descriptions", regexp.MustCompile(regexp.QuoteMeta(`up{job=~".*kube-spread.*"}`)),
		func(r Relabelling) string { return "up{" + strings.ReplaceAll(r.JobSelector, "$", "$$") + "}" }},
	{"the cluster label of the input series", regexp.MustCompile(`([{,]\s*)cluster=`),
		func(r Relabelling) string { return "${1}" + r.ClusterLabel + "=" }},
	{"the cluster label of the expected alerts", regexp.MustCompile(`(?m)^(\s+)cluster: `),
		func(r Relabelling) string { return "${1}" + r.ClusterLabel + ": " }},
}

// shippedRuleFiles is how the shipped tests name the rule file.
const shippedRuleFiles = "rule_files:\n  - ../kube-spread.rules.yml\n"

// Files returns the shipped promtool tests, rules/tests/*.yml.
func Files() ([]string, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(root, "rules", "tests", "*.yml"))
	if err != nil {
		return nil, fmt.Errorf("list promtool tests: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("no promtool tests in rules/tests/*.yml")
	}
	return files, nil
}

// Rewrite writes into dir a copy of the test file that tests rulesFile,
// with the job and cluster label of r, and returns its path.
func Rewrite(testFile, dir, rulesFile string, r Relabelling) (string, error) {
	data, err := os.ReadFile(testFile)
	if err != nil {
		return "", fmt.Errorf("read promtool test: %w", err)
	}
	text := string(data)
	if !strings.Contains(text, shippedRuleFiles) {
		return "", fmt.Errorf("%s: no %q to replace", testFile, shippedRuleFiles)
	}
	text = strings.Replace(text, shippedRuleFiles, fmt.Sprintf("rule_files:\n  - %q\n", rulesFile), 1)
	for _, rw := range rewrites {
		text = rw.pattern.ReplaceAllString(text, rw.replacement(r))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write promtool test: %w", err)
	}
	path := filepath.Join(dir, filepath.Base(testFile))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("write promtool test: %w", err)
	}
	return path, nil
}

// Unused names the rewrites that change none of the files: the override
// each stands for would go untested.
func Unused(files []string) ([]string, error) {
	var unused []string
	for _, rw := range rewrites {
		applies := false
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("read promtool test: %w", err)
			}
			applies = applies || rw.pattern.Match(data)
		}
		if !applies {
			unused = append(unused, fmt.Sprintf("%s (%s)", rw.what, rw.pattern))
		}
	}
	return unused, nil
}

// Promtool returns the path of the promtool binary: in $KSE_TOOLS_BIN if
// set, else in .cache/bin of the repository. A missing binary is an error
// naming `make tools`.
func Promtool() (string, error) { return repo.Tool("promtool") }

// Check runs `promtool check rules` on rulesFile, then the shipped promtool
// tests rewritten for r against it. It returns promtool's output with the
// error of the first step that failed.
func Check(rulesFile, dir string, r Relabelling) error {
	promtool, err := Promtool()
	if err != nil {
		return err
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		return fmt.Errorf("promtool check rules %s: %w\n%s", rulesFile, err, out)
	}
	return Test(rulesFile, dir, r)
}

// Test runs the shipped promtool tests, rewritten for r, against rulesFile.
func Test(rulesFile, dir string, r Relabelling) error {
	promtool, err := Promtool()
	if err != nil {
		return err
	}
	files, err := Files()
	if err != nil {
		return err
	}
	args := []string{"test", "rules"}
	for _, file := range files {
		rewritten, err := Rewrite(file, dir, rulesFile, r)
		if err != nil {
			return err
		}
		args = append(args, rewritten)
	}
	if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("promtool test rules against %s: %w\n%s", rulesFile, err, out)
	}
	return nil
}
