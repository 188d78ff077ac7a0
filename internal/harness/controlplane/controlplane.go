package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// Names of the components, which are also the names of their binaries and
// log files (<Dir>/logs/<name>.log).
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Kwok                  = "kwok"
)

// KwokStagesFile is the name, in the binary directory, of the kwok Stage
// definitions written by tools/build-all.sh.
const KwokStagesFile = "kwok-stages.yaml"

// BinDirEnv names the environment variable that overrides where the binaries
// are looked for.
const BinDirEnv = repo.ToolsBinEnv

const (
	// serviceCIDR is the service IP range; kubernetesServiceIP is its first
	// address, which the API server gives the "kubernetes" Service.
	serviceCIDR         = "10.96.0.0/16"
	kubernetesServiceIP = "10.96.0.1"
	// podCIDR is where kwok takes pod IPs from.
	podCIDR = "10.244.0.0/16"

	// defaultStartTimeout bounds Start and the restart methods when the
	// context has no deadline. A cold start takes a few seconds; the margin
	// is for a loaded CI machine.
	defaultStartTimeout = 2 * time.Minute
	// stopGrace is how long a component gets to exit after SIGTERM before
	// it is killed. While clients hold watches open, kube-apiserver drains
	// them for up to a minute and etcd for about seven seconds; a test
	// simulating an outage should not wait for that, and both are
	// crash-safe.
	stopGrace = 3 * time.Second
)

// Options configure Start.
type Options struct {
	// Dir is the working directory for data, certificates, kubeconfigs and
	// logs. Empty means a new temporary directory, removed by Stop.
	Dir string
	// BinDir holds the binaries and kwok-stages.yaml. Empty means
	// $KSE_TOOLS_BIN or, if that is unset, <repo>/.cache/bin, where <repo> is
	// found by walking up from the working directory.
	BinDir string
	// Logf, if set, receives progress messages. It may be called from
	// several goroutines at once.
	Logf func(format string, args ...any)
	// APIServerOnly starts etcd and kube-apiserver alone: no
	// controller-manager, scheduler or kwok, so nothing but the caller
	// writes to the cluster (no kubelet heartbeats, no node lifecycle,
	// ReplicaSet or EndpointSlice controller). With no controller-manager
	// to create ServiceAccounts, Start creates the "default" ServiceAccount
	// of the "default" namespace itself; other namespaces need theirs
	// created by the caller before pods are accepted there. Only the etcd
	// and kube-apiserver binaries are required. For the scale harness.
	APIServerOnly bool
	// ExtraArgs are command-line flags appended, per component name
	// (Etcd, KubeAPIServer, ...), after the ones Start chooses; for a flag
	// given twice the later one wins. They are kept for the restarts.
	ExtraArgs map[string][]string
	// ExtraEnv are environment variables (NAME=value) added, per component
	// name, to the environment a component inherits, such as GOGC.
	ExtraEnv map[string][]string
	// ValidatingWebhooks configure the API server with admission
	// webhooks: Start creates them through the API as soon as the API
	// server is ready, before any other component starts. A webhook whose
	// clientConfig has no caBundle gets the control plane's CA, which
	// signs the certificates of IssueServingCert: serve the webhook with
	// one, on 127.0.0.1 (clientConfig.url). Until it listens, calls fail
	// and the webhook's failurePolicy applies.
	ValidatingWebhooks []admissionregistrationv1.ValidatingWebhookConfiguration
}

// ControlPlane is a running control plane. Its methods are safe for
// concurrent use.
type ControlPlane struct {
	// Config authenticates as a cluster admin (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file equivalent to Config.
	Kubeconfig string
	// Dir is the working directory; component logs are in Dir/logs.
	Dir string
	// BinDir is where the binaries were found.
	BinDir string

	logf       func(format string, args ...any)
	removeDir  bool // Dir is a temporary directory of our own
	keepDir    bool // set by RunTests after failed tests, to keep the logs
	client     kubernetes.Interface
	httpClient *http.Client // trusts the control plane's CA
	pki        *pki
	ports      ports
	files      files

	apiOnly   bool                // Options.APIServerOnly
	extraArgs map[string][]string // Options.ExtraArgs
	extraEnv  map[string][]string // Options.ExtraEnv
	webhooks  []admissionregistrationv1.ValidatingWebhookConfiguration

	mu      sync.Mutex
	procs   map[string]*process
	stopped bool
}

// ports are the loopback ports of the components, fixed for the lifetime of
// the control plane so that a restarted component is found where it was.
type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok int
}

