// Command mathoid-replay is the one-command demo: it starts a throw-away
// Kubernetes control plane on loopback (etcd, kube-apiserver,
// controller-manager, scheduler, kwok), runs kube-spread-exporter against it,
// replays the mathoid incident of 2018-07-04 step by step, and prints what
// the exporter reports for mathoid after each step. It cleans up after
// itself. Run it with `make demo`, which first builds the control-plane
// binaries.
//
// Prometheus evaluates the alert rules and sends to Alertmanager, loaded with
// deploy/alertmanager.example.yml (its receivers pointed at a webhook of the
// demo's own); the demo ends with the page as that webhook receives it.
//
// Exit codes: 0 when the replay ran, the exporter showed the danger before
// the pods were gone and the page was delivered; 1 otherwise.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/amserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/controlplane"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/promserver"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/replay"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

func main() {
	secure := flag.Bool("secure", false, "Serve the exporter with TLS and basic auth (exporter-toolkit's --web.config.file); Prometheus, the what-if questions and the check use them.")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *secure); err != nil {
		fmt.Fprintf(os.Stderr, "mathoid-replay: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, secure bool) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	say("== Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		return err
	}
	defer func() {
		say("== Cleaning up: stopping the control plane and removing %s", cp.Dir)
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "mathoid-replay: %v\n", err)
		}
	}()

	binDir, err := os.MkdirTemp("", "mathoid-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	say("== Building and starting kube-spread-exporter")
	binary, err := exporterproc.Build(ctx, ".", binDir)
	if err != nil {
		return err
	}
	access, passwordFile := exporterproc.Access{}, ""
	if secure {
		if access, passwordFile, err = secureAccess(cp, binDir); err != nil {
			return err
		}
	}
	exporter, err := exporterproc.StartSecured(ctx, binary, cp.Kubeconfig, access)
	if err != nil {
		return err
	}
	defer exporter.Stop()
	if err := exporter.WaitReady(ctx); err != nil {
		return err
	}
	say("   exporter at %s/metrics, caches synced", exporter.URL)
	if secure {
		say("   TLS with a certificate of the cluster CA, basic auth user %q (web config %s)", access.Username, access.WebConfigFile)
	}
	// Every client of the exporter (the check, Prometheus) reaches it the same way.
	checkFlags := []string{"--url=" + exporter.URL + "/metrics"}
	scrapeSecurity := ""
	if secure {
		checkFlags = append(checkFlags, "--tls.ca-file="+access.CAFile, "--basic-auth.username="+access.Username, "--basic-auth.password-file="+passwordFile)
		scrapeSecurity = fmt.Sprintf("    scheme: https\n    tls_config:\n      ca_file: %q\n    basic_auth:\n      username: %q\n      password_file: %q\n", access.CAFile, access.Username, passwordFile)
	}
	checkBinary, err := exporterproc.BuildCommand(ctx, ".", binDir, "check_kube_spread")
	if err != nil {
		return err
	}

	say("== Starting Alertmanager with %s, its receivers pointed at the demo's webhook", alertmanagerExample)
	webhook := amserver.NewWebhook()
	receiver := httptest.NewServer(webhook)
	defer receiver.Close()
	example, err := os.ReadFile(alertmanagerExample)
	if err != nil {
		return err
	}
	amConfig, err := amserver.Rewire(example, receiver.URL, demoTimers)
	if err != nil {
		return err
	}
	amDir, err := os.MkdirTemp("", "mathoid-replay-alertmanager-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(amDir)
	alertmanager, err := amserver.Start(ctx, amDir, amConfig)
	if err != nil {
		return err
	}
	defer alertmanager.Stop()
	say("   Alertmanager at %s, webhook at %s (group_wait %s; the example's is 10s)", alertmanager.URL, receiver.URL, demoTimers.GroupWait)

	say("== Starting Prometheus with rules/kube-spread.rules.yml")
	promDir, err := os.MkdirTemp("", "mathoid-replay-prometheus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(promDir)
	rules, err := filepath.Abs(filepath.Join("rules", "kube-spread.rules.yml"))
	if err != nil {
		return err
	}
	prometheus, err := promserver.Start(ctx, promDir, fmt.Sprintf(prometheusConfig, rules, alertmanager.Address(), strings.TrimPrefix(strings.TrimPrefix(exporter.URL, "https://"), "http://"))+scrapeSecurity)
	if err != nil {
		return err
	}
	defer prometheus.Stop()
	say("   Prometheus at %s, scraping and evaluating every %s (production: 30s)", prometheus.URL, demoInterval)

	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	scenario := &replay.Scenario{Client: client, Logf: func(format string, args ...any) { say("   "+format, args...) }}

	say("\n== 2018-07-03, before the reimage")
	if err := scenario.Setup(ctx); err != nil {
		return err
	}
	if _, err := show(ctx, out, exporter, func(f spread.Figures) bool { return f.Nodes == 4 }); err != nil {
		return err
	}

	say("\n== 2018-07-03, before the reimage: the whole campaign, asked once at the start")
	say("   Day one reimages kubernetes2003 and kubernetes2004, day two kubernetes2001 and kubernetes2002.")
	say("   Each batch is judged on where the batches before it leave the pods, not on today's placement:")
	runCheck(ctx, say, checkBinary, append(checkFlags, "campaign", "--batch=kubernetes2003,kubernetes2004", "--batch=kubernetes2001,kubernetes2002")...)
	say("   Today every batch looks safe on its own; the campaign says the second one is fatal, and why.")
	say("   The replay below runs the campaign as it was run in 2018, without the remedy.")

	say("\n== 2018-07-03, sequential reimage of kubernetes2003 and kubernetes2004")
	if err := scenario.DayOne(ctx); err != nil {
		return err
	}
	if _, err := show(ctx, out, exporter, func(f spread.Figures) bool { return f.Nodes == 2 && f.SchedulableNodes == 2 }); err != nil {
		return err
	}
	say("   Every replica now lives on kubernetes2001 and kubernetes2002, and nothing says so but these figures.")

	say("\n== 2018-07-04 08:04, before the parallel reimage: the preflight question")
	if err := preflight(ctx, say, exporter); err != nil {
		return err
	}
	say("   The same question as a guard a reimage script or NRPE runs:")
	runCheck(ctx, say, checkBinary, append(checkFlags, "whatif", "--node=kubernetes2001", "--node=kubernetes2002")...)

	say("\n== 2018-07-04 08:05, kubernetes2001 and kubernetes2002 cordoned together for a parallel reimage")
	if err := scenario.DayTwo(ctx); err != nil {
		return err
	}
	cordoned := time.Now()
	verdict, err := show(ctx, out, exporter, func(f spread.Figures) bool { return f.ReplicasSchedulable == 0 })
	if err != nil {
		return err
	}
	if verdict != spread.VerdictNoReplicasLeft {
		return fmt.Errorf("after the day-two cordon the verdict is %s, want %s", verdict, spread.VerdictNoReplicasLeft)
	}
	say("   All four pods are still running, and the exporter already reports that none of them survives")
	say("   the maintenance: replicas_schedulable is 0.")
	say("   Tooling that cordons first and asks second (kubectl drain does) gets the same refusal:")
	runCheck(ctx, say, checkBinary, append(checkFlags, "whatif", "--node=kubernetes2001", "--node=kubernetes2002")...)

	say("\n== The Icinga check, as NRPE would run it")
	runCheck(ctx, say, checkBinary, append(checkFlags, "services", "--namespace=mathoid")...)

	say("\n== Waiting for Prometheus to page (the alert's for: is 1m)")
	if err := waitForPage(ctx, say, prometheus, cordoned); err != nil {
		return err
	}
	say("\n== The page, as the pager's webhook receives it from Alertmanager")
	if err := waitForNotification(ctx, say, webhook, cordoned); err != nil {
		return err
	}
	say("   In 2018 the first page came with the outage; here it comes while the pods still run.")
	return nil
}

// alertmanagerExample is the shipped Alertmanager configuration the demo
// runs, relative to the repository.
const alertmanagerExample = "deploy/alertmanager.example.yml"

// demoTimers shorten the example's route timers, as demoInterval shortens
// Prometheus's; the repeat interval is longer than the demo.
var demoTimers = amserver.Timers{GroupWait: 2 * time.Second, GroupInterval: 10 * time.Second, RepeatInterval: time.Hour}

// waitForNotification waits for the page about mathoid and prints it as it
// arrived: Alertmanager's webhook payload, indented.
func waitForNotification(ctx context.Context, say func(string, ...any), webhook *amserver.Webhook, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		select {
		case n := <-webhook.Received():
			if n.Status != "firing" || n.GroupLabels["namespace"] != replay.Namespace {
				continue
			}
			say("   POST %s, %s after the cordon:", n.Path, n.Received.Sub(since).Round(time.Second))
			var indented bytes.Buffer
			if err := json.Indent(&indented, n.Body, "   ", "  "); err != nil {
				return fmt.Errorf("indent the notification: %w", err)
			}
			say("   %s", indented.String())
			return nil
		case err := <-webhook.Errors:
			return err
		case <-ctx.Done():
			return fmt.Errorf("no notification about mathoid reached the webhook within a minute of the alert")
		}
	}
}

// demoInterval keeps the demo short; the rules' timing is proven at the
// production interval of 30s by test/alerts.
const demoInterval = "5s"

const prometheusConfig = `global:
  scrape_interval: ` + demoInterval + `
  evaluation_interval: ` + demoInterval + `
rule_files:
  - %q
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: kube-spread-exporter
    static_configs:
      - targets: [%q]
`

// secureAccess writes a web configuration with TLS (a certificate of the
// control plane's CA) and basic auth (a random password, bcrypt-hashed as
// exporter-toolkit wants), and returns how to reach the exporter and the
// file holding the password for the check and Prometheus.
func secureAccess(cp *controlplane.ControlPlane, dir string) (exporterproc.Access, string, error) {
	cert, key, ca, err := cp.IssueServingCert("kube-spread-exporter")
	if err != nil {
		return exporterproc.Access{}, "", err
	}
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		return exporterproc.Access{}, "", err
	}
	password := hex.EncodeToString(random)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return exporterproc.Access{}, "", fmt.Errorf("hash the demo password: %w", err)
	}
	webConfig := filepath.Join(dir, "web-config.yml")
	content := fmt.Sprintf("tls_server_config:\n  cert_file: %q\n  key_file: %q\nbasic_auth_users:\n  demo: %q\n", cert, key, hash)
	if err := os.WriteFile(webConfig, []byte(content), 0o600); err != nil {
		return exporterproc.Access{}, "", err
	}
	passwordFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		return exporterproc.Access{}, "", err
	}
	return exporterproc.Access{WebConfigFile: webConfig, CAFile: ca, Username: "demo", Password: password}, passwordFile, nil
}

