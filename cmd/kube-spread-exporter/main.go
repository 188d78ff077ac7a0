// Command kube-spread-exporter publishes, for every service of a Kubernetes
// cluster, how its ready replicas are spread over nodes and topology
// domains, and how many of them survive the nodes that are going away for
// maintenance.
//
// Exit codes: 0 after a clean shutdown (SIGINT, SIGTERM); 1 when serving
// fails at run time (the listen address is taken, for instance); 2 for bad
// flags or configuration (an unknown flag, an invalid regular expression,
// label selector, kubeconfig or web configuration file).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/collector"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

const (
	programName = "kube-spread-exporter"
	// defaultAddress is outside the fully allocated 9100-9999 exporter
	// range and clear of the Kubernetes components' ports (10249-10259).
	defaultAddress = ":10217"
)

// probeInterval is how often the API server is probed to confirm the
// caches are fresh: cheap for the API server, and well inside the 5m an
// alert waits before calling the figures stale.
const probeInterval = 10 * time.Second

// Exit codes, documented in docs/operations.md.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	kubeconfig          string
	namespacesInclude   string
	namespacesExclude   string
	maintenanceTaints   []string
	maintenanceSelector string
	topologyKeys        []string
	defaultMinNodes     string
	nodeReplicas        bool
	telemetryPath       string
	disableExporterMets bool
	web                 *web.FlagConfig
	log                 *promslog.Config

	// terminated is set when --help or --version asked kingpin to end.
	terminated bool
}

func newApp(stdout, stderr io.Writer) (*kingpin.Application, *options) {
	app := kingpin.New(programName, "Publishes how each Kubernetes service is spread over nodes, and how much of it survives maintenance.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	o := &options{log: &promslog.Config{}}
	// run returns exit codes; kingpin must not exit the process.
	app.Terminate(func(int) { o.terminated = true })
	app.Version(version.Print(programName))
	app.HelpFlag.Short('h')

	app.Flag("kubeconfig", "Path to a kubeconfig. Without it: the in-cluster configuration, else $KUBECONFIG or ~/.kube/config.").StringVar(&o.kubeconfig)
	app.Flag("namespaces.include", "Regular expression (anchored) of the namespaces to watch.").Default(".*").StringVar(&o.namespacesInclude)
	app.Flag("namespaces.exclude", "Regular expression (anchored) of namespaces to leave out; empty leaves out none.").Default("").StringVar(&o.namespacesExclude)
	app.Flag("node.maintenance-taint", "Taint key (NoSchedule or NoExecute) that takes a node out of service, in addition to "+strings.Join(cluster.DefaultMaintenanceTaints, ", ")+". Repeatable.").StringsVar(&o.maintenanceTaints)
	app.Flag("node.maintenance-selector", "Label selector of nodes planned for maintenance, e.g. 'maintenance in (batch-3)'. Empty selects none.").Default("").StringVar(&o.maintenanceSelector)
	app.Flag("topology.key", "Node label that defines a failure domain. Repeatable.").Default("topology.kubernetes.io/zone").StringsVar(&o.topologyKeys)
	app.Flag("spread.default-min-nodes", "Nodes a service needs when it has no "+spread.MinNodesAnnotation+" annotation.").Default("2").StringVar(&o.defaultMinNodes)
	app.Flag("collector.node-replicas", "Publish kube_spread_node_replicas (one series per service and node).").Default("true").BoolVar(&o.nodeReplicas)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.telemetryPath)
	app.Flag("web.disable-exporter-metrics", "Exclude the exporter's own Go and process metrics.").BoolVar(&o.disableExporterMets)
	o.web = kingpinflag.AddFlags(app, defaultAddress)
	promslogflag.AddFlags(app, o.log)
	return app, o
}

