// Command generate writes the Grafana dashboards of package dashboards as
// JSON files, and the monitoring mixin's copies of them (with a placeholder
// for the cluster label, which the mixin fills in): run it from the
// repository root after changing them,
//
//	go run ./dashboards/generate
//
// and commit the result. A test fails while the committed files differ.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kube-spread-exporter/kube-spread-exporter/dashboards"
)

func main() {
	defaults := dashboards.DefaultOptions()
	dir := flag.String("dir", "dashboards", "directory to write the dashboards to")
	clusterLabel := flag.String("cluster-label", defaults.ClusterLabel, "label telling clusters apart, listed by the cluster variable")
	mixinDir := flag.String("mixin-dir", dashboards.MixinDir, "directory to write the mixin's copies to; empty writes none")
	flag.Parse()
	if err := run(*dir, dashboards.Options{ClusterLabel: *clusterLabel}); err != nil {
		fmt.Fprintf(os.Stderr, "generate: %v\n", err)
		os.Exit(1)
	}
	if *mixinDir == "" {
		return
	}
	if err := run(*mixinDir, dashboards.MixinOptions()); err != nil {
		fmt.Fprintf(os.Stderr, "generate: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, opts dashboards.Options) error {
	files, err := dashboards.Render(opts)
	if err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, f.JSON, 0o644); err != nil {
			return fmt.Errorf("write dashboard: %w", err)
		}
		fmt.Println(path)
	}
	return nil
}