// runCheck runs check_kube_spread and prints its output and exit code.
func runCheck(ctx context.Context, say func(string, ...any), binary string, args ...string) {
	shown := args
	if len(args) > 0 && strings.HasPrefix(args[0], "--url=") {
		shown = args[1:]
		for len(shown) > 0 && strings.HasPrefix(shown[0], "--") {
			shown = shown[1:] // the access flags: the same every time
		}
	}
	say("   $ check_kube_spread %s", strings.Join(shown, " "))
	out, err := exec.CommandContext(ctx, binary, args...).Output()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		say("   %s", line)
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}
	say("   exit code %d", code)
}

// waitForPage polls Prometheus until the critical alert fires for mathoid.
func waitForPage(ctx context.Context, say func(string, ...any), prometheus *promserver.Server, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		alerts, err := prometheus.Alerts(ctx)
		if err != nil {
			return err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == spread.AlertNoReplicaSurvivesMaintenance && a.Labels["namespace"] == replay.Namespace && a.State == "firing" {
				say("   FIRING %s (severity %s), %s after the cordon", a.Labels["alertname"], a.Labels["severity"], time.Since(since).Round(time.Second))
				say("   summary: %s", a.Annotations["summary"])
				say("   description: %s", a.Annotations["description"])
				say("   runbook: %s", a.Annotations["runbook_url"])
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not fire for mathoid within 3 minutes", spread.AlertNoReplicaSurvivesMaintenance)
		case <-time.After(time.Second):
		}
	}
}

