// Command scale-harness loads a synthetic cluster of the given size into a
// throw-away control plane, runs the exporter against it and prints the
// figures as a row of the results table in docs/benchmarks.md:
//
//	go run ./test/scale/scale-harness -nodes=5000 -pods=150000 -services=15000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

func main() {
	size := synth.ForPods(1500)
	flag.IntVar(&size.Nodes, "nodes", size.Nodes, "nodes to create")
	flag.IntVar(&size.Pods, "pods", size.Pods, "pods to create, dealt round-robin over the nodes")
	flag.IntVar(&size.Services, "services", size.Services, "services (a workload and a Service each) the pods belong to")
	cfg := scale.DefaultConfig(size)
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent requests while loading")
	flag.IntVar(&cfg.Scrapes, "scrapes", cfg.Scrapes, "scrapes for the latency percentiles")
	flag.IntVar(&cfg.Reactions, "reactions", cfg.Reactions, "cordons and unready pods to time (each undone and timed again)")
	flag.Float64Var(&cfg.ChurnRate, "churn.rate", cfg.ChurnRate, "pod status updates per second during the churn")
	flag.DurationVar(&cfg.ChurnDuration, "churn.duration", cfg.ChurnDuration, "how long the churn lasts")
	flag.IntVar(&cfg.Burst, "burst", cfg.Burst, "pod status updates sent at once after the churn")
	loadedRate := flag.Float64("churn.loaded-rate", 0, "pod status updates per second during the churn with scrapes; 0 for pods/1500, at least 20")
	flag.DurationVar(&cfg.LoadedChurnDuration, "churn.loaded-duration", cfg.LoadedChurnDuration, "how long the churn with scrapes lasts; 0 for none")
	flag.IntVar(&cfg.CheckRuns, "check.runs", cfg.CheckRuns, "timed runs of each check_kube_spread command")
	flag.IntVar(&cfg.WhatIfRuns, "whatif.runs", cfg.WhatIfRuns, "timed what-if questions")
	flag.IntVar(&cfg.WhatIfBatch, "whatif.batch", cfg.WhatIfBatch, "nodes in each what-if question")
	flag.IntVar(&cfg.AdmissionRuns, "admission.runs", cfg.AdmissionRuns, "timed cordons judged by the admission webhook on a quiet cluster")
	flag.IntVar(&cfg.AdmissionChangedRuns, "admission.changed-runs", cfg.AdmissionChangedRuns, "timed cordons judged by the admission webhook, each after a change")
	revs := flag.String("exporter.rev", strings.Join(cfg.ExporterRevs, ","), "git revisions to build the exporter from, comma-separated, each measured on the same cluster (empty: the working tree as it is)")
	exporters := flag.String("exporter.flags", "", "the exporter's flags, space-separated, after any NAME=value environment variables; several runs on the same cluster separated by ';' (\"; GOGC=50 --no-collector.node-replicas\" measures the defaults, then without node_replicas and with GOGC=50)")
	flag.Parse()
	cfg.Size = size
	// DefaultConfig saw the default size, not the one asked for.
	cfg.LoadedChurnRate = scale.LoadedChurnRate(size)
	if *loadedRate > 0 {
		cfg.LoadedChurnRate = *loadedRate
	}
	cfg.ExporterRevs = strings.Split(*revs, ",")
	for _, variant := range strings.Split(*exporters, ";") {
		cfg.Exporters = append(cfg.Exporters, strings.Fields(variant))
	}
	if size.Nodes < 1 || size.Services < 1 || size.Pods < size.Services {
		fmt.Fprintln(os.Stderr, "scale-harness: need at least one node, one service and one pod per service")
		os.Exit(2)
	}
	began := time.Now()
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := scale.Run(ctx, cfg)
	// The rows measured before a failure are still worth printing.
	if len(results) > 0 {
		fmt.Println(scale.TableHeader)
		for _, r := range results {
			fmt.Println(r.Row())
		}
		// The cost of a check, the table of docs/check.md.
		fmt.Println()
		fmt.Println(scale.CheckTableHeader)
		for _, r := range results {
			for _, row := range r.CheckRows() {
				fmt.Println(row)
			}
		}
		// The cost of a what-if, a table of docs/benchmarks.md.
		fmt.Println()
		fmt.Println(scale.WhatIfTableHeader)
		for _, r := range results {
			fmt.Println(r.WhatIfRow())
		}
		// The exporter's CPU under churn and scrapes, a table of docs/benchmarks.md.
		fmt.Println()
		fmt.Println(scale.ChurnTableHeader)
		for _, r := range results {
			fmt.Println(r.ChurnRow())
		}
		// The reactions with plain and gzip scrapes, a table of docs/benchmarks.md.
		fmt.Println()
		fmt.Println(scale.ReactionTableHeader)
		for _, r := range results {
			fmt.Println(r.ReactionRow())
		}
		// What the sync cost the exporter and the API server, a table of docs/benchmarks.md.
		fmt.Println()
		fmt.Println(scale.SyncTableHeader)
		for _, r := range results {
			fmt.Println(r.SyncRow())
		}
		// The latency of the admission webhook, a table of docs/benchmarks.md.
		fmt.Println()
		fmt.Println(scale.AdmissionTableHeader)
		for _, r := range results {
			fmt.Println(r.AdmissionRow())
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale-harness: %v\n", err)
		os.Exit(1)
	}
}
