// Package scale is the scale harness of the exporter: it loads a synthetic
// cluster of a given size into a real API server, runs the exporter binary
// against it as a separate process, and measures what an operator pays for
// it: start-up time and memory, scrape latency and size, how fast a cordon
// or an unready pod reaches /metrics, and the CPU that pod churn costs.
//
// Only etcd and kube-apiserver run (controlplane.Options.APIServerOnly): at
// 5,000 nodes kwok's heartbeats and the node lifecycle controller would be
// the load being measured, and the ReplicaSet controller would create pods
// of its own. Pods are created bound and given their status by the harness,
// and EndpointSlices are created directly.
package scale

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/test/scale/synth"
)

// Config is one run of the harness.
type Config struct {
	Size synth.Size
	// Workers is the number of concurrent requests while loading.
	Workers int
	// Scrapes is how many scrapes the latency percentiles are taken over.
	Scrapes int
	// Reactions is how many cordons and how many unready pods are timed;
	// each is undone again, which is timed too.
	Reactions int
	// ChurnRate and ChurnDuration shape the steady pod status churn;
	// Burst is the number of pod status updates sent at once afterwards.
	ChurnRate     float64
	ChurnDuration time.Duration
	Burst         int
	// LoadedChurnRate and LoadedChurnDuration shape the churn measured
	// with scrapes every 15 s (churn.go); no such churn without a duration.
	LoadedChurnRate     float64
	LoadedChurnDuration time.Duration
	// CheckRuns is how many times each check_kube_spread run is timed.
	CheckRuns int
	// WhatIfRuns is how many what-if questions for a batch of
	// WhatIfBatch nodes are timed.
	WhatIfRuns, WhatIfBatch int
	// AdmissionRuns is how many cordons the admission webhook judges on a
	// quiet cluster, AdmissionChangedRuns after a change (admission.go).
	AdmissionRuns, AdmissionChangedRuns int
	// ExporterRevs are the git revisions the exporter is built from, each
	// out of a clean export of it (git archive), so that a row measures a
	// commit and not whatever the working tree holds at the time. An empty
	// revision builds the working tree. Several revisions are measured one
	// after the other on the same loaded cluster: a fair comparison of two
	// commits, and one load instead of two.
	ExporterRevs []string
	// Exporters are the exporter's command lines to measure for each
	// revision, one after the other on the same loaded cluster: each is a
	// list of flags, optionally after environment variables (GOGC=50
	// --flag). None measures the exporter with its defaults.
	Exporters [][]string
	// ProfileDir is where the heap profile of each exporter run with
	// --web.enable-pprof is written (profile.go); empty is .cache/profiles
	// of the repository.
	ProfileDir string
	// Logf receives progress messages.
	Logf func(format string, args ...any)
}

// DefaultConfig is the run of `make bench-scale` for a size.
func DefaultConfig(size synth.Size) Config {
	return Config{
		Size: size, Workers: 48, Scrapes: 50, Reactions: 10, ChurnRate: 20, ChurnDuration: 30 * time.Second, Burst: 1000, CheckRuns: 10,
		LoadedChurnRate: LoadedChurnRate(size), LoadedChurnDuration: 61 * time.Second,
		WhatIfRuns: 20, WhatIfBatch: 10, AdmissionRuns: 100, AdmissionChangedRuns: 20,
		ExporterRevs: []string{"HEAD"},
	}
}

