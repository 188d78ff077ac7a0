// Command check_kube_spread is a monitoring plugin (Icinga 2, Nagios, NRPE)
// that reads a kube-spread-exporter and reports, as the alert rules do,
// which Kubernetes services would not survive the nodes going away for
// maintenance. See docs/check.md.
//
// Exit codes are the plugin states: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
// (bad arguments, --help and --version included, as the monitoring plugins
// do). Everything goes to standard output, the only stream a monitoring
// core shows.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/check"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

const programName = "check_kube_spread"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

// options are the parsed flags of every command.
type options struct {
	source check.Source
	// useAPI reads the exporter's /api/v1 when it serves it.
	useAPI bool

	// services and service
	namespace, kind, name string
	warningServices       string
	criticalServices      string

	// health
	warningNotSynced, criticalNotSynced       string
	warningStale, criticalStale               string
	warningListWatchFor, criticalListWatchFor string
	warningCacheAge, criticalCacheAge         string
	warningListWatch, criticalListWatch       string

	// whatif
	nodes, selectors []string

	// campaign
	batches     []string
	nodesReturn bool
	// remedyBatches is nil unless given: the exporter's default.
	remedyBatches *int

	// terminated is set when --help or --version asked kingpin to end.
	terminated bool
}

// The commands.
const (
	commandServices = "services"
	commandService  = "service"
	commandHealth   = "health"
	commandWhatIf   = "whatif"
	commandCampaign = "campaign"
)

