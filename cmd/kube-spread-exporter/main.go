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
	"net/http/pprof"
	"os"
	"os/signal"
	"path"
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
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-spread-exporter/kube-spread-exporter/admission"
	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/collector"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/jsonapi"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// The webhook remembers a node it admitted out of service only until the
// caches have seen the change: it reads their node versions.
var _ admission.NodeVersions = (*cluster.Watcher)(nil)

const (
	programName = "kube-spread-exporter"
	// defaultAddress is outside the fully allocated 9100-9999 exporter
	// range and clear of the Kubernetes components' ports (10249-10259).
	defaultAddress = ":10217"
)

// The values of --collector.node-replicas.scope.
const (
	nodeReplicasAtRisk = "at-risk"
	nodeReplicasAll    = "all"
)

// The values of --collector.analysis.
const (
	analysisIncremental = "incremental"
	analysisFull        = "full"
)

// pprofPath is where --web.enable-pprof serves the runtime profiles: the
// path go tool pprof and every Go server use.
const pprofPath = "/debug/pprof/"

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
	nodeReplicasScope   string
	analysis            string
	telemetryPath       string
	disableExporterMets bool
	enablePprof         bool
	web                 *web.FlagConfig
	log                 *promslog.Config
	// The admission webhook's listener, off while admissionListen is
	// empty, and its mode.
	admissionListen, admissionWebConfig, admissionMode string

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
	app.Flag("collector.node-replicas.scope", "Services kube_spread_node_replicas is published for: at-risk (replicas on unschedulable nodes, on no more schedulable nodes than min nodes, or in one topology domain; docs/metrics.md) or all.").Default(nodeReplicasAtRisk).EnumVar(&o.nodeReplicasScope, nodeReplicasAtRisk, nodeReplicasAll)
	app.Flag("collector.analysis", "How a change is analysed: incremental (only the services it touches, and the kept placement input) or full (the whole cluster, the reference; docs/operations.md).").Default(analysisIncremental).EnumVar(&o.analysis, analysisIncremental, analysisFull)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.telemetryPath)
	app.Flag("web.disable-exporter-metrics", "Exclude the exporter's own Go and process metrics.").BoolVar(&o.disableExporterMets)
	app.Flag("web.enable-pprof", "Serve Go's runtime profiles (heap, CPU, goroutines) under /debug/pprof/ on the metrics listener, behind its TLS and basic auth; off by default (docs/operations.md#profiling).").BoolVar(&o.enablePprof)
	o.web = kingpinflag.AddFlags(app, defaultAddress)
	app.Flag("admission.listen-address", "Address of the admission webhook's HTTPS listener, e.g. :"+defaultAdmissionPort+" (docs/admission.md). Empty serves no webhook.").Default("").StringVar(&o.admissionListen)
	app.Flag("admission.web.config.file", "Web configuration file of the webhook's listener (the format of --web.config.file); it must configure TLS: the API server calls webhooks over HTTPS only.").Default("").StringVar(&o.admissionWebConfig)
	app.Flag("admission.mode", "What the webhook does with a change that takes a node out of service and hurts services: warn (admit it with warnings), or deny (refuse it when a service would have no replica left, unless the node carries the "+admission.OverrideAnnotation+" annotation).").Default(string(admission.ModeWarn)).EnumVar(&o.admissionMode, admission.Modes...)
	promslogflag.AddFlags(app, o.log)
	return app, o
}

// defaultAdmissionPort is the port of the webhook in deploy/, next to the
// metrics port.
const defaultAdmissionPort = "10218"