// Result holds the figures of one run. Durations are wall-clock; memory in
// bytes.
type Result struct {
	Size synth.Size
	// Commit is the abbreviated commit the exporter was built from, with
	// "+dirty" when it was built from a working tree with uncommitted
	// changes to Go sources or go.mod.
	Commit string
	// Flags are the exporter's flags for this run.
	Flags []string
	// Load is how long loading the cluster into the API server took.
	Load time.Duration
	// Sync is from starting the exporter process to /readyz answering 200.
	// SyncCPU is the exporter's CPU time over it, APIServerSyncCPU the API
	// server's: on a machine both share, the sync is over when the two
	// have done their work.
	Sync, SyncCPU, APIServerSyncCPU time.Duration
	// RSSAfterSync and HeapAfterSync are taken as soon as the caches
	// synced; PeakRSS is VmHWM at that moment: the start-up peak.
	RSSAfterSync, HeapAfterSync, PeakRSS uint64
	// RSSSteady and HeapSteady are taken after the scrapes and the churn.
	RSSSteady, HeapSteady uint64
	// ScrapeP50 and ScrapeP99 are over Config.Scrapes uncompressed scrapes
	// of a quiet cluster, GzipP50 and GzipP99 over as many asking for gzip,
	// as Prometheus does. ChangedScrapeP50 and ChangedScrapeP99 are over as
	// many gzip scrapes that each find the cluster changed.
	ScrapeP50, ScrapeP99, GzipP50, GzipP99 time.Duration
	ChangedScrapeP50, ChangedScrapeP99     time.Duration
	// ResponseBytes and ResponseGzipBytes are the size of one scrape's body.
	ResponseBytes, ResponseGzipBytes int
	// Series counts the samples of one scrape.
	Series int
	// Cordon and Unready are reaction latencies: from the API server
	// accepting the change to the end of the first scrape that shows it,
	// uncompressed; CordonGzip and UnreadyGzip the same with gzip scrapes,
	// as Prometheus asks for them.
	CordonP50, CordonP99, UnreadyP50, UnreadyP99                 time.Duration
	CordonGzipP50, CordonGzipP99, UnreadyGzipP50, UnreadyGzipP99 time.Duration
	// ChurnCPU is the exporter's CPU time while pod status churns at
	// Config.ChurnRate for Config.ChurnDuration; BurstCPU while Config.Burst
	// updates arrive at once (and for 5 s after).
	ChurnCPU, BurstCPU time.Duration
	// LoadedChurnRate is the pod update rate asked of the loaded churn,
	// LoadedChurnSent the rate the API server took; LoadedChurnCores is the
	// exporter's CPU over LoadedChurnDuration in cores, scrapes included,
	// and LoadedChurnScrapeP50 and LoadedChurnScrapeMax those scrapes'
	// latencies (churn.go).
	LoadedChurnRate, LoadedChurnSent, LoadedChurnCores float64
	LoadedChurnDuration                                time.Duration
	LoadedChurnScrapeP50, LoadedChurnScrapeMax         time.Duration
	// Checks are the costs of check_kube_spread runs against the exporter
	// (checks.go).
	Checks []CheckCost
	// WhatIfP50 and WhatIfMax are over WhatIfQuestions what-if questions
	// for a batch of WhatIfBatch nodes; WhatIfCPU is the exporter's CPU
	// time per question (whatif.go).
	WhatIfP50, WhatIfMax, WhatIfCPU time.Duration
	WhatIfBatch, WhatIfQuestions    int
	// AdmissionP50 and AdmissionP99 are the admission webhook's answers to
	// AdmissionRequests cordons of a quiet cluster, AdmissionChangedP50 and
	// AdmissionChangedP99 to AdmissionChangedRequests cordons each after a
	// change; AdmissionCPU is the exporter's CPU per quiet cordon, and
	// AdmissionNotJudged counts the cordons it could not judge in time
	// (admission.go). All zero for an exporter without the webhook.
	AdmissionP50, AdmissionP99, AdmissionChangedP50, AdmissionChangedP99, AdmissionCPU time.Duration
	AdmissionRequests, AdmissionChangedRequests, AdmissionNotJudged                    int

	checkBinary string
}

// BytesPerPod is the steady resident memory divided by the pods.
func (r *Result) BytesPerPod() float64 { return float64(r.RSSSteady) / float64(r.Size.Pods) }

// TableHeader is the header of the results table in docs/benchmarks.md.
const TableHeader = "| commit | exporter flags | nodes | pods | services | load | sync | RSS after sync | RSS steady | peak RSS (start-up) | heap in use (after sync / steady) | RSS per pod | scrape p50 / p99 | gzip scrape p50 / p99 | gzip scrape after a change p50 / p99 | response plain / gzip | series | cordon p50 / p99 | unready p50 / p99 | CPU: churn / burst |\n" +
	"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

// Row is the result as a row of that table.
func (r *Result) Row() string {
	mib := func(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	flags := r.flagsCell()
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s / %s | %.0f B | %s / %s ms | %s / %s ms | %s / %s ms | %.2f / %.2f MB | %d | %s / %s ms | %s / %s ms | %s / %s |",
		r.Commit, flags, r.Size.Nodes, r.Size.Pods, r.Size.Services, secs(r.Load), secs(r.Sync),
		mib(r.RSSAfterSync), mib(r.RSSSteady), mib(r.PeakRSS), mib(r.HeapAfterSync), mib(r.HeapSteady),
		r.BytesPerPod(), ms(r.ScrapeP50), ms(r.ScrapeP99), ms(r.GzipP50), ms(r.GzipP99), ms(r.ChangedScrapeP50), ms(r.ChangedScrapeP99),
		float64(r.ResponseBytes)/1e6, float64(r.ResponseGzipBytes)/1e6, r.Series,
		ms(r.CordonP50), ms(r.CordonP99), ms(r.UnreadyP50), ms(r.UnreadyP99),
		secs(r.ChurnCPU), secs(r.BurstCPU))
}

// flagsCell is the exporter flags column of the tables: "(defaults)", or
// the flags as code.
func (r *Result) flagsCell() string {
	if len(r.Flags) == 0 {
		return "(defaults)"
	}
	return "`" + strings.Join(r.Flags, " ") + "`"
}

// ReactionTableHeader is the header of the table of docs/benchmarks.md
// that holds the reaction latencies with uncompressed and with gzip
// scrapes.
const ReactionTableHeader = "| commit | exporter flags | pods | cordon p50 / p99, plain | cordon p50 / p99, gzip | unready p50 / p99, plain | unready p50 / p99, gzip |\n" +
	"| --- | --- | ---: | ---: | ---: | ---: | ---: |"

// ReactionRow is the result as a row of that table.
func (r *Result) ReactionRow() string {
	flags := r.flagsCell()
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return fmt.Sprintf("| %s | %s | %d | %d / %d ms | %d / %d ms | %d / %d ms | %d / %d ms |",
		r.Commit, flags, r.Size.Pods, ms(r.CordonP50), ms(r.CordonP99), ms(r.CordonGzipP50), ms(r.CordonGzipP99),
		ms(r.UnreadyP50), ms(r.UnreadyP99), ms(r.UnreadyGzipP50), ms(r.UnreadyGzipP99))
}