// run is the whole program; main only adds signals and os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app, o := newApp(stdout, stderr)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v, try --help\n", programName, err)
		return exitUsage
	}
	if o.terminated {
		return exitOK
	}
	o.log.Writer = stderr
	logger := promslog.New(o.log)

	config, err := o.clusterConfig(logger)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", programName, err)
		return exitUsage
	}
	defaultMinNodes, err := strconv.Atoi(o.defaultMinNodes)
	if err != nil || defaultMinNodes < 1 {
		fmt.Fprintf(stderr, "%s: error: --spread.default-min-nodes must be a whole number of at least 1, got %q\n", programName, o.defaultMinNodes)
		return exitUsage
	}
	if *o.web.WebConfigFile != "" {
		if err := web.Validate(*o.web.WebConfigFile); err != nil {
			// YAML errors span lines; the user gets one.
			fmt.Fprintf(stderr, "%s: error: --web.config.file %s: %s\n", programName, *o.web.WebConfigFile, strings.Join(strings.Fields(err.Error()), " "))
			return exitUsage
		}
	}
	restConfig, err := loadRESTConfig(o.kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", programName, err)
		return exitUsage
	}
	restConfig.UserAgent = version.ComponentUserAgent(programName)
	config.RequestErrors = cluster.NewRequestErrors(logger)
	restConfig.Wrap(config.RequestErrors.WrapTransport)
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: kubernetes client: %v\n", programName, err)
		return exitUsage
	}

	logger.Info("starting "+programName, "version", version.Info(), "build_context", version.BuildContext(), "api_server", restConfig.Host)
	watcher, err := cluster.New(client, config)
	if err != nil {
		logger.Error("set up informers", "err", err)
		return exitFailed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watcher.Start(ctx)
	// /readyz of the API server checks etcd too, and every authenticated
	// user may read it (system:public-info-viewer): no extra RBAC.
	go watcher.RunProbe(ctx, probeInterval, func(ctx context.Context) error {
		return client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	})
	go func() {
		start := time.Now()
		if watcher.WaitForSync(ctx) {
			logger.Info("informer caches synced", "duration", time.Since(start))
		}
	}()

	// MaxHeaderBytes stays Go's default of 1 MiB: the server reads a request
	// line and headers before any handler can bound the work, and a burst
	// of 4 MiB queries took the exporter from 45 to 430 MiB resident.
	// Large what-ifs are POSTed (docs/whatif.md#limits).
	server := &http.Server{Handler: o.handler(watcher, defaultMinNodes, logger), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		_ = server.Shutdown(shutdownCtx)
	}()
	if err := web.ListenAndServe(server, o.web, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve HTTP", "err", err)
		return exitFailed
	}
	logger.Info("shut down")
	return exitOK
}

// clusterConfig checks the flags that configure the watcher.
func (o *options) clusterConfig(logger *slog.Logger) (cluster.Config, error) {
	config := cluster.Config{
		TopologyKeys:      o.topologyKeys,
		MaintenanceTaints: append(append([]string{}, cluster.DefaultMaintenanceTaints...), o.maintenanceTaints...),
		Logger:            logger,
	}
	var err error
	if config.NamespaceInclude, err = anchoredRegexp("--namespaces.include", o.namespacesInclude); err != nil {
		return config, err
	}
	if o.namespacesExclude != "" {
		if config.NamespaceExclude, err = anchoredRegexp("--namespaces.exclude", o.namespacesExclude); err != nil {
			return config, err
		}
	}
	if o.maintenanceSelector != "" {
		if config.MaintenanceSelector, err = labels.Parse(o.maintenanceSelector); err != nil {
			return config, fmt.Errorf("--node.maintenance-selector %q: %w", o.maintenanceSelector, err)
		}
	}
	return config, nil
}

// anchoredRegexp compiles a flag's regular expression so it must match the
// whole value, as Prometheus relabelling does.
func anchoredRegexp(flag, expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, expr, err)
	}
	return re, nil
}

// loadRESTConfig follows --kubeconfig, else the in-cluster configuration,
// else $KUBECONFIG or ~/.kube/config.
func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
		return config, nil
	}
	if config, err := rest.InClusterConfig(); err == nil {
		return config, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("not in a cluster, and no usable kubeconfig ($KUBECONFIG or ~/.kube/config): %w", err)
	}
	return config, nil
}

// handler serves the landing page, metrics and health endpoints.
func (o *options) handler(watcher *cluster.Watcher, defaultMinNodes int, logger *slog.Logger) http.Handler {
	analysis := spread.Options{DefaultMinNodes: defaultMinNodes}
	registry := prometheus.NewRegistry()
	figures := collector.New(watcher, collector.Options{
		Analysis:     analysis,
		NodeReplicas: o.nodeReplicas,
	}, logger)
	registry.MustRegister(versioncollector.NewCollector(collector.Namespace), figures)
	if !o.disableExporterMets {
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	mux := http.NewServeMux()
	mux.Handle(o.telemetryPath, collector.NewHandler(registry, figures, logger))
	checks := collector.NewAPI(figures, time.Now(), logger)
	mux.Handle(api.PathServices, checks)
	mux.Handle(api.PathHealth, checks)
	whatIf := whatif.NewHandler(watcher, analysis, logger)
	mux.Handle(whatif.PathWhatIf, whatIf)
	mux.Handle(whatif.PathPlan, whatIf)
	mux.Handle(whatif.PathCampaign, whatIf)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		var waiting []string
		for _, s := range watcher.Status() {
			if !s.Synced {
				waiting = append(waiting, s.Resource)
			}
		}
		if len(waiting) > 0 {
			http.Error(w, "informer caches not synced: "+strings.Join(waiting, ", "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if o.telemetryPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        programName,
			Description: "How each Kubernetes service is spread over nodes, and how much of it survives maintenance",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: o.telemetryPath, Text: "Metrics"},
				{Address: "/readyz", Text: "Readiness (caches synced)"},
				{Address: whatif.PathWhatIf + "?node=NODE", Text: "What if NODE went down now? (JSON)"},
				{Address: api.PathServices + "?severity=critical,warning", Text: "Services with findings (JSON)"},
				{Address: api.PathHealth, Text: "Exporter health (JSON)"},
				{Address: "/healthz", Text: "Health"},
			},
		})
		if err != nil {
			logger.Error("landing page", "err", err)
		} else {
			mux.Handle("/", landing)
		}
	}
	return mux
}
