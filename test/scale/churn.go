package scale

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// ChurnTableHeader is the header of the table of docs/benchmarks.md that
// holds the exporter's CPU while pods churn at a realistic rate and a
// Prometheus scrapes it.
const ChurnTableHeader = "| commit | exporter flags | pods | updates/s asked / sent | duration | scrapes (gzip, every 15 s) p50 / max | exporter CPU, cores |\n" +
	"| --- | --- | ---: | ---: | ---: | ---: | ---: |"

// ChurnRow is the result as a row of that table.
func (r *Result) ChurnRow() string {
	flags := r.flagsCell()
	return fmt.Sprintf("| %s | %s | %d | %.0f / %.1f | %.0f s | %d / %d ms | %.3f |",
		r.Commit, flags, r.Size.Pods, r.LoadedChurnRate, r.LoadedChurnSent, r.LoadedChurnDuration.Seconds(),
		r.LoadedChurnScrapeP50.Milliseconds(), r.LoadedChurnScrapeMax.Milliseconds(), r.LoadedChurnCores)
}

// LoadedChurnRate is the pod update rate of the loaded churn for a size:
// 100 updates a second at 150,000 pods (issue 20), proportionally fewer in
// smaller clusters, never under 20.
func LoadedChurnRate(size synth.Size) float64 {
	return max(20, float64(size.Pods)/1500)
}

// loadedChurnScrapeInterval is how often the loaded churn scrapes: a
// common Prometheus scrape interval.
const loadedChurnScrapeInterval = 15 * time.Second

// measureLoadedChurn flips the readiness of pods at cfg.LoadedChurnRate
// for cfg.LoadedChurnDuration while scraping with gzip every 15 s, as a
// Prometheus does, and reads the exporter's CPU time around it: the cost of
// a busy cluster, watch and scrapes together, in cores.
func (r *Result) measureLoadedChurn(ctx context.Context, client kubernetes.Interface, c *synth.Cluster, s *scraper, pid int, cfg Config, logf func(string, ...any)) error {
	if cfg.LoadedChurnDuration <= 0 {
		return nil
	}
	ch := newChurner(client, c)
	before, err := cpuTime(pid)
	if err != nil {
		return err
	}
	began := time.Now()
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() { churned <- ch.steady(ctx, cfg.LoadedChurnRate, stop) }()

	var scrapes []time.Duration
	tick := time.NewTicker(loadedChurnScrapeInterval)
	deadline := time.NewTimer(cfg.LoadedChurnDuration)
	var scrapeErr error
loop:
	for {
		select {
		case <-deadline.C:
			break loop
		case err := <-churned:
			// The churn stopped before its time: a failed update.
			churned <- err
			break loop
		case <-tick.C:
			_, took, err := s.get(ctx, "gzip")
			if err != nil {
				scrapeErr = err
				break loop
			}
			scrapes = append(scrapes, took)
		}
	}
	tick.Stop()
	deadline.Stop()
	close(stop)
	elapsed := time.Since(began)
	after, err := cpuTime(pid)
	if err != nil {
		return err
	}
	if err := <-churned; err != nil {
		return err
	}
	if scrapeErr != nil {
		return fmt.Errorf("scrape during the churn: %w", scrapeErr)
	}
	r.LoadedChurnRate, r.LoadedChurnDuration = cfg.LoadedChurnRate, elapsed
	r.LoadedChurnSent = float64(ch.flips) / elapsed.Seconds()
	r.LoadedChurnCores = (after - before).Seconds() / elapsed.Seconds()
	r.LoadedChurnScrapeP50, r.LoadedChurnScrapeMax = percentile(scrapes, 50), percentile(scrapes, 100)
	logf("loaded churn: %d updates in %s (%.1f/s of %.0f/s asked), %d gzip scrapes p50 %s max %s, exporter %.3f cores",
		ch.flips, elapsed.Round(time.Millisecond), r.LoadedChurnSent, cfg.LoadedChurnRate, len(scrapes),
		r.LoadedChurnScrapeP50, r.LoadedChurnScrapeMax, r.LoadedChurnCores)
	return ch.restore(ctx, cfg.Workers)
}
