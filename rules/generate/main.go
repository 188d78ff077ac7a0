// Command generate writes rules/prometheusrule.yaml, the prometheus-operator
// PrometheusRule, from rules/kube-spread.rules.yml. Run it from anywhere in
// the repository:
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
	out, err := rules.Generate(root)
	if err != nil {
		return err
	}
	path := filepath.Join(root, rules.PrometheusRuleFile)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", rules.PrometheusRuleFile, err)
	}
	fmt.Printf("wrote %s\n", rules.PrometheusRuleFile)
	return nil
}