// preflight asks the exporter what the parallel reimage would do, as a
// reimage script should before it acts.
func preflight(ctx context.Context, say func(string, ...any), exporter *exporterproc.Exporter) error {
	for _, nodes := range [][]string{{"kubernetes2001", "kubernetes2002"}, {"kubernetes2001", "kubernetes2003"}} {
		query := "node=" + strings.Join(nodes, "&node=")
		say("   GET %s?%s", whatif.PathWhatIf, query)
		status, body, err := exporter.Get(ctx, whatif.PathWhatIf+"?"+query)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("what-if %s: status %d, err %v: %s", query, status, err, body)
		}
		var answer whatif.Answer
		if err := json.Unmarshal([]byte(body), &answer); err != nil {
			return fmt.Errorf("what-if %s: %w", query, err)
		}
		say("   -> verdict %s", answer.Verdict)
		for _, s := range answer.Services {
			if s.Blocking {
				say("      %s/%s/%s: %d replicas on %d nodes now, %d on %d after: %s",
					s.Namespace, s.Kind, s.Name, s.Now.Replicas, s.Now.Nodes, s.After.Replicas, s.After.Nodes, s.Verdict)
			}
		}
	}
	say("   A guard in the reimage script would have stopped the first batch (no replica left) and let the")
	say("   second through with a warning (mathoid single-homed on kubernetes2002).")
	return nil
}

