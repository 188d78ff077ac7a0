package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// WhatIfTableHeader is the header of the what-if cost table of
// docs/benchmarks.md.
const WhatIfTableHeader = "| commit | nodes | pods | services | batch | questions | answer p50 / max | exporter CPU per question |\n" +
	"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

// WhatIfRow is the what-if cost as a row of that table.
func (r *Result) WhatIfRow() string {
	return fmt.Sprintf("| %s | %d | %d | %d | %d nodes | %d | %d / %d ms | %.1f ms |",
		r.Commit, r.Size.Nodes, r.Size.Pods, r.Size.Services, r.WhatIfBatch, r.WhatIfQuestions,
		r.WhatIfP50.Milliseconds(), r.WhatIfMax.Milliseconds(), float64(r.WhatIfCPU.Microseconds())/1000)
}

// measureWhatIfs asks the what-if, as a preflight guard does, about runs
// different batches of batch consecutive nodes each (so every question
// displaces other pods), after one untimed question, and times each answer
// from request to the last byte. Each answer must be a 200 naming every
// asked node's services; a figure for an error page would mean nothing.
func (r *Result) measureWhatIfs(ctx context.Context, e *exporterproc.Exporter, cluster *synth.Cluster, runs, batch int, logf func(string, ...any)) error {
	if runs < 1 || batch < 1 {
		return nil
	}
	batch = min(batch, len(cluster.Nodes))
	client := &http.Client{Timeout: time.Minute}
	ask := func(first int) (time.Duration, error) {
		nodes := make([]string, batch)
		for i := range nodes {
			nodes[i] = synth.NodeName((first + i) % len(cluster.Nodes))
		}
		query := url.Values{"node": {strings.Join(nodes, ",")}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/v1/whatif?"+query.Encode(), nil)
		if err != nil {
			return 0, err
		}
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("what-if: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		took := time.Since(began)
		if err != nil {
			return 0, fmt.Errorf("what-if: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("what-if for %s: status %s: %s", nodes, resp.Status, body)
		}
		var answer struct {
			Services []json.RawMessage `json:"services"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return 0, fmt.Errorf("what-if for %s: %w", nodes, err)
		}
		// Every synthetic node holds pods, so every batch touches services.
		if len(answer.Services) == 0 {
			return 0, fmt.Errorf("what-if for %s: no service in the answer: %.200s", nodes, body)
		}
		return took, nil
	}
	if _, err := ask(0); err != nil {
		return err
	}
	cpuBefore, err := cpuTime(e.PID())
	if err != nil {
		return err
	}
	var latencies []time.Duration
	for i := range runs {
		took, err := ask((i + 1) * batch)
		if err != nil {
			return err
		}
		latencies = append(latencies, took)
	}
	cpuAfter, err := cpuTime(e.PID())
	if err != nil {
		return err
	}
	r.WhatIfBatch, r.WhatIfQuestions = batch, runs
	r.WhatIfP50, r.WhatIfMax = percentile(latencies, 50), slices.Max(latencies)
	r.WhatIfCPU = (cpuAfter - cpuBefore) / time.Duration(runs)
	logf("what-if for %d nodes: p50 %s, max %s, exporter CPU %s per question", batch, r.WhatIfP50.Round(time.Millisecond), r.WhatIfMax.Round(time.Millisecond), r.WhatIfCPU)
	return nil
}
