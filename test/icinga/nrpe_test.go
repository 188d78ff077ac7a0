package icinga

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	nrpeBinary = "/usr/sbin/nrpe"
	checkNRPE  = "/usr/lib/nagios/plugins/check_nrpe"
	// The shipped snippet's placeholders, replaced for the test.
	shippedPlugin = "/usr/lib/nagios/plugins/check_kube_spread"
	shippedURL    = "http://127.0.0.1:10217/metrics"
)

// testNRPE starts nrpe with the shipped icinga/nrpe/kube_spread.cfg (its
// paths pointed at the built check and the running exporter) and checks
// that check_nrpe returns exactly what the plugin says when run directly:
// exit code, first line and detail lines. The exporter is in a steady
// state (the replay's day two), so both runs see the same cluster.
func testNRPE(t *testing.T, metricsURL string) {
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
	snippet := strings.ReplaceAll(strings.ReplaceAll(string(shipped), shippedPlugin, check), shippedURL, metricsURL)
	commands := parseCommands(t, snippet)

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

	var log strings.Builder
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

	address := []string{"-H", "127.0.0.1", "-p", fmt.Sprint(port), "-t", "30"}
	// Without -c, check_nrpe asks for the version: nrpe is up when it
	// answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := runCommand(t, checkNRPE, address...)
		if code == 0 && strings.HasPrefix(out, "NRPE v") {
			break
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

	for _, tc := range []struct {
		command  string
		wantCode int
		// wantFirst is the start of the first line.
		wantFirst string
	}{
		{"kube_spread_services", 2, "CRITICAL - "},
		{"kube_spread_mathoid", 2, "CRITICAL - mathoid/Deployment/mathoid: no replica survives maintenance | 'replicas_desired'=4;;;0 'replicas_ready'=4;;;0 'replicas_schedulable'=0;;;0 'nodes'=2;;;0 'schedulable_nodes'=0;;;0 'min_nodes'=2;;;0"},
		{"kube_spread_health", 0, "OK - kube-spread-exporter"},
	} {
		t.Run(tc.command, func(t *testing.T) {
			args, ok := commands[tc.command]
			if !ok {
				t.Fatalf("command[%s] is not in icinga/nrpe/kube_spread.cfg", tc.command)
			}
			code, out := runCommand(t, checkNRPE, append(address, "-c", tc.command)...)
			directCode, direct := runCommand(t, args[0], args[1:]...)
			if code != tc.wantCode || !strings.HasPrefix(out, tc.wantFirst) {
				t.Errorf("check_nrpe -c %s: exit %d\n%s\nwant exit %d, starting %q", tc.command, code, out, tc.wantCode, tc.wantFirst)
			}
			// The health line holds an age in seconds that may tick
			// between the two runs; the others are the same text.
			if tc.command == "kube_spread_health" {
				out, direct = firstWords(out, 6), firstWords(direct, 6)
			}
			if code != directCode || strings.TrimRight(out, "\n") != strings.TrimRight(direct, "\n") {
				t.Errorf("through NRPE: exit %d\n%s\nrun directly: exit %d\n%s", code, out, directCode, direct)
			}
		})
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

func firstWords(s string, n int) string {
	words := strings.Fields(s)
	return strings.Join(words[:min(n, len(words))], " ")
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