// checkAdmission checks the webhook's flags: a listener needs a web
// configuration with TLS, and a web configuration without a listener is
// a mistake.
func (o *options) checkAdmission() error {
	switch {
	case o.admissionListen == "" && o.admissionWebConfig != "":
		return errors.New("--admission.web.config.file is set, but no --admission.listen-address: the webhook would not listen")
	case o.admissionListen == "":
		return nil
	case o.admissionWebConfig == "":
		return errors.New("--admission.listen-address needs --admission.web.config.file with tls_server_config: the API server calls webhooks over HTTPS only")
	}
	if err := web.Validate(o.admissionWebConfig); err != nil {
		return fmt.Errorf("--admission.web.config.file %s: %s", o.admissionWebConfig, strings.Join(strings.Fields(err.Error()), " "))
	}
	content, err := os.ReadFile(o.admissionWebConfig)
	if err != nil {
		return fmt.Errorf("--admission.web.config.file: %w", err)
	}
	var config web.Config
	if err := yaml.Unmarshal(content, &config); err != nil {
		return fmt.Errorf("--admission.web.config.file %s: %s", o.admissionWebConfig, strings.Join(strings.Fields(err.Error()), " "))
	}
	if !config.TLSConfig.IsEnabled() {
		return fmt.Errorf("--admission.web.config.file %s configures no TLS (tls_server_config): the API server calls webhooks over HTTPS only", o.admissionWebConfig)
	}
	return nil
}

// admissionFlags are the exporter-toolkit flags of the webhook's listener.
func (o *options) admissionFlags() *web.FlagConfig {
	return &web.FlagConfig{
		WebListenAddresses: &[]string{o.admissionListen},
		WebSystemdSocket:   new(false),
		WebConfigFile:      &o.admissionWebConfig,
	}
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
	if err := o.checkAdmission(); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", programName, err)
		return exitUsage
	}
	if taken := o.pathTaken(); taken != "" {
		fmt.Fprintf(stderr, "%s: error: --web.telemetry-path %q is the exporter's own %s\n", programName, o.telemetryPath, taken)
		return exitUsage
	}
	if o.enablePprof && strings.HasPrefix(strings.TrimSuffix(o.telemetryPath, "/")+"/", pprofPath) {
		fmt.Fprintf(stderr, "%s: error: --web.telemetry-path %q is under %s, where --web.enable-pprof serves the profiles\n", programName, o.telemetryPath, pprofPath)
		return exitUsage
	}
	restConfig, err := loadRESTConfig(o.kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", programName, err)
		return exitUsage
	}
	restConfig.UserAgent = version.ComponentUserAgent(programName)
	// Every resource watched is a built-in one, which the API server
	// serves as protobuf: decoding 150,000 pods from it rather than JSON
	// is most of what the first sync and a busy watch cost, as for
	// kube-controller-manager, which asks for it the same way.
	restConfig.ContentType = runtime.ContentTypeProtobuf
	restConfig.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
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
	// MaxHeaderBytes stays Go's default of 1 MiB: the server reads a request
	// line and headers before any handler can bound the work, and a burst
	// of 4 MiB queries took the exporter from 45 to 430 MiB resident.
	// Large what-ifs are POSTed (docs/whatif.md#limits).
	handler, webhook, metrics := o.handler(watcher, defaultMinNodes, logger)
	go func() {
		start := time.Now()
		if watcher.WaitForSync(ctx) {
			logger.Info("informer caches synced", "duration", time.Since(start))
			metrics.Prepare()
		}
	}()
	listeners := []listener{{"HTTP", &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, o.web, logger}}
	if webhook != nil {
		// A listener of its own (docs/admission.md): always TLS, with the
		// certificate the API server trusts, and none of the metrics
		// listener's basic auth, which the API server does not send.
		listeners = append(listeners, listener{"admission webhook", &http.Server{Handler: webhook, ReadHeaderTimeout: 10 * time.Second},
			o.admissionFlags(), logger.With("listener", "admission")})
	}
	if !serve(ctx, cancel, listeners, logger) {
		return exitFailed
	}
	logger.Info("shut down")
	return exitOK
}

// listener is one HTTP server and its exporter-toolkit flags.
type listener struct {
	name   string
	server *http.Server
	flags  *web.FlagConfig
	logger *slog.Logger
}

// serve runs the listeners until ctx is done and shuts them down; a
// listener that fails ends the others (cancel) and serve reports false.
func serve(ctx context.Context, cancel context.CancelFunc, listeners []listener, logger *slog.Logger) bool {
	go func() {
		<-ctx.Done()
		shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		for _, l := range listeners {
			_ = l.server.Shutdown(shutdownCtx)
		}
	}()
	failed := make(chan bool, len(listeners))
	for _, l := range listeners {
		go func() {
			err := web.ListenAndServe(l.server, l.flags, l.logger)
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("serve "+l.name, "err", err)
				cancel()
				failed <- true
				return
			}
			failed <- false
		}()
	}
	ok := true
	for range listeners {
		if <-failed {
			ok = false
		}
	}
	return ok
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