// files are paths inside Dir.
type files struct {
	ca, caKey, saKey, saPub, servingCert, servingKey string
	controllerManagerKubeconfig, schedulerKubeconfig string
	kwokKubeconfig, kwokHome, etcdData, logs         string
}

// Start starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok (only the first two with Options.APIServerOnly), and returns once
// the API server is ready and the "default" ServiceAccount exists (pods are
// refused before that). On error everything
// started so far is stopped again. ctx bounds the start (two minutes if it
// has no deadline); it does not bound the life of the control plane: call
// Stop.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	began := time.Now()
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	if err := checkBinaries(binDir, opts.APIServerOnly); err != nil {
		return nil, err
	}
	c := &ControlPlane{
		Dir:       opts.Dir,
		BinDir:    binDir,
		logf:      opts.Logf,
		apiOnly:   opts.APIServerOnly,
		extraArgs: opts.ExtraArgs,
		extraEnv:  opts.ExtraEnv,
		webhooks:  opts.ValidatingWebhooks,
		procs:     map[string]*process{},
	}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "kse-controlplane-"); err != nil {
			return nil, fmt.Errorf("create working directory: %w", err)
		}
		c.removeDir = true
	}
	if err := c.start(ctx); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (and while cleaning up: %v)", err, stopErr)
		}
		return nil, err
	}
	c.logf("control plane ready in %s (dir %s, API server %s)", time.Since(began).Round(100*time.Millisecond), c.Dir, c.Config.Host)
	return c, nil
}

func (c *ControlPlane) start(ctx context.Context) error {
	if err := c.prepare(); err != nil {
		return err
	}
	if err := c.startComponent(ctx, Etcd); err != nil {
		return err
	}
	if err := c.startComponent(ctx, KubeAPIServer); err != nil {
		return err
	}
	if err := c.createWebhooks(ctx); err != nil {
		return err
	}
	if c.apiOnly {
		// No controller-manager creates the ServiceAccount the admission
		// plugin looks up for every pod.
		c.mu.Lock()
		apiserver := c.procs[KubeAPIServer]
		c.mu.Unlock()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "default"}}
		err := c.waitFor(ctx, apiserver, "ServiceAccount default/default", func(ctx context.Context) error {
			_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Create(ctx, sa, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("create the default ServiceAccount: %w", err)
		}
		return nil
	}
	// The rest depend only on the API server; starting them together saves
	// a few seconds.
	var wg sync.WaitGroup
	clients := []string{KubeControllerManager, KubeScheduler, Kwok}
	errs := make([]error, len(clients))
	for i, name := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startComponent(ctx, name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The controller-manager creates the ServiceAccount; until it exists the
	// ServiceAccount admission plugin rejects every pod in the namespace.
	c.mu.Lock()
	kcm := c.procs[KubeControllerManager]
	c.mu.Unlock()
	err := c.waitFor(ctx, kcm, "ServiceAccount default/default", func(ctx context.Context) error {
		_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("wait for the default ServiceAccount: %w", err)
	}
	return nil
}

// prepare allocates ports and writes the certificates and kubeconfigs.
func (c *ControlPlane) prepare() error {
	p, err := freePorts(6)
	if err != nil {
		return fmt.Errorf("allocate ports: %w", err)
	}
	c.ports = ports{etcdClient: p[0], etcdPeer: p[1], apiserver: p[2], controllerManager: p[3], scheduler: p[4], kwok: p[5]}

	f := &c.files
	f.logs = filepath.Join(c.Dir, "logs")
	f.etcdData = filepath.Join(c.Dir, "etcd")
	f.kwokHome = filepath.Join(c.Dir, "kwok-home")
	for _, d := range []string{f.logs, f.kwokHome} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}

	ca, err := newPKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	c.pki = ca
	f.ca, f.caKey = ca.caFile(), ca.caKeyFile()
	if f.saKey, f.saPub, err = ca.serviceAccountKey(); err != nil {
		return err
	}
	serving, err := ca.serving("serving")
	if err != nil {
		return err
	}
	f.servingCert, f.servingKey = serving.certFile, serving.keyFile

	// Each component gets its own identity, the one the bootstrap RBAC
	// policy grants its permissions to, as in a real cluster. kwok has no
	// such role and plays every kubelet, so it is an admin.
	identities := []struct {
		name, user string
		groups     []string
		path       *string
	}{
		{"admin", "kse-admin", []string{"system:masters"}, &c.Kubeconfig},
		{KubeControllerManager, "system:kube-controller-manager", nil, &f.controllerManagerKubeconfig},
		{KubeScheduler, "system:kube-scheduler", nil, &f.schedulerKubeconfig},
		{Kwok, "kwok", []string{"system:masters"}, &f.kwokKubeconfig},
	}
	host := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.ports.apiserver))
	for _, id := range identities {
		cred, err := ca.client(id.name, id.user, id.groups...)
		if err != nil {
			return err
		}
		*id.path = filepath.Join(c.Dir, id.name+".kubeconfig")
		if err := writeKubeconfig(*id.path, host, ca.caPEM, cred); err != nil {
			return fmt.Errorf("write %s kubeconfig: %w", id.name, err)
		}
		if id.name == "admin" {
			c.Config = &rest.Config{
				Host: host,
				TLSClientConfig: rest.TLSClientConfig{
					CAData:   ca.caPEM,
					CertData: cred.certPEM,
					KeyData:  cred.keyPEM,
				},
				// Tests create objects in bursts; the client-side default of
				// 5 QPS would make them slow for no benefit.
				QPS:   100,
				Burst: 200,
			}
		}
	}
	if c.client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return fmt.Errorf("create client: %w", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.caCert)
	c.httpClient = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	return nil
}

