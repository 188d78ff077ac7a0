package icinga

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
	"github.com/kube-spread-exporter/kube-spread-exporter/cluster"
	"github.com/kube-spread-exporter/kube-spread-exporter/collector"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

const (
	nrpeBinary = "/usr/sbin/nrpe"
	checkNRPE  = "/usr/lib/nagios/plugins/check_nrpe"
	// The shipped snippet's placeholders, replaced for the test.
	shippedPlugin = "/usr/lib/nagios/plugins/check_kube_spread"
	shippedURL    = "http://127.0.0.1:10217/metrics"
)

// nrpeDaemon is a running nrpe with the shipped icinga/nrpe/kube_spread.cfg.
type nrpeDaemon struct {
	address  []string
	commands map[string][]string
}

// startNRPE starts nrpe with the shipped snippet, its paths pointed at the
// built check and urls[""]; for every other key of urls the snippet's
// health command is added again as kube_spread_health_<key>, reading that
// URL.
func startNRPE(t *testing.T, urls map[string]string) *nrpeDaemon {
	t.Helper()
	requireTool(t, nrpeBinary)
	requireTool(t, checkNRPE)
	check := checkPlugin(t)

	shipped, err := os.ReadFile(filepath.Join(repoRoot, "icinga", "nrpe", "kube_spread.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(shipped), shippedPlugin) || !strings.Contains(string(shipped), shippedURL) {
		t.Fatalf("icinga/nrpe/kube_spread.cfg no longer uses %s and %s: update the test", shippedPlugin, shippedURL)
	}
	snippet := strings.ReplaceAll(strings.ReplaceAll(string(shipped), shippedPlugin, check), shippedURL, urls[""])
	for key, url := range urls {
		if key == "" {
			continue
		}
		for _, line := range strings.Split(string(shipped), "\n") {
			if strings.HasPrefix(line, "command[kube_spread_health]=") {
				line = strings.Replace(line, "command[kube_spread_health]", "command[kube_spread_health_"+key+"]", 1)
				snippet += strings.ReplaceAll(strings.ReplaceAll(line, shippedPlugin, check), shippedURL, url) + "\n"
			}
		}
	}
	d := &nrpeDaemon{commands: parseCommands(t, snippet)}

	dir := t.TempDir()
	// nrpe runs as the nagios user when started as root; it reads its
	// configuration before it drops privileges, but keep it readable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	include := filepath.Join(dir, "kube_spread.cfg")
	if err := os.WriteFile(include, []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	config := fmt.Sprintf(`pid_file=%s/nrpe.pid
server_address=127.0.0.1
server_port=%d
allowed_hosts=127.0.0.1
dont_blame_nrpe=0
command_timeout=30
connection_timeout=60
include=%s
`, dir, port, include)
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("nagios"); err != nil {
			t.Fatalf("user nagios is missing (%v): run `make system-deps`, the package nagios-nrpe-server creates it", err)
		}
		config += "nrpe_user=nagios\nnrpe_group=nagios\n"
	}
	configFile := filepath.Join(dir, "nrpe.cfg")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	var log lockedBuffer
	nrpe := exec.Command(nrpeBinary, "-c", configFile, "-f")
	nrpe.Stdout, nrpe.Stderr = &log, &log
	// nrpe dies with the test process, even on a panic or kill.
	nrpe.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := nrpe.Start(); err != nil {
		t.Fatalf("start nrpe: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- nrpe.Wait() }()
	t.Cleanup(func() {
		// The whole group: nrpe forks a child per connection.
		_ = syscall.Kill(-nrpe.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-nrpe.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Error("nrpe did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("nrpe log:\n%s", log.String())
		}
	})

	// check_nrpe's own timeout left at its default (10 s), as
	// docs/check.md calls it: the shipped --timeout must answer first.
	d.address = []string{"-H", "127.0.0.1", "-p", fmt.Sprint(port)}
	// Without -c, check_nrpe asks for the version: nrpe is up when it
	// answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := runCommand(t, checkNRPE, d.address...)
		if code == 0 && strings.HasPrefix(out, "NRPE v") {
			return d
		}
		select {
		case err := <-exited:
			t.Fatalf("nrpe exited: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nrpe on port %d not answering within 30s: exit %d %s", port, code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// expect runs the command through check_nrpe, protocol v4 and v2 (-2),
// and directly: every run must give the exit code and a first line that
// starts with wantFirst; v4 must carry the check's whole output, v2 at
// least its whole first line, perfdata included.
func (d *nrpeDaemon) expect(t *testing.T, command string, wantCode int, wantFirst string) {
	t.Helper()
	d.expectWith(t, command, wantCode, wantFirst, "")
}

// expectWith is expect, and the v4 output must also contain contains.
func (d *nrpeDaemon) expectWith(t *testing.T, command string, wantCode int, wantFirst, contains string) {
	t.Helper()
	args, ok := d.commands[command]
	if !ok {
		t.Fatalf("command[%s] is not in the NRPE configuration", command)
	}
	code, v4 := runCommand(t, checkNRPE, append(d.address, "-c", command)...)
	code2, v2 := runCommand(t, checkNRPE, append(d.address, "-2", "-c", command)...)
	directCode, direct := runCommand(t, args[0], args[1:]...)
	first := func(s string) string { f, _, _ := strings.Cut(s, "\n"); return f }
	for _, run := range []struct {
		name string
		code int
		out  string
	}{{"check_nrpe", code, v4}, {"check_nrpe -2", code2, v2}, {"directly", directCode, direct}} {
		if run.code != wantCode || !strings.HasPrefix(run.out, wantFirst) {
			t.Errorf("%s -c %s: exit %d\n%s\nwant exit %d, starting %q", run.name, command, run.code, run.out, wantCode, wantFirst)
		}
	}
	if contains != "" && !strings.Contains(v4, contains) {
		t.Errorf("check_nrpe -c %s lacks %q:\n%s", command, contains, v4)
	}
	// Health lines hold ages that tick between runs; the others are the
	// same text whichever way they travel.
	if strings.Contains(command, "health") {
		return
	}
	if strings.TrimRight(v4, "\n") != strings.TrimRight(direct, "\n") {
		t.Errorf("check_nrpe -c %s:\n%s\nrun directly:\n%s", command, v4, direct)
	}
	if first(v2) != first(direct) {
		t.Errorf("check_nrpe -2 -c %s, first line:\n%s\nrun directly:\n%s", command, first(v2), first(direct))
	}
}

// parseCommands reads the command[name]=argv lines of an NRPE snippet.
// The shipped snippet quotes nothing, so spaces separate arguments.
func parseCommands(t *testing.T, snippet string) map[string][]string {
	t.Helper()
	commands := make(map[string][]string)
	for _, line := range strings.Split(snippet, "\n") {
		rest, ok := strings.CutPrefix(line, "command[")
		if !ok {
			continue
		}
		name, argv, ok := strings.Cut(rest, "]=")
		if !ok {
			t.Fatalf("malformed NRPE command line %q", line)
		}
		commands[name] = strings.Fields(argv)
	}
	return commands
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// fixedSource is a fixed cluster for the exporter's own handlers.
type fixedSource struct{ cluster *spread.Cluster }

func (s fixedSource) Snapshot() (*spread.Cluster, error)          { return s.cluster, nil }
func (s fixedSource) SnapshotForScrape() (*spread.Cluster, error) { return s.cluster, nil }
func (fixedSource) Status() []cluster.ResourceStatus {
	return []cluster.ResourceStatus{{Resource: "pods", Synced: true, LastUpdate: time.Now()}}
}
func (fixedSource) InvalidAnnotations() uint64 { return 0 }
func (fixedSource) Generation() uint64         { return 1 }
func (fixedSource) Freshness() cluster.Freshness {
	return cluster.Freshness{Probed: true, APIServerUp: true, Confirmed: time.Now()}
}

// TestNRPEv2KeepsPerfdata: services with names of the longest kind make a
// first line the check must cap, so that NRPE v2's 1,024 bytes still carry
// the state and all perfdata; the names go whole to the long output, which
// v4 carries.
func TestNRPEv2KeepsPerfdata(t *testing.T) {
	nodes := map[string]*spread.Node{
		"a": {Name: "a", Unschedulable: []spread.Reason{spread.ReasonCordoned}},
		"b": {Name: "b", Unschedulable: []spread.Reason{spread.ReasonCordoned}},
		"c": {Name: "c"},
	}
	c := &spread.Cluster{Nodes: nodes}
	for i := range 5 {
		// 253 characters: the longest name a Deployment may have.
		name := fmt.Sprintf("service-%d-%s", i, strings.Repeat("x", 253-len("service-0-")))
		c.Services = append(c.Services, &spread.Service{Namespace: strings.Repeat("n", 63), Kind: spread.KindDeployment, Name: name, DesiredReplicas: 2,
			Replicas: []spread.Replica{{Node: "a", Ready: true}, {Node: "b", Ready: true}}})
	}
	logger := slog.New(slog.DiscardHandler)
	figures := collector.New(fixedSource{c}, collector.Options{Analysis: spread.Options{DefaultMinNodes: 2}}, logger)
	registry := prometheus.NewRegistry()
	registry.MustRegister(figures)
	mux := http.NewServeMux()
	mux.Handle("/metrics", collector.NewHandler(registry, figures, logger))
	mux.Handle(api.PathServices, collector.NewAPI(figures, time.Now(), logger))
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)

	d := startNRPE(t, map[string]string{"": server.URL + "/metrics"})
	const perfdata = " | 'services'=5;;;0 'critical'=5;;0;0;5 'warning'=0;;;0;5 'not_ok'=5;0;;0;5 'replicas_ready'=10;;;0 'replicas_schedulable'=0;;;0"
	for _, v2 := range []bool{false, true} {
		args := append(d.address, "-c", "kube_spread_services")
		if v2 {
			args = append(d.address, "-2", "-c", "kube_spread_services")
		}
		code, out := runCommand(t, checkNRPE, args...)
		first, rest, _ := strings.Cut(out, "\n")
		if code != 2 || !strings.HasPrefix(first, "CRITICAL - 5 critical, 0 warning of 5 services: ") || !strings.HasSuffix(first, "..."+perfdata) || len(first)+1 > 1023 {
			t.Errorf("check_nrpe %v: exit %d, first line of %d bytes:\n%s", args[4:], code, len(first), first)
		}
		if !v2 && strings.Count(rest, "CRITICAL "+strings.Repeat("n", 63)+"/Deployment/service-") != 5 {
			t.Errorf("check_nrpe v4 lost the long output:\n%s", rest)
		}
	}
}

// hungExporter returns the metrics URL of an address that accepts
// connections and never answers: a hung exporter.
func hungExporter(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String() + "/metrics"
}