func newApp(stdout io.Writer) (*kingpin.Application, *options) {
	app := kingpin.New(programName, "Monitoring plugin: which Kubernetes services would not survive node maintenance, read from a kube-spread-exporter.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stdout)
	o := &options{}
	app.Terminate(func(int) { o.terminated = true })
	app.Version(version.Print(programName))
	app.HelpFlag.Short('h')

	app.Flag("url", "URL of the exporter's metrics.").Short('u').Default("http://localhost:10217/metrics").StringVar(&o.source.URL)
	app.Flag("tls.ca-file", "CA certificates (PEM) that verify the exporter; default: the system's.").StringVar(&o.source.CAFile)
	app.Flag("tls.cert-file", "Client certificate (PEM), with --tls.key-file.").StringVar(&o.source.CertFile)
	app.Flag("tls.key-file", "Client certificate key (PEM), with --tls.cert-file.").StringVar(&o.source.KeyFile)
	app.Flag("tls.insecure-skip-verify", "Accept any server certificate.").BoolVar(&o.source.InsecureSkipVerify)
	app.Flag("basic-auth.username", "HTTP basic auth user, with --basic-auth.password-file.").StringVar(&o.source.Username)
	app.Flag("basic-auth.password-file", "File holding the basic auth password (never on the command line: ps shows it to every user).").StringVar(&o.source.PasswordFile)
	app.Flag("timeout", "Time allowed to connect, read and parse; UNKNOWN after it, naming the stage.").Short('t').Default("10s").DurationVar(&o.source.Timeout)
	app.Flag("api", "Read the exporter's small JSON answers ("+api.PathServices+", "+api.PathHealth+") when it serves them, else /metrics; --no-api always reads /metrics.").Default("true").BoolVar(&o.useAPI)

	services := app.Command(commandServices, "Every service (the default): CRITICAL for a critical finding, WARNING for a warning one.").Default()
	services.Flag("namespace", "Regular expression (anchored) of the namespaces to check.").Default(".*").StringVar(&o.namespace)
	services.Flag("kind", "Regular expression (anchored) of the kinds to check (Service, Deployment, StatefulSet, ReplicaSet, ReplicationController).").Default(".*").StringVar(&o.kind)
	services.Flag("name", "Regular expression (anchored) of the names to check.").Default(".*").StringVar(&o.name)
	services.Flag("warning-services", "Range of the number of services with any finding; WARNING outside it. Empty: never.").Default(check.DefaultWarningServices).StringVar(&o.warningServices)
	services.Flag("critical-services", "Range of the number of services with a critical finding; CRITICAL outside it. Empty: never.").Default(check.DefaultCriticalServices).StringVar(&o.criticalServices)

	service := app.Command(commandService, "One service, so that each can be its own Icinga service object; UNKNOWN if the exporter does not publish it.")
	service.Flag("namespace", "Namespace of the service.").Required().StringVar(&o.namespace)
	service.Flag("kind", "Kind: Service, Deployment, StatefulSet, ReplicaSet or ReplicationController.").Required().EnumVar(&o.kind,
		string(spread.KindService), string(spread.KindDeployment), string(spread.KindStatefulSet), string(spread.KindReplicaSet), string(spread.KindReplicationController))
	service.Flag("name", "Name of the service.").Required().StringVar(&o.name)

	health := app.Command(commandHealth, "The exporter itself, as its alert rules judge it: caches not synced, figures not confirmed fresh, list/watch errors that keep coming. CRITICAL when the exporter does not answer.")
	health.Flag("warning-not-synced", "Range of seconds a cache has not synced; WARNING outside it (KubeSpreadCacheNotSynced: 10m). Empty: never.").Default(check.DefaultWarningNotSynced).StringVar(&o.warningNotSynced)
	health.Flag("critical-not-synced", "Range of seconds a cache has not synced; CRITICAL outside it. Empty: never.").StringVar(&o.criticalNotSynced)
	health.Flag("warning-stale", "Range of seconds since the caches were last confirmed fresh; WARNING outside it (KubeSpreadCacheStale: 120s for 3m). Empty: never.").Default(check.DefaultWarningStale).StringVar(&o.warningStale)
	health.Flag("critical-stale", "Range of seconds since the caches were last confirmed fresh; CRITICAL outside it. Empty: never.").StringVar(&o.criticalStale)
	health.Flag("warning-list-watch-errors-for", "Range of seconds list/watch errors have kept coming (less than 5m apart); WARNING outside it (KubeSpreadListWatchErrors: 15m). Empty: never.").Default(check.DefaultWarningListWatchErrorsFor).StringVar(&o.warningListWatchFor)
	health.Flag("critical-list-watch-errors-for", "Range of seconds list/watch errors have kept coming; CRITICAL outside it. Empty: never.").StringVar(&o.criticalListWatchFor)
	health.Flag("warning-cache-age", "Range of seconds since the last update of any cache; WARNING outside it. Empty: never.").StringVar(&o.warningCacheAge)
	health.Flag("critical-cache-age", "Range of seconds since the last update of any cache; CRITICAL outside it. Empty: never.").StringVar(&o.criticalCacheAge)
	health.Flag("warning-list-watch-errors", "Range of list/watch errors since the exporter started; WARNING outside it. Empty: never.").StringVar(&o.warningListWatch)
	health.Flag("critical-list-watch-errors", "Range of list/watch errors since the exporter started; CRITICAL outside it. Empty: never.").StringVar(&o.criticalListWatch)

	whatIf := app.Command(commandWhatIf, "Preflight for maintenance: what if these nodes went down now? CRITICAL if a service would have no replica left, WARNING if one would run on fewer nodes than it needs.")
	whatIf.Flag("node", "A node that would go down. Repeatable.").StringsVar(&o.nodes)
	whatIf.Flag("selector", "Label selector of nodes that would go down, e.g. maintenance=batch-3. Repeatable.").StringsVar(&o.selectors)

	campaign := app.Command(commandCampaign, "Preflight for a whole maintenance campaign, before its first batch: each batch judged on where the earlier batches leave the pods. CRITICAL if a batch would leave a service with no replica, WARNING if on fewer nodes than it needs; the first line names the first unsafe batch, why, and a remedy.")
	campaign.Flag("batch", "One batch, its nodes separated by commas, in order. Repeat for each batch.").StringsVar(&o.batches)
	campaign.Flag("nodes-return", "Nodes come back after their batch, empty and without images (a reimage); --no-nodes-return keeps them away until the campaign ends.").Default("true").BoolVar(&o.nodesReturn)
	var remedyBatches int
	campaign.Flag("remedy-batches", "Bound the exporter's remedy search to this many batches simulated, 0 to 200: 0 searches none, more searches deeper. Default: the exporter's (40, fewer in a large cluster).").PlaceHolder("N").Action(func(*kingpin.ParseContext) error {
		o.remedyBatches = &remedyBatches
		return nil
	}).IntVar(&remedyBatches)
	return app, o
}

// run is the whole program; main only adds os.Exit.
func run(args []string, stdout io.Writer) int {
	app, o := newApp(stdout)
	command, err := app.Parse(args)
	if o.terminated {
		return nagios.Unknown.ExitCode()
	}
	if err != nil {
		return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: %w, try --help", err)))
	}
	if o.source.Timeout <= 0 {
		return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: --timeout must be positive, got %s", o.source.Timeout)))
	}

	// Arguments are checked before the exporter is asked: a typo is
	// UNKNOWN whether or not the exporter is up. --timeout bounds the
	// whole exchange, the fallback to /metrics after an exporter without
	// the JSON API included: a caller's own timeout (check_nrpe's 10 s)
	// must not cut the check's answer off.
	ctx, cancel := context.WithTimeout(context.Background(), o.source.Timeout)
	defer cancel()
	switch command {
	case commandServices:
		opts, err := o.servicesOptions()
		if err != nil {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: %w", err)))
		}
		return report(stdout, o.judgeServices(ctx,
			check.ServicesQuery(o.namespace, o.kind, o.name),
			func(answer *api.Services) *nagios.Result { return check.ServicesFromAPI(answer, opts) },
			func(r *spread.Report) *nagios.Result { return check.Services(r, opts) }))
	case commandService:
		key := check.ServiceKey{Namespace: o.namespace, Kind: o.kind, Name: o.name}
		return report(stdout, o.judgeServices(ctx, check.ServiceQuery(key),
			func(answer *api.Services) *nagios.Result { return check.ServiceFromAPI(answer, key) },
			func(r *spread.Report) *nagios.Result { return check.Service(r, key) }))
	case commandHealth:
		opts, err := o.healthOptions()
		if err != nil {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: %w", err)))
		}
		return report(stdout, o.judgeHealth(ctx, opts))
	case commandWhatIf:
		if len(o.nodes) == 0 && len(o.selectors) == 0 {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: whatif needs --node or --selector")))
		}
		// The what-if API answers JSON, not metrics: a request of its own.
		answer, err := check.FetchWhatIf(ctx, o.source, o.nodes, o.selectors)
		if err != nil {
			return report(stdout, nagios.UnknownResult(err))
		}
		return report(stdout, check.WhatIf(answer))
	case commandCampaign:
		batches, err := o.campaignBatches()
		if err != nil {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: %w", err)))
		}
		answer, err := check.FetchCampaign(ctx, o.source, batches, o.nodesReturn, o.remedyBatches)
		if err != nil {
			return report(stdout, nagios.UnknownResult(err))
		}
		return report(stdout, check.Campaign(answer))
	}
	return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: unknown command %q", command)))
}

// judgeServices asks the exporter's /api/v1/services, or, when it does
// not serve it, reads /metrics and rebuilds the analysis: both give the
// same verdict, the first for a few hundred bytes.
func (o *options) judgeServices(ctx context.Context, query url.Values, fromAPI func(*api.Services) *nagios.Result, fromReport func(*spread.Report) *nagios.Result) *nagios.Result {
	if o.useAPI {
		answer, err := check.FetchServices(ctx, o.source, query)
		if err == nil {
			return fromAPI(answer)
		}
		if !errors.Is(err, check.ErrNoAPI) {
			return nagios.UnknownResult(err)
		}
	}
	scrape, err := check.Fetch(ctx, o.source)
	if err != nil {
		return nagios.UnknownResult(err)
	}
	return withReport(fromReport)(scrape)
}

// judgeHealth reads the exporter's health from /api/v1/health, else from
// /metrics. An exporter that does not answer is CRITICAL here: it is the
// thing this check watches, and the per-service checks depend on it.
func (o *options) judgeHealth(ctx context.Context, opts check.HealthOptions) *nagios.Result {
	down := func(err error) *nagios.Result {
		var unreachable *check.UnreachableError
		var httpErr *check.HTTPError
		if errors.As(err, &unreachable) || errors.As(err, &httpErr) && httpErr.Code >= 500 {
			return &nagios.Result{State: nagios.Critical, Summary: "exporter down: " + err.Error()}
		}
		// TLS, authentication, a wrong URL: the configuration, not the
		// exporter, is what needs a look.
		return nagios.UnknownResult(err)
	}
	if o.useAPI {
		answer, err := check.FetchHealth(ctx, o.source)
		if err == nil {
			return check.Health(check.HealthFactsFromAPI(answer), opts)
		}
		if !errors.Is(err, check.ErrNoAPI) {
			return down(err)
		}
	}
	scrape, err := check.Fetch(ctx, o.source)
	if err != nil {
		return down(err)
	}
	facts, err := check.HealthFactsFromMetrics(scrape.Families, scrape.Time)
	if err != nil {
		return nagios.UnknownResult(fmt.Errorf("metrics: %w", err))
	}
	facts.NoAPI = !o.useAPI
	return check.Health(facts, opts)
}

// withReport rebuilds the analysis from the scrape before evaluating it;
// an exposition it cannot rebuild, or an exporter not synced yet, is
// UNKNOWN.
func withReport(evaluate func(*spread.Report) *nagios.Result) func(*check.Scrape) *nagios.Result {
	return func(s *check.Scrape) *nagios.Result {
		r, err := check.Rebuild(s.Families)
		if err != nil {
			return nagios.UnknownResult(fmt.Errorf("metrics: %w", err))
		}
		return evaluate(r)
	}
}

func (o *options) servicesOptions() (check.ServicesOptions, error) {
	filter, err := check.NewFilter(o.namespace, o.kind, o.name)
	if err != nil {
		return check.ServicesOptions{}, err
	}
	t, err := nagios.ParseThreshold(o.warningServices, o.criticalServices)
	if err != nil {
		return check.ServicesOptions{}, fmt.Errorf("--warning-services/--critical-services: %w", err)
	}
	return check.ServicesOptions{Filter: filter, Warning: t.Warning, Critical: t.Critical}, nil
}

// campaignBatches splits the --batch flags into their nodes; an empty
// batch is a mistake (an unset variable in a cookbook), not "nothing".
func (o *options) campaignBatches() ([][]string, error) {
	if len(o.batches) == 0 {
		return nil, errors.New("campaign needs --batch (repeat it for each batch)")
	}
	batches := make([][]string, len(o.batches))
	for i, flag := range o.batches {
		for node := range strings.SplitSeq(flag, ",") {
			if node = strings.TrimSpace(node); node != "" {
				batches[i] = append(batches[i], node)
			}
		}
		if len(batches[i]) == 0 {
			return nil, fmt.Errorf("--batch %d is empty", i+1)
		}
	}
	return batches, nil
}

func (o *options) healthOptions() (check.HealthOptions, error) {
	notSynced, err := nagios.ParseThreshold(o.warningNotSynced, o.criticalNotSynced)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-not-synced/--critical-not-synced: %w", err)
	}
	stale, err := nagios.ParseThreshold(o.warningStale, o.criticalStale)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-stale/--critical-stale: %w", err)
	}
	listWatchFor, err := nagios.ParseThreshold(o.warningListWatchFor, o.criticalListWatchFor)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-list-watch-errors-for/--critical-list-watch-errors-for: %w", err)
	}
	cacheAge, err := nagios.ParseThreshold(o.warningCacheAge, o.criticalCacheAge)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-cache-age/--critical-cache-age: %w", err)
	}
	listWatch, err := nagios.ParseThreshold(o.warningListWatch, o.criticalListWatch)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-list-watch-errors/--critical-list-watch-errors: %w", err)
	}
	return check.HealthOptions{NotSynced: notSynced, Stale: stale, ListWatchErrorsFor: listWatchFor, CacheAge: cacheAge, ListWatchErrors: listWatch}, nil
}

// report prints the result and returns its exit code. A failed write
// (stdout closed) changes nothing the core could still see.
func report(stdout io.Writer, r *nagios.Result) int {
	_ = r.Write(stdout)
	return r.State.ExitCode()
}