// apiPrefix is where the JSON APIs are served (api and whatif paths).
const apiPrefix = "/api/"

// pathTaken names the exporter's own path that --web.telemetry-path would
// take over, "" when it takes none.
func (o *options) pathTaken() string {
	switch p := o.telemetryPath; {
	case p == "/healthz" || p == "/readyz":
		return p
	case strings.HasPrefix(p, apiPrefix) || p == strings.TrimSuffix(apiPrefix, "/"):
		return "JSON APIs' " + apiPrefix
	}
	return ""
}

// handler serves the landing page, metrics, health endpoints and JSON
// APIs; webhook is the admission webhook's handler, nil unless
// --admission.listen-address is set.
func (o *options) handler(watcher *cluster.Watcher, defaultMinNodes int, logger *slog.Logger) (handler, webhook http.Handler, metrics *collector.Handler) {
	analysis := spread.Options{DefaultMinNodes: defaultMinNodes}
	registry := prometheus.NewRegistry()
	figures := collector.New(watcher, collector.Options{
		Analysis:           analysis,
		NodeReplicas:       o.nodeReplicas,
		NodeReplicasAtRisk: o.nodeReplicasScope == nodeReplicasAtRisk,
		FullAnalysis:       o.analysis == analysisFull,
	}, logger)
	registry.MustRegister(versioncollector.NewCollector(collector.Namespace), figures)
	if !o.disableExporterMets {
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	mux := http.NewServeMux()
	metrics = collector.NewHandler(registry, figures, logger)
	mux.Handle(o.telemetryPath, metrics)
	checks := collector.NewAPI(figures, time.Now(), logger)
	whatIf := whatif.NewHandler(watcher, analysis, logger)
	apis := http.NewServeMux()
	apis.Handle(api.PathServices, checks)
	apis.Handle(api.PathHealth, checks)
	apis.Handle(whatif.PathWhatIf, whatIf)
	apis.Handle(whatif.PathPlan, whatIf)
	apis.Handle(whatif.PathCampaign, whatIf)
	// A path under /api/ that names no API is answered in JSON too, as
	// every other error of the APIs.
	apis.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		jsonapi.WriteError(w, http.StatusNotFound, "no such API path %s", jsonapi.Shorten(r.URL.Path))
	})
	mux.Handle(apiPrefix, apis)
	// The check derives the APIs' URLs from the metrics URL, replacing its
	// last path element (check.APIURL): with --web.telemetry-path
	// /x/metrics they are served under /x/ as well, where it looks.
	if dir := path.Dir(o.telemetryPath); dir != "/" && dir != "." {
		mux.Handle(dir+apiPrefix, http.StripPrefix(dir, apis))
	}
	if o.admissionListen != "" {
		// The same what-if and bound on analyses as the API, on a snapshot
		// of its own without placement input (whatif.Handler.AskNodes).
		metrics := admission.NewMetrics()
		registry.MustRegister(metrics)
		webhook = admission.NewHandler(watcher, whatIf, admission.Options{
			Mode: admission.Mode(o.admissionMode), Logger: logger.With("component", "admission"), Metrics: metrics,
		})
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	if o.enablePprof {
		// Off by default: a CPU profile costs the exporter while it runs,
		// and a heap profile names the code's functions to whoever may
		// scrape. On, it answers what the resident set is made of at a
		// size no benchmark reproduces (docs/operations.md#profiling).
		mux.HandleFunc(pprofPath, pprof.Index)
		mux.HandleFunc(pprofPath+"cmdline", pprof.Cmdline)
		mux.HandleFunc(pprofPath+"profile", pprof.Profile)
		mux.HandleFunc(pprofPath+"symbol", pprof.Symbol)
		mux.HandleFunc(pprofPath+"trace", pprof.Trace)
	}
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
			// exporter-toolkit links the heap and CPU profiles unless told
			// not to: dead links without --web.enable-pprof.
			Profiling: strconv.FormatBool(o.enablePprof),
		})
		if err != nil {
			logger.Error("landing page", "err", err)
		} else {
			mux.Handle("/", landing)
		}
	}
	return mux, webhook, metrics
}
