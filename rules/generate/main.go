// Command generate writes the files derived from rules/kube-spread.rules.yml:
// rules/prometheusrule.yaml, the prometheus-operator PrometheusRule, and the
// JSON copies of the rule file that the monitoring mixin (mixin/) and the
// Helm chart (charts/kube-spread-exporter) read. Run it from anywhere in the
// repository:
//
//	go run ./rules/generate
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/rules"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "generate: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	prometheusRule, err := rules.Generate(root)
	if err != nil {
		return err
	}
	ruleJSON, err := rules.GenerateJSON(root)
	if err != nil {
		return err
	}
	for _, out := range []struct {
		path    string
		content []byte
	}{
		{rules.PrometheusRuleFile, prometheusRule},
		{rules.MixinRuleFile, ruleJSON},
		{rules.ChartRuleFile, ruleJSON},
	} {
		path := filepath.Join(root, out.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", out.path, err)
		}
		if err := os.WriteFile(path, out.content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", out.path, err)
		}
		fmt.Printf("wrote %s\n", out.path)
	}
	return nil
}
