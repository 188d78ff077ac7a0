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
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

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

	// services and service
	namespace, kind, name string
	warningServices       string
	criticalServices      string

	// health
	warningCacheAge, criticalCacheAge   string
	warningListWatch, criticalListWatch string

	// whatif
	nodes, selectors []string

	// terminated is set when --help or --version asked kingpin to end.
	terminated bool
}

// The commands.
const (
	commandServices = "services"
	commandService  = "service"
	commandHealth   = "health"
	commandWhatIf   = "whatif"
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

	health := app.Command(commandHealth, "The exporter itself: reachable, caches synced (CRITICAL if not), list/watch errors, age of the last cache update.")
	health.Flag("warning-cache-age", "Range of seconds since the last update of any cache; WARNING outside it. Empty: never.").StringVar(&o.warningCacheAge)
	health.Flag("critical-cache-age", "Range of seconds since the last update of any cache; CRITICAL outside it. Empty: never.").StringVar(&o.criticalCacheAge)
	health.Flag("warning-list-watch-errors", "Range of list/watch errors since the exporter started; WARNING outside it. Empty: never.").StringVar(&o.warningListWatch)
	health.Flag("critical-list-watch-errors", "Range of list/watch errors since the exporter started; CRITICAL outside it. Empty: never.").StringVar(&o.criticalListWatch)

	whatIf := app.Command(commandWhatIf, "Preflight for maintenance: what if these nodes went down now? CRITICAL if a service would have no replica left, WARNING if one would run on fewer nodes than it needs.")
	whatIf.Flag("node", "A node that would go down. Repeatable.").StringsVar(&o.nodes)
	whatIf.Flag("selector", "Label selector of nodes that would go down, e.g. maintenance=batch-3. Repeatable.").StringsVar(&o.selectors)
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
	// UNKNOWN whether or not the exporter is up.
	var evaluate func(*check.Scrape) *nagios.Result
	switch command {
	case commandServices:
		opts, err := o.servicesOptions()
		if err != nil {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: %w", err)))
		}
		evaluate = withReport(func(r *spread.Report) *nagios.Result { return check.Services(r, opts) })
	case commandService:
		key := check.ServiceKey{Namespace: o.namespace, Kind: o.kind, Name: o.name}
		evaluate = withReport(func(r *spread.Report) *nagios.Result { return check.Service(r, key) })
	case commandHealth:
		opts, err := o.healthOptions()
		if err != nil {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: %w", err)))
		}
		evaluate = func(s *check.Scrape) *nagios.Result { return check.Health(s.Families, s.Time, opts) }
	case commandWhatIf:
		if len(o.nodes) == 0 && len(o.selectors) == 0 {
			return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: whatif needs --node or --selector")))
		}
		// The what-if API answers JSON, not metrics: a request of its own.
		answer, err := check.FetchWhatIf(context.Background(), o.source, o.nodes, o.selectors)
		if err != nil {
			return report(stdout, nagios.UnknownResult(err))
		}
		return report(stdout, check.WhatIf(answer))
	default:
		return report(stdout, nagios.UnknownResult(fmt.Errorf("bad arguments: unknown command %q", command)))
	}

	scrape, err := check.Fetch(context.Background(), o.source)
	if err != nil {
		return report(stdout, nagios.UnknownResult(err))
	}
	return report(stdout, evaluate(scrape))
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

func (o *options) healthOptions() (check.HealthOptions, error) {
	cacheAge, err := nagios.ParseThreshold(o.warningCacheAge, o.criticalCacheAge)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-cache-age/--critical-cache-age: %w", err)
	}
	listWatch, err := nagios.ParseThreshold(o.warningListWatch, o.criticalListWatch)
	if err != nil {
		return check.HealthOptions{}, fmt.Errorf("--warning-list-watch-errors/--critical-list-watch-errors: %w", err)
	}
	return check.HealthOptions{CacheAge: cacheAge, ListWatchErrors: listWatch}, nil
}

// report prints the result and returns its exit code. A failed write
// (stdout closed) changes nothing the core could still see.
func report(stdout io.Writer, r *nagios.Result) int {
	_ = r.Write(stdout)
	return r.State.ExitCode()
}