// args returns the command line of a component, its own flags then
// Options.ExtraArgs, and the environment it gets on top of this process's,
// its own variables then Options.ExtraEnv.
func (c *ControlPlane) args(name string) (args, env []string) {
	args, env = c.defaultArgs(name)
	return append(args, c.extraArgs[name]...), append(env, c.extraEnv[name]...)
}

func (c *ControlPlane) defaultArgs(name string) (args, env []string) {
	f, p := c.files, c.ports
	local := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	switch name {
	case Etcd:
		client, peer := "http://"+local(p.etcdClient), "http://"+local(p.etcdPeer)
		return []string{
			"--name=default",
			"--data-dir=" + f.etcdData,
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=default=" + peer,
			// The data is thrown away after the run; fsync only slows
			// every write down.
			"--unsafe-no-fsync=true",
		}, nil
	case KubeAPIServer:
		return []string{
			"--etcd-servers=http://" + local(p.etcdClient),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(p.apiserver),
			"--cert-dir=" + filepath.Join(c.Dir, "apiserver"),
			"--tls-cert-file=" + f.servingCert,
			"--tls-private-key-file=" + f.servingKey,
			"--client-ca-file=" + f.ca,
			"--authorization-mode=Node,RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + f.saPub,
			"--service-account-signing-key-file=" + f.saKey,
			"--service-cluster-ip-range=" + serviceCIDR,
			// The reconciler would publish 127.0.0.1 as the endpoint of the
			// "kubernetes" Service, which the API server refuses.
			"--endpoint-reconciler-type=none",
		}, nil
	case KubeControllerManager:
		return []string{
			"--kubeconfig=" + f.controllerManagerKubeconfig,
			"--authentication-kubeconfig=" + f.controllerManagerKubeconfig,
			"--authorization-kubeconfig=" + f.controllerManagerKubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(p.controllerManager),
			"--tls-cert-file=" + f.servingCert,
			"--tls-private-key-file=" + f.servingKey,
			"--client-ca-file=" + f.ca,
			"--service-account-private-key-file=" + f.saKey,
			"--root-ca-file=" + f.ca,
			"--cluster-signing-cert-file=" + f.ca,
			"--cluster-signing-key-file=" + f.caKey,
			// Each controller acts as its own ServiceAccount, as in kubeadm
			// clusters, so RBAC is exercised as in production.
			"--use-service-account-credentials=true",
			// A single instance: leader election would only delay a restart
			// until the old lease expires.
			"--leader-elect=false",
		}, nil
	case KubeScheduler:
		return []string{
			"--kubeconfig=" + f.schedulerKubeconfig,
			"--authentication-kubeconfig=" + f.schedulerKubeconfig,
			"--authorization-kubeconfig=" + f.schedulerKubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(p.scheduler),
			"--tls-cert-file=" + f.servingCert,
			"--tls-private-key-file=" + f.servingKey,
			"--client-ca-file=" + f.ca,
			"--leader-elect=false",
			// The scheduler's first list of pods arrives in key order
			// (namespace, name), which is the order StopScheduler
			// promises. With client-go's default watch-list streaming
			// (WatchListClient, on since 1.35) the reflector collects the
			// initial objects in a map (reflector.go, temporaryStore) and
			// hands them over in random order, so pods waiting when the
			// scheduler starts were taken in a different order each run.
			"--feature-gates=WatchListClient=false",
		}, nil
	case Kwok:
		return []string{
				"--kubeconfig=" + f.kwokKubeconfig,
				"--config=" + filepath.Join(c.BinDir, KwokStagesFile),
				"--manage-all-nodes=true",
				"--server-address=" + local(p.kwok),
				"--cidr=" + podCIDR,
				// Renew node Leases like a kubelet, so Nodes stay Ready
				// however long a test runs; the heartbeat stage alone
				// updates node status only every 20 to 45 seconds.
				"--node-lease-duration-seconds=40",
			},
			// kwok also reads ~/.kwok/kwok.yaml; a HOME of its own keeps a
			// developer's configuration out of the tests.
			[]string{"HOME=" + f.kwokHome}
	}
	panic("controlplane: unknown component " + name)
}