// show waits until the exporter's figures for mathoid satisfy settled (the
// change has travelled through the watch), prints them, and returns the
// worst verdict.
func show(ctx context.Context, out io.Writer, exporter *exporterproc.Exporter, settled func(spread.Figures) bool) (spread.Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		metrics, err := exporter.Scrape(ctx)
		if err != nil {
			return "", err
		}
		figures := []spread.Figures{mathoidFigures(metrics, spread.KindDeployment), mathoidFigures(metrics, spread.KindService)}
		if settled(figures[0]) && settled(figures[1]) {
			return printFigures(out, figures), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the exporter did not show the change within a minute")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printFigures(out io.Writer, figures []spread.Figures) spread.Verdict {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "   kind\tready\tschedulable\tnodes\tschedulable nodes\tconcentration\tmin nodes\tverdict")
	worst := spread.VerdictOK
	for _, f := range figures {
		verdict := f.Verdict()
		if verdict.Worse(worst) {
			worst = verdict
		}
		fmt.Fprintf(w, "   %s\t%d\t%d\t%d\t%d\t%.2f\t%d\t%s\n", f.Service.Kind, f.ReplicasReady, f.ReplicasSchedulable,
			f.Nodes, f.SchedulableNodes, f.ConcentrationRatio, f.MinNodes, verdict)
	}
	w.Flush()
	return worst
}

// mathoidFigures reads mathoid's figures of one kind back from /metrics.
func mathoidFigures(metrics map[string]*dto.MetricFamily, kind spread.Kind) spread.Figures {
	labels := map[string]string{"namespace": replay.Namespace, "kind": string(kind), "name": replay.Name}
	value := func(name string) float64 {
		v, _ := exporterproc.Value(metrics, "kube_spread_"+name, labels)
		return v
	}
	return spread.Figures{
		Service:             &spread.Service{Namespace: replay.Namespace, Kind: kind, Name: replay.Name},
		ReplicasReady:       int(value("replicas_ready")),
		ReplicasSchedulable: int(value("replicas_schedulable")),
		Nodes:               int(value("nodes")),
		SchedulableNodes:    int(value("schedulable_nodes")),
		ConcentrationRatio:  value("node_concentration_ratio"),
		MinNodes:            int(value("min_nodes")),
	}
}