// SyncTableHeader is the header of the table of docs/benchmarks.md that
// holds what the sync cost.
const SyncTableHeader = "| commit | exporter flags | pods | sync | exporter CPU in the sync | API server CPU in the sync | both, in cores of the sync |\n" +
	"| --- | --- | ---: | ---: | ---: | ---: | ---: |"

// SyncRow is the result as a row of that table.
func (r *Result) SyncRow() string {
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	return fmt.Sprintf("| %s | %s | %d | %s | %s | %s | %.2f |",
		r.Commit, r.flagsCell(), r.Size.Pods, secs(r.Sync), secs(r.SyncCPU), secs(r.APIServerSyncCPU),
		(r.SyncCPU+r.APIServerSyncCPU).Seconds()/r.Sync.Seconds())
}

// controlPlaneOptions starts etcd and kube-apiserver alone, sized and
// tuned for loading a full-size cluster. The cluster is thrown away after
// the run: etcd already runs with --unsafe-no-fsync there
// (internal/harness/controlplane does so for every test cluster), which is right
// for a benchmark cluster and for nothing else.
//
// Loading is bound by the API server's CPU (about 2 ms per write, a third
// of it managed fields; two writes per pod). tokenFile lets the loader
// authenticate with a bearer token, a map lookup, instead of a client
// certificate, whose chain the API server verifies on every request (an
// ECDSA verification, 15% of its CPU while loading). The exporter still
// uses the admin kubeconfig and its certificate.
func controlPlaneOptions(dir, tokenFile string, logf func(string, ...any)) controlplane.Options {
	return controlplane.Options{
		Dir:           dir,
		Logf:          logf,
		APIServerOnly: true,
		ExtraArgs: map[string][]string{
			controlplane.Etcd: {
				// 150,000 pods written twice (create, then status) and
				// their 15,000 EndpointSlices come close to the default
				// 2 GiB backend quota before compaction and without
				// defragmentation; past it etcd refuses every write.
				"--quota-backend-bytes=" + strconv.Itoa(8<<30),
			},
			controlplane.KubeAPIServer: {
				"--token-auth-file=" + tokenFile,
				// The harness is the only client besides the exporter:
				// no fairness to keep, and no in-flight limit to queue
				// the loader's workers behind. Saves a few percent.
				"--enable-priority-and-fairness=false",
				"--max-requests-inflight=0",
				"--max-mutating-requests-inflight=0",
			},
		},
	}
}

// loaderToken returns a random bearer token for the loader.
func loaderToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("loader token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// buildExporter builds the exporter and the check into work, from rev or,
// if rev is empty, from the working tree, and sets *commit to what they
// were built from.
func buildExporter(ctx context.Context, root, work, rev string, commit *string) (exporter, check string, err error) {
	src, err := source(ctx, root, work, rev, commit)
	if err != nil {
		return "", "", err
	}
	if exporter, err = exporterproc.Build(ctx, src, work); err != nil {
		return "", "", err
	}
	if check, err = exporterproc.BuildCommand(ctx, src, work, "check_kube_spread"); err != nil {
		return "", "", err
	}
	return exporter, check, nil
}

// source returns the directory of the sources to build: root for the
// working tree, else a clean export of rev.
func source(ctx context.Context, root, work, rev string, commit *string) (string, error) {
	if rev == "" {
		head, err := git(ctx, root, "rev-parse", "--short", "HEAD")
		if err != nil {
			return "", err
		}
		status, err := git(ctx, root, "status", "--porcelain", "--", "*.go", "go.mod", "go.sum")
		if err != nil {
			return "", err
		}
		*commit = head
		for line := range strings.Lines(status) {
			if !strings.HasSuffix(strings.TrimSpace(line), "_test.go") {
				*commit = head + "+dirty"
				break
			}
		}
		return root, nil
	}
	resolved, err := git(ctx, root, "rev-parse", "--short", "--verify", rev+"^{commit}")
	if err != nil {
		return "", err
	}
	*commit = resolved
	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return "", fmt.Errorf("export %s: %w", rev, err)
	}
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", resolved)
	archive.Dir = root
	extract := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	extract.Stdin = pipe
	var stderr bytes.Buffer
	archive.Stderr, extract.Stderr = &stderr, &stderr
	if err := extract.Start(); err != nil {
		return "", fmt.Errorf("export %s: %w", rev, err)
	}
	if err := archive.Run(); err != nil {
		_ = extract.Wait()
		return "", fmt.Errorf("export %s: git archive: %w\n%s", rev, err, stderr.Bytes())
	}
	if err := extract.Wait(); err != nil {
		return "", fmt.Errorf("export %s: tar: %w\n%s", rev, err, stderr.Bytes())
	}
	return src, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr))
	}
	return strings.TrimSpace(string(out)), nil
}