// ready returns nil once the component serves.
func (c *ControlPlane) ready(ctx context.Context, name string) error {
	local := func(scheme string, port int, path string) string {
		return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path
	}
	switch name {
	case Etcd:
		return c.httpOK(ctx, local("http", c.ports.etcdClient, "/health"))
	case KubeAPIServer:
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	case KubeControllerManager:
		return c.httpOK(ctx, local("https", c.ports.controllerManager, "/healthz"))
	case KubeScheduler:
		return c.httpOK(ctx, local("https", c.ports.scheduler, "/healthz"))
	case Kwok:
		return c.httpOK(ctx, local("http", c.ports.kwok, "/healthz"))
	}
	return fmt.Errorf("unknown component %s", name)
}

func (c *ControlPlane) httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// startComponent starts a component and waits until it is ready.
func (c *ControlPlane) startComponent(ctx context.Context, name string) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return fmt.Errorf("start %s: control plane stopped", name)
	}
	if p := c.procs[name]; p != nil && !p.exited() {
		c.mu.Unlock()
		return fmt.Errorf("start %s: already running", name)
	}
	bin := filepath.Join(c.BinDir, name)
	// Run the file the link points to, so the command line shows which
	// pinned build runs (and `pgrep -f .cache/tools` finds it).
	if resolved, err := filepath.EvalSymlinks(bin); err == nil {
		bin = resolved
	}
	args, env := c.args(name)
	began := time.Now()
	p, err := startProcess(name, bin, args, env, filepath.Join(c.files.logs, name+".log"))
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs[name] = p
	c.mu.Unlock()

	if err := c.waitFor(ctx, p, name, func(ctx context.Context) error { return c.ready(ctx, name) }); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.logf("%s ready in %s", name, time.Since(began).Round(10*time.Millisecond))
	return nil
}

// waitFor polls check until it succeeds, failing early if p exits.
func (c *ControlPlane) waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(checkCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.crashErr()
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v)%s", what, ctx.Err(), err, p.logTail())
		case <-tick.C:
		}
	}
}

// stopComponent stops a component if it runs.
func (c *ControlPlane) stopComponent(name string) error {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.stop(stopGrace); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// PID returns the process ID of a running component (KubeAPIServer,
// Etcd, ...), 0 if it does not run. The scale harness reads the API
// server's CPU time from it.
func (c *ControlPlane) PID(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && !p.exited() {
		return p.cmd.Process.Pid
	}
	return 0
}

// Stop stops all components and, if Start created the working directory,
// removes it. It returns an error if a component had crashed. Calling it
// again does nothing.
func (c *ControlPlane) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	removeDir := c.removeDir && !c.keepDir
	c.mu.Unlock()

	// The clients of the API server go first, together, so they do not log
	// a storm of errors about it going away; storage goes last.
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range []string{Kwok, KubeScheduler, KubeControllerManager} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.stopComponent(name); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, name := range []string{KubeAPIServer, Etcd} {
		if err := c.stopComponent(name); err != nil {
			errs = append(errs, err)
		}
	}
	if removeDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", c.Dir, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop control plane: %w", err)
	}
	return nil
}

// StopAPIServer stops kube-apiserver, leaving the other components running,
// to test how clients cope with an outage. The API server stops listening at
// once; it is killed if it has not exited after a few seconds.
func (c *ControlPlane) StopAPIServer() error { return c.stopComponent(KubeAPIServer) }

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// port and with the same data, and waits until it is ready.
func (c *ControlPlane) StartAPIServer(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return c.startComponent(ctx, KubeAPIServer)
}