// Run loads a cluster of cfg.Size into a fresh control plane, then runs
// and measures the exporter against it once per cfg.Exporters.
func Run(ctx context.Context, cfg Config) ([]*Result, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	if cfg.ProfileDir == "" {
		cfg.ProfileDir = filepath.Join(root, ".cache", "profiles")
	}
	work, err := os.MkdirTemp("", "kse-scale-")
	if err != nil {
		return nil, fmt.Errorf("create working directory: %w", err)
	}
	defer os.RemoveAll(work)
	revs := cfg.ExporterRevs
	if len(revs) == 0 {
		revs = []string{""}
	}
	type build struct{ commit, binary, check string }
	var builds []build
	for i, rev := range revs {
		var b build
		dir := filepath.Join(work, fmt.Sprintf("exporter-%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create working directory: %w", err)
		}
		if b.binary, b.check, err = buildExporter(ctx, root, dir, rev, &b.commit); err != nil {
			return nil, err
		}
		logf("exporter built from %s", b.commit)
		builds = append(builds, b)
	}

	token, err := loaderToken()
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(work, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+`,kse-scale-loader,kse-scale-loader,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token file: %w", err)
	}
	cp, err := controlplane.Start(ctx, controlPlaneOptions(filepath.Join(work, "controlplane"), tokenFile, logf))
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			logf("stopping the control plane: %v", err)
		}
	}()
	client, err := loaderClient(cp.Config, token)
	if err != nil {
		return nil, err
	}
	hook, err := newWebhook(cp, work)
	if err != nil {
		return nil, fmt.Errorf("admission webhook: %w", err)
	}

	cluster := synth.Generate(cfg.Size)
	began := time.Now()
	if err := load(ctx, client, cluster, cfg.Workers, logf); err != nil {
		return nil, err
	}
	loaded := time.Since(began)
	logf("loaded %s in %s", cfg.Size, loaded.Round(time.Second))

	if err := warmUp(ctx, builds[0].binary, cp, logf); err != nil {
		return nil, err
	}

	exporters := cfg.Exporters
	if len(exporters) == 0 {
		exporters = [][]string{nil}
	}
	var results []*Result
	for _, b := range builds {
		for _, flags := range exporters {
			r := &Result{Size: cfg.Size, Commit: b.commit, Flags: flags, Load: loaded}
			logf("exporter %s, flags: %q", b.commit, flags)
			r.checkBinary = b.check
			if err := r.measure(ctx, cfg, b.binary, cp, client, cluster, hook, logf); err != nil {
				return results, err
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// warmUp syncs one exporter with its defaults against the freshly loaded
// cluster and stops it, measuring nothing. The first exporter to sync after
// the load cost the API server about 2.5 times the CPU of the ones after it
// and synced, scraped and reacted slowest of its run (docs/benchmarks.md,
// runs G and H): without this the first command line measured would pay
// for the load, not for itself.
func warmUp(ctx context.Context, binary string, cp *controlplane.ControlPlane, logf func(string, ...any)) error {
	began := time.Now()
	exporter, err := startReady(ctx, binary, cp, nil)
	if err != nil {
		return fmt.Errorf("warm-up exporter: %w", err)
	}
	defer exporter.Stop()
	if _, _, err := newScraper(exporter.URL).scrape(ctx); err != nil {
		return fmt.Errorf("warm-up exporter: %w", err)
	}
	logf("warm-up exporter synced and scraped in %s (not measured)", time.Since(began).Round(time.Millisecond))
	return nil
}

// splitEnv splits a command line into its leading NAME=value words, the
// environment (GOGC=50), and the rest, the flags.
func splitEnv(words []string) (env, flags []string) {
	for i, word := range words {
		if strings.HasPrefix(word, "-") || !strings.Contains(word, "=") {
			return env, words[i:]
		}
		env = append(env, word)
	}
	return env, nil
}

// measure starts the exporter with r.Flags and takes every figure but the
// load.
func (r *Result) measure(ctx context.Context, cfg Config, binary string, cp *controlplane.ControlPlane, client kubernetes.Interface, cluster *synth.Cluster, hook *webhook, logf func(string, ...any)) error {
	env, flags := splitEnv(r.Flags)
	// The webhook listens besides, where the binary has it; it costs
	// nothing until asked.
	hookFlags, err := hook.flags(ctx, binary)
	if err != nil {
		return err
	}
	if hookFlags == nil {
		hook = nil
	}
	flags = append(flags, hookFlags...)
	apiServer := cp.PID(controlplane.KubeAPIServer)
	if apiServer == 0 {
		return errors.New("the API server does not run")
	}
	apiServerBefore, err := cpuTime(apiServer)
	if err != nil {
		return err
	}
	began := time.Now()
	exporter, err := startReady(ctx, binary, cp, env, flags...)
	if err != nil {
		return err
	}
	defer exporter.Stop()
	pid := exporter.PID()
	r.Sync = time.Since(began)
	if r.SyncCPU, err = cpuTime(pid); err != nil {
		return err
	}
	apiServerAfter, err := cpuTime(apiServer)
	if err != nil {
		return err
	}
	r.APIServerSyncCPU = apiServerAfter - apiServerBefore
	if r.RSSAfterSync, r.PeakRSS, err = memory(pid); err != nil {
		return err
	}
	scraper := newScraper(exporter.URL)
	body, _, err := scraper.scrape(ctx)
	if err != nil {
		return err
	}
	if r.HeapAfterSync, err = heapInUse(body); err != nil {
		return err
	}
	logf("synced in %s: RSS %d MiB, peak %d MiB", r.Sync.Round(time.Millisecond), r.RSSAfterSync>>20, r.PeakRSS>>20)
	parts, err := readMemoryParts(body, r.RSSAfterSync)
	if err != nil {
		return err
	}
	logf("after sync, %s", parts)

	if err := r.measureScrapes(ctx, scraper, cfg.Scrapes, logf); err != nil {
		return err
	}
	if err := r.measureChecks(ctx, exporter, cluster, cfg.CheckRuns, logf); err != nil {
		return err
	}
	if err := r.measureWhatIfs(ctx, exporter, cluster, cfg.WhatIfRuns, cfg.WhatIfBatch, logf); err != nil {
		return err
	}
	if err := r.measureAdmission(ctx, hook, exporter, client, cluster, cfg.AdmissionRuns, cfg.AdmissionChangedRuns, cfg.Workers, logf); err != nil {
		return err
	}
	if err := r.measureChangedScrapes(ctx, client, cluster, scraper, cfg, logf); err != nil {
		return err
	}
	if err := r.measureReactions(ctx, client, scraper, cluster, cfg.Reactions, logf); err != nil {
		return err
	}
	if err := r.measureChurn(ctx, client, cluster, pid, cfg, logf); err != nil {
		return err
	}
	if err := r.measureLoadedChurn(ctx, client, cluster, scraper, pid, cfg, logf); err != nil {
		return err
	}
	// Steady state: after scrapes and churn, and one more scrape, as a
	// Prometheus-scraped exporter spends its life.
	if body, _, err = scraper.scrape(ctx); err != nil {
		return err
	}
	if r.HeapSteady, err = heapInUse(body); err != nil {
		return err
	}
	if r.RSSSteady, _, err = memory(pid); err != nil {
		return err
	}
	if parts, err = readMemoryParts(body, r.RSSSteady); err != nil {
		return err
	}
	logf("steady, %s", parts)
	if slices.Contains(flags, pprofFlag) {
		return heapProfile(ctx, exporter, cfg.ProfileDir, profileName(r.Commit, time.Now()), logf)
	}
	return nil
}

func (r *Result) measureScrapes(ctx context.Context, s *scraper, n int, logf func(string, ...any)) error {
	var latencies []time.Duration
	var body []byte
	for range n {
		b, took, err := s.scrape(ctx)
		if err != nil {
			return err
		}
		body = b
		latencies = append(latencies, took)
	}
	r.ScrapeP50, r.ScrapeP99 = percentile(latencies, 50), percentile(latencies, 99)
	latencies = latencies[:0]
	for range n {
		_, took, err := s.get(ctx, "gzip")
		if err != nil {
			return err
		}
		latencies = append(latencies, took)
	}
	r.GzipP50, r.GzipP99 = percentile(latencies, 50), percentile(latencies, 99)
	r.ResponseBytes = len(body)
	for line := range bytes.Lines(body) {
		if len(line) > 0 && line[0] != '#' {
			r.Series++
		}
	}
	gz, err := s.gzipSize(ctx)
	if err != nil {
		return err
	}
	r.ResponseGzipBytes = gz
	logf("scrapes: p50 %s p99 %s, gzip p50 %s p99 %s, %d bytes (%d gzip), %d series", r.ScrapeP50, r.ScrapeP99, r.GzipP50, r.GzipP99, r.ResponseBytes, gz, r.Series)
	return nil
}

// measureReactions cordons nodes and makes pods unready, one at a time,
// and times from the API server's answer to the end of the first scrape
// that shows the change, scraping back to back. The figure is therefore
// what Prometheus would see at best: it includes up to one scrape's
// duration on top of the watch delay. It measures uncompressed scrapes,
// the figures of every run before, then the same changes with gzip
// scrapes, as Prometheus asks (the time includes decompressing the body).
func (r *Result) measureReactions(ctx context.Context, client kubernetes.Interface, s *scraper, c *synth.Cluster, n int, logf func(string, ...any)) error {
	for _, encoding := range []string{"", "gzip"} {
		cordonReactions, unreadyReactions, err := reactions(ctx, client, s, c, n, encoding)
		if err != nil {
			return err
		}
		cordon, unready := durations(cordonReactions), durations(unreadyReactions)
		if encoding == "" {
			r.CordonP50, r.CordonP99 = percentile(cordon, 50), percentile(cordon, 99)
			r.UnreadyP50, r.UnreadyP99 = percentile(unready, 50), percentile(unready, 99)
		} else {
			r.CordonGzipP50, r.CordonGzipP99 = percentile(cordon, 50), percentile(cordon, 99)
			r.UnreadyGzipP50, r.UnreadyGzipP99 = percentile(unready, 50), percentile(unready, 99)
		}
		logf("reaction (%s): cordon p50 %s p99 %s, unready p50 %s p99 %s (%d each)", cmp.Or(encoding, "plain"),
			percentile(cordon, 50), percentile(cordon, 99), percentile(unready, 50), percentile(unready, 99), len(cordon))
		logf("reaction (%s), in order, ms (* the exporter collected garbage in it): cordon/uncordon %s; unready/ready %s",
			cmp.Or(encoding, "plain"), reactionList(cordonReactions), reactionList(unreadyReactions))
	}
	return nil
}

// reaction is one change's time to show in a full scrape, and the garbage
// collections the exporter finished from the scrape after the change
// before it to the scrape after this one: the p99 of 20 reactions is the
// slowest, and the log tells whether a collection was in it.
type reaction struct {
	took time.Duration
	// gcs is -1 when the scrapes have no go_gc_duration_seconds_count
	// (--web.disable-exporter-metrics).
	gcs int
}

// durations are the reactions' times, for the percentiles of the tables.
func durations(reactions []reaction) []time.Duration {
	out := make([]time.Duration, len(reactions))
	for i, r := range reactions {
		out[i] = r.took
	}
	return out
}

// reactionList writes reactions as "89 95 310* 102": milliseconds, a star
// for one with a garbage collection, a question mark when unknown.
func reactionList(reactions []reaction) string {
	var b strings.Builder
	for i, r := range reactions {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", r.took.Milliseconds())
		switch {
		case r.gcs < 0:
			b.WriteByte('?')
		case r.gcs > 0:
			b.WriteString(strings.Repeat("*", r.gcs))
		}
	}
	return b.String()
}

// gcCounter reads the exporter's count of finished garbage collections
// from a scrape after each reaction.
type gcCounter struct {
	s        *scraper
	encoding string
	last     int
}

// newGCCounter reads the count before the first reaction.
func newGCCounter(ctx context.Context, s *scraper, encoding string) (*gcCounter, error) {
	g := &gcCounter{s: s, encoding: encoding}
	var err error
	g.last, err = g.read(ctx)
	return g, err
}

// since returns the collections since the last call, -1 if unknown.
func (g *gcCounter) since(ctx context.Context) (int, error) {
	now, err := g.read(ctx)
	if err != nil {
		return 0, err
	}
	last := g.last
	g.last = now
	if now < 0 || last < 0 {
		return -1, nil
	}
	return now - last, nil
}

func (g *gcCounter) read(ctx context.Context) (int, error) {
	body, _, err := g.s.get(ctx, g.encoding)
	if err != nil {
		return 0, err
	}
	if g.encoding == "gzip" {
		if body, err = gunzip(body); err != nil {
			return 0, err
		}
	}
	v, found, err := sampleValue(body, "go_gc_duration_seconds_count")
	if err != nil || !found {
		return -1, err
	}
	return int(v), nil
}

// reactions times n cordons and uncordons and n pods made unready and
// ready again, scraping with the encoding asked ("" or "gzip").
func reactions(ctx context.Context, client kubernetes.Interface, s *scraper, c *synth.Cluster, n int, encoding string) (cordon, unready []reaction, err error) {
	gc, err := newGCCounter(ctx, s, encoding)
	if err != nil {
		return nil, nil, err
	}
	timed := func(took time.Duration) (reaction, error) {
		gcs, err := gc.since(ctx)
		return reaction{took: took, gcs: gcs}, err
	}
	for i := range n {
		node := c.Nodes[(i*7919)%len(c.Nodes)].Name
		for _, unschedulable := range []bool{true, false} {
			patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, unschedulable)
			want := fmt.Sprintf("kube_spread_node_schedulable{node=%q} %d\n", node, map[bool]int{true: 0, false: 1}[unschedulable])
			took, err := react(ctx, s, encoding, want, func() error {
				_, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
				return err
			})
			if err != nil {
				return nil, nil, fmt.Errorf("cordon %s: %w", node, err)
			}
			r, err := timed(took)
			if err != nil {
				return nil, nil, err
			}
			cordon = append(cordon, r)
		}
	}
	var deployments []*synth.Service
	for _, svc := range c.Services {
		if svc.Deployment != nil && len(svc.Pods) > 0 {
			deployments = append(deployments, svc)
		}
	}
	for i := range n {
		svc := deployments[(i*7919)%len(deployments)]
		pod := svc.Pods[0]
		for _, ready := range []bool{false, true} {
			readyReplicas := len(svc.Pods)
			if !ready {
				readyReplicas--
			}
			want := fmt.Sprintf("kube_spread_replicas_ready{kind=\"Deployment\",name=%q,namespace=%q} %d\n", svc.Deployment.Name, svc.Namespace, readyReplicas)
			took, err := react(ctx, s, encoding, want, func() error { return setPodReady(ctx, client, pod, ready) })
			if err != nil {
				return nil, nil, fmt.Errorf("pod %s/%s ready=%t: %w", pod.Namespace, pod.Name, ready, err)
			}
			r, err := timed(took)
			if err != nil {
				return nil, nil, err
			}
			unready = append(unready, r)
		}
	}
	return cordon, unready, nil
}

// react applies a change and scrapes with the encoding asked until the
// line want appears. Bounded: a minute, then it fails.
func react(ctx context.Context, s *scraper, encoding, want string, change func() error) (time.Duration, error) {
	if err := change(); err != nil {
		return 0, err
	}
	accepted := time.Now()
	deadline := accepted.Add(time.Minute)
	for time.Now().Before(deadline) {
		body, _, err := s.get(ctx, encoding)
		if err != nil {
			return 0, err
		}
		if encoding == "gzip" {
			if body, err = gunzip(body); err != nil {
				return 0, err
			}
		}
		if bytes.Contains(body, []byte(want)) {
			return time.Since(accepted), nil
		}
	}
	return 0, fmt.Errorf("%q not in /metrics a minute after the change", strings.TrimSpace(want))
}

// gunzip decompresses a gzip scrape's body.
func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("gzip scrape: %w", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gzip scrape: %w", err)
	}
	return plain, nil
}

func setPodReady(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, ready bool) error {
	current, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	current.Status = synth.PodStatus(pod.Status.PodIP, ready)
	_, err = client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, current, metav1.UpdateOptions{})
	return err
}

// churner flips the readiness of the cluster's pods, one pod after the
// other: each goes unready on its first flip and ready on its second.
type churner struct {
	client kubernetes.Interface
	pods   []*corev1.Pod
	flips  int
	// unready holds the pods the flips left unready, for restore.
	unready map[*corev1.Pod]bool
}

func newChurner(client kubernetes.Interface, c *synth.Cluster) *churner {
	ch := &churner{client: client, unready: map[*corev1.Pod]bool{}}
	for _, svc := range c.Services {
		ch.pods = append(ch.pods, svc.Pods...)
	}
	return ch
}

// next returns the next flip and counts it.
func (ch *churner) next() (*corev1.Pod, bool) {
	pod := ch.pods[(ch.flips*7919)%len(ch.pods)]
	ready := (ch.flips/len(ch.pods))%2 == 1
	ch.flips++
	ch.unready[pod] = !ready
	return pod, ready
}

// steady flips pods at rate per second until stop is closed or a flip
// fails. Ticks a slow API server cannot keep up with are dropped.
func (ch *churner) steady(ctx context.Context, rate float64, stop <-chan struct{}) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			pod, ready := ch.next()
			if err := setPodReady(ctx, ch.client, pod, ready); err != nil {
				return fmt.Errorf("churn: %w", err)
			}
		}
	}
}

// restore makes the pods the flips left unready ready again, so that the
// next measurement finds the cluster as the first did.
func (ch *churner) restore(ctx context.Context, workers int) error {
	var restore []*corev1.Pod
	for pod, isUnready := range ch.unready {
		if isUnready {
			restore = append(restore, pod)
		}
	}
	clear(ch.unready)
	err := parallel(ctx, len(restore), workers, func(ctx context.Context, i int) error {
		return setPodReady(ctx, ch.client, restore[i], true)
	})
	if err != nil {
		return fmt.Errorf("make the churned pods ready again: %w", err)
	}
	return nil
}

// measureChangedScrapes times scrapes that find the cluster changed, as
// every scrape of a busy cluster does: before each, one pod flips its
// readiness and the harness waits changeSettle for the watch to deliver
// it (not timed), so the exporter analyses the caches again instead of
// reusing the last analysis. The scrapes ask for gzip, as Prometheus does.
func (r *Result) measureChangedScrapes(ctx context.Context, client kubernetes.Interface, c *synth.Cluster, s *scraper, cfg Config, logf func(string, ...any)) error {
	ch := newChurner(client, c)
	var latencies []time.Duration
	for range cfg.Scrapes {
		pod, ready := ch.next()
		if err := setPodReady(ctx, client, pod, ready); err != nil {
			return fmt.Errorf("change before a scrape: %w", err)
		}
		time.Sleep(changeSettle)
		_, took, err := s.get(ctx, "gzip")
		if err != nil {
			return err
		}
		latencies = append(latencies, took)
	}
	r.ChangedScrapeP50, r.ChangedScrapeP99 = percentile(latencies, 50), percentile(latencies, 99)
	logf("scrapes after a change: p50 %s p99 %s (%d scrapes)", r.ChangedScrapeP50, r.ChangedScrapeP99, len(latencies))
	return ch.restore(ctx, cfg.Workers)
}

// changeSettle is how long measureChangedScrapes lets the watch deliver a
// change: the reactions show it takes milliseconds.
const changeSettle = 200 * time.Millisecond

// measureChurn flips the readiness of pods at cfg.ChurnRate for
// cfg.ChurnDuration, then sends cfg.Burst flips at once, and reads the
// exporter's CPU time (utime+stime) around each. Nothing scrapes meanwhile:
// the figures are the cost of following the watch.
func (r *Result) measureChurn(ctx context.Context, client kubernetes.Interface, c *synth.Cluster, pid int, cfg Config, logf func(string, ...any)) error {
	ch := newChurner(client, c)
	before, err := cpuTime(pid)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	timer := time.AfterFunc(cfg.ChurnDuration, func() { close(stop) })
	defer timer.Stop()
	if err := ch.steady(ctx, cfg.ChurnRate, stop); err != nil {
		return err
	}
	after, err := cpuTime(pid)
	if err != nil {
		return err
	}
	r.ChurnCPU = after - before
	logf("churn: %d updates in %s cost the exporter %s of CPU", ch.flips, cfg.ChurnDuration, r.ChurnCPU)

	// The burst: flips prepared up front, sent by all workers at once.
	type update struct {
		pod   *corev1.Pod
		ready bool
	}
	burst := make([]update, cfg.Burst)
	for i := range burst {
		burst[i].pod, burst[i].ready = ch.next()
	}
	before = after
	err = parallel(ctx, len(burst), cfg.Workers, func(ctx context.Context, i int) error {
		return setPodReady(ctx, client, burst[i].pod, burst[i].ready)
	})
	if err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	// The exporter processes the events after the API server answered.
	time.Sleep(5 * time.Second)
	if after, err = cpuTime(pid); err != nil {
		return err
	}
	r.BurstCPU = after - before
	logf("burst: %d updates cost the exporter %s of CPU", cfg.Burst, r.BurstCPU)
	return ch.restore(ctx, cfg.Workers)
}

// scraper fetches /metrics as Prometheus would without compression, so
// the latency is the exporter's work and the size the text itself.
type scraper struct {
	url    string
	client *http.Client
}

func newScraper(base string) *scraper {
	return &scraper{
		url:    base + "/metrics",
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true}},
	}
}

func (s *scraper) get(ctx context.Context, encoding string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	began := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(began)
	if err != nil {
		return nil, 0, fmt.Errorf("scrape: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("scrape: status %s", resp.Status)
	}
	if encoding == "gzip" && resp.Header.Get("Content-Encoding") != "gzip" {
		return nil, 0, fmt.Errorf("scrape: asked for gzip, got %q", resp.Header.Get("Content-Encoding"))
	}
	return body, took, nil
}

func (s *scraper) scrape(ctx context.Context) ([]byte, time.Duration, error) {
	return s.get(ctx, "")
}

func (s *scraper) gzipSize(ctx context.Context) (int, error) {
	body, _, err := s.get(ctx, "gzip")
	if err != nil {
		return 0, err
	}
	// Check that it is what it claims to be.
	if _, err := gunzip(body); err != nil {
		return 0, err
	}
	return len(body), nil
}

// heapInUse reads go_memstats_heap_inuse_bytes from a scrape.
func heapInUse(body []byte) (uint64, error) {
	v, found, err := sampleValue(body, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in /metrics")
	}
	return uint64(v), nil
}

// memoryParts is what the Go runtime of the exporter says its resident
// set is made of, from the go_memstats_* samples of a scrape: the
// resident set per pod is the figure of issue 20 most dominated by when
// the garbage collector last ran and by what the runtime has not yet
// given back, and these parts tell the two from what the exporter keeps.
type memoryParts struct {
	rss uint64
	// heapInUse holds live objects and garbage not yet collected;
	// nextGC is the heap size at which the next collection starts: with
	// GOGC=100 and no memory limit, twice the live heap the last
	// collection found.
	heapInUse, nextGC uint64
	// idleKept is heap freed by the collector that the runtime has not
	// yet returned to the kernel (idle minus released).
	idleKept uint64
	// stacks are the goroutines' stacks, runtime the runtime's own
	// structures (span, GC and other metadata).
	stacks, runtime uint64
}

// readMemoryParts reads the parts from a scrape's go_memstats samples.
func readMemoryParts(body []byte, rss uint64) (memoryParts, error) {
	names := []string{
		"go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_heap_idle_bytes",
		"go_memstats_heap_released_bytes", "go_memstats_stack_sys_bytes", "go_memstats_sys_bytes",
		"go_memstats_heap_sys_bytes",
	}
	values := make([]uint64, len(names))
	for i, name := range names {
		v, found, err := sampleValue(body, name)
		if err != nil {
			return memoryParts{}, err
		}
		if !found {
			return memoryParts{}, fmt.Errorf("no %s in /metrics", name)
		}
		values[i] = uint64(v)
	}
	inUse, nextGC, idle, released, stacks, sys, heapSys := values[0], values[1], values[2], values[3], values[4], values[5], values[6]
	if released > idle || heapSys+stacks > sys {
		return memoryParts{}, fmt.Errorf("inconsistent go_memstats: heap idle %d < released %d, or heap %d + stacks %d > sys %d", idle, released, heapSys, stacks, sys)
	}
	return memoryParts{
		rss: rss, heapInUse: inUse, nextGC: nextGC, idleKept: idle - released,
		stacks: stacks, runtime: sys - heapSys - stacks,
	}, nil
}

// String lists the parts in MiB; "rest" is the resident set the runtime
// does not account for (the binary's code and data it has touched),
// negative when some of the runtime's structures are not resident.
func (m memoryParts) String() string {
	accounted := m.heapInUse + m.idleKept + m.stacks + m.runtime
	return fmt.Sprintf("RSS %d MiB: heap in use %d (next collection at %d), freed and not yet returned %d, stacks %d, runtime %d, rest %d",
		m.rss>>20, m.heapInUse>>20, m.nextGC>>20, m.idleKept>>20, m.stacks>>20, m.runtime>>20, (int64(m.rss)-int64(accounted))>>20)
}

// sampleValue reads the value of a sample without labels from a scrape
// in the text format: a full parse of a 27 MB scrape to read one line
// would cost the harness more than the exporter's scrape.
func sampleValue(body []byte, name string) (float64, bool, error) {
	prefix := []byte(name + " ")
	for line := range bytes.Lines(body) {
		if rest, ok := bytes.CutPrefix(line, prefix); ok {
			v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			if err != nil {
				return 0, false, fmt.Errorf("parse %s: %w", name, err)
			}
			return v, true, nil
		}
	}
	return 0, false, nil
}

// waitReady polls /readyz tightly: the sync time is the figure.
// startReady starts the exporter against the control plane and waits
// until its /readyz answers 200: its caches have synced. It stops the
// exporter if that does not happen.
func startReady(ctx context.Context, binary string, cp *controlplane.ControlPlane, env []string, flags ...string) (*exporterproc.Exporter, error) {
	exporter, err := exporterproc.StartSecured(ctx, binary, cp.Kubeconfig, exporterproc.Access{Env: env}, flags...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, exporter, 15*time.Minute); err != nil {
		exporter.Stop()
		return nil, err
	}
	return exporter, nil
}

func waitReady(ctx context.Context, e *exporterproc.Exporter, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		status, _, err := e.Get(ctx, "/readyz")
		if err == nil && status == http.StatusOK {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("exporter not ready after %s; log:\n%s", timeout, e.Log())
}

// memory returns VmRSS and VmHWM of a process.
func memory(pid int) (rss, hwm uint64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of the exporter: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kib, _ := strconv.ParseUint(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kib << 10
		case "VmHWM:":
			hwm = kib << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime returns utime+stime of a process.
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (utime and stime are the 14th and
	// 15th fields of the whole line).
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, rest)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func percentile(durations []time.Duration, p float64) time.Duration {
	if len(durations) == 0 {
		return 0
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