// StopEtcd stops etcd, leaving the API server running but unable to serve
// anything its watch cache cannot.
func (c *ControlPlane) StopEtcd() error { return c.stopComponent(Etcd) }

// StartEtcd starts etcd again after StopEtcd, with the same data, and waits
// until it is healthy and, if the API server runs, until the API server is
// ready again.
func (c *ControlPlane) StartEtcd(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := c.startComponent(ctx, Etcd); err != nil {
		return err
	}
	c.mu.Lock()
	apiserver := c.procs[KubeAPIServer]
	c.mu.Unlock()
	if apiserver == nil {
		return nil
	}
	err := c.waitFor(ctx, apiserver, KubeAPIServer, func(ctx context.Context) error { return c.ready(ctx, KubeAPIServer) })
	if err != nil {
		return fmt.Errorf("wait for kube-apiserver after the etcd restart: %w", err)
	}
	return nil
}

// StopScheduler stops kube-scheduler, leaving the other components
// running: pods created meanwhile stay Pending, unlooked at. A test that
// needs the scheduler to take a set of pods in a known order stops it,
// creates them, and starts it again: on start the scheduler queues every
// pending pod before it places any, in the order its informer lists them
// (by namespace and name: the scheduler runs with WatchListClient off for
// that), and at equal priority takes them in that order.
func (c *ControlPlane) StopScheduler() error { return c.stopComponent(KubeScheduler) }

// StartScheduler starts kube-scheduler again after StopScheduler and waits
// until it serves.
func (c *ControlPlane) StartScheduler(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return c.startComponent(ctx, KubeScheduler)
}

// createWebhooks creates Options.ValidatingWebhooks, with the control
// plane's CA where they name none.
func (c *ControlPlane) createWebhooks(ctx context.Context) error {
	for _, config := range c.webhooks {
		config := *config.DeepCopy()
		for i := range config.Webhooks {
			if len(config.Webhooks[i].ClientConfig.CABundle) == 0 {
				config.Webhooks[i].ClientConfig.CABundle = c.pki.caPEM
			}
		}
		if _, err := c.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &config, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ValidatingWebhookConfiguration %s: %w", config.Name, err)
		}
		c.logf("ValidatingWebhookConfiguration %s created", config.Name)
	}
	return nil
}

// IssueServingCert issues, from the control plane's CA, a certificate that
// serves on 127.0.0.1 and localhost, for a component of the tests or the
// demo that should be reached over TLS (the exporter with a
// --web.config.file). It returns the certificate, its key, and the CA that
// verifies it.
func (c *ControlPlane) IssueServingCert(name string) (certFile, keyFile, caFile string, err error) {
	cred, err := c.pki.serving(name)
	if err != nil {
		return "", "", "", err
	}
	return cred.certFile, cred.keyFile, c.pki.caFile(), nil
}

func writeKubeconfig(path, host string, caPEM []byte, cred *credential) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kse"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["kse"] = &clientcmdapi.AuthInfo{ClientCertificateData: cred.certPEM, ClientKeyData: cred.keyPEM}
	cfg.Contexts["kse"] = &clientcmdapi.Context{Cluster: "kse", AuthInfo: "kse"}
	cfg.CurrentContext = "kse"
	return clientcmd.WriteToFile(*cfg, path)
}

// freePorts returns n distinct free loopback ports. Holding all listeners
// until the end keeps the kernel from handing out the same port twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// findBinDir resolves where the binaries are: dir if set, else $KSE_TOOLS_BIN,
// else .cache/bin in the repository root.
func findBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(BinDirEnv)
	}
	if dir == "" {
		root, err := repo.Root()
		if err != nil {
			return "", fmt.Errorf("find the binaries (set %s or Options.BinDir): %w", BinDirEnv, err)
		}
		dir = filepath.Join(root, ".cache", "bin")
	}
	return filepath.Abs(dir)
}

// checkBinaries fails, naming the remedy, unless dir holds everything Start
// runs.
func checkBinaries(dir string, apiServerOnly bool) error {
	needed := []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler, Kwok, KwokStagesFile}
	if apiServerOnly {
		needed = needed[:2]
	}
	var missing []string
	for _, name := range needed {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("control-plane binaries missing in %s (%s): run \"make tools\"", dir, strings.Join(missing, ", "))
	}
	return nil
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultStartTimeout)
}
