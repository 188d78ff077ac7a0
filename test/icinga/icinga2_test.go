package icinga

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	icinga2Binary = "/usr/sbin/icinga2"
	// debianConfig is what the icinga2 package installs: the test copies
	// it and adds the shipped files as docs/check.md says.
	debianConfig = "/etc/icinga2"
	nodeName     = "kube-spread-test"
	apiPassword  = "kube-spread-test"
)

// shippedFiles are the files of icinga/ that docs/check.md installs into
// conf.d/.
var shippedFiles = []string{"kube-spread-commands.conf", "kube-spread-templates.conf", "kube-spread-services.conf"}

// icinga is an Icinga 2 configuration installed in a throw-away directory:
// Debian's /etc/icinga2 with the shipped files in its conf.d/, the
// checker and api features, the built check as PluginDir's.
type icinga struct {
	dir, configFile string
	apiPort         int
}

// install copies Debian's configuration, adds the shipped files to conf.d/
// (as docs/check.md says) and hosts (the objects an admin writes), and
// enables only the checker and the API: no notification mails.
func install(t *testing.T, hosts string) *icinga {
	t.Helper()
	requireTool(t, icinga2Binary)
	requireTool(t, filepath.Join(debianConfig, "icinga2.conf"))
	dir := t.TempDir()
	config := filepath.Join(dir, "etc")
	if err := os.CopyFS(config, os.DirFS(debianConfig)); err != nil {
		t.Fatalf("copy %s: %v", debianConfig, err)
	}
	for _, sub := range []string{"cache", "data/certs", "log", "spool", "run", "plugins"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The check where Debian's PluginDir would hold it.
	plugin, err := os.ReadFile(checkPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugins", "check_kube_spread"), plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range shippedFiles {
		content, err := os.ReadFile(filepath.Join(repoRoot, "icinga", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(config, "conf.d", name)); err == nil {
			t.Fatalf("%s exists in Debian's conf.d: installing ours would overwrite it", name)
		}
		writeFile(t, filepath.Join(config, "conf.d", name), string(content))
	}
	port := freePort(t)
	writeFile(t, filepath.Join(config, "constants.conf"), fmt.Sprintf(`const PluginDir = %q
const ManubulonPluginDir = PluginDir
const PluginContribDir = PluginDir
const NodeName = %q
const ZoneName = NodeName
const TicketSalt = ""
`, filepath.Join(dir, "plugins"), nodeName))
	features := filepath.Join(config, "features-enabled")
	if err := os.RemoveAll(features); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(features, "checker.conf"), "object CheckerComponent \"checker\" { }\n")
	writeFile(t, filepath.Join(features, "api.conf"), fmt.Sprintf("object ApiListener \"api\" {\n  bind_host = \"127.0.0.1\"\n  bind_port = %d\n}\n", port))
	writeFile(t, filepath.Join(config, "conf.d", "test-api-user.conf"), fmt.Sprintf("object ApiUser \"test\" {\n  password = %q\n  permissions = [ \"*\" ]\n}\n", apiPassword))
	writeFile(t, filepath.Join(config, "conf.d", "test-hosts.conf"), hosts)
	writeCerts(t, filepath.Join(dir, "data", "certs"))
	return &icinga{dir: dir, configFile: filepath.Join(config, "icinga2.conf"), apiPort: port}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// args are the icinga2 arguments that keep every path in the directory:
// no root-owned /var, no systemd.
func (i *icinga) args(command ...string) []string {
	return i.defines(append(command, "-c", i.configFile)...)
}

// defines are the -D arguments: every path in the directory.
func (i *icinga) defines(command ...string) []string {
	return append(command, "-DRunAsUser="+currentUser(), "-DRunAsGroup="+currentGroup(),
		"-DConfigDir="+filepath.Dir(i.configFile), "-DCacheDir="+i.dir+"/cache", "-DDataDir="+i.dir+"/data", "-DLogDir="+i.dir+"/log",
		"-DSpoolDir="+i.dir+"/spool", "-DInitRunDir="+i.dir+"/run", "-DPidPath="+i.dir+"/run/icinga2.pid")
}

// validate runs `icinga2 daemon -C`, which also writes the objects that
// `icinga2 object list` reads.
func (i *icinga) validate(t *testing.T) (int, string) {
	t.Helper()
	return runCommand(t, icinga2Binary, i.args("daemon", "-C")...)
}

// start runs `icinga2 daemon` in the foreground and waits until its API
// answers; it stops with the test.
func (i *icinga) start(t *testing.T) *icingaAPI {
	t.Helper()
	var log lockedBuffer
	cmd := exec.Command(icinga2Binary, i.args("daemon")...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start icinga2 daemon: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("icinga2 log:\n%s", log.String())
		}
	})
	api := &icingaAPI{base: fmt.Sprintf("https://127.0.0.1:%d", i.apiPort), client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the test's own throw-away CA
	}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := api.do(http.MethodGet, "/v1/status/IcingaApplication", nil, nil); err == nil {
			return api
		}
		select {
		case err := <-exited:
			t.Fatalf("icinga2 daemon exited: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("icinga2 API on port %d not answering within 60s\n%s", i.apiPort, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// icingaAPI is the daemon's REST API.
type icingaAPI struct {
	base   string
	client *http.Client
}

func (a *icingaAPI) do(method, path string, body, answer any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.base+path, reader)
	if err != nil {
		return err
	}
	req.SetBasicAuth("test", apiPassword)
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if answer != nil {
		return json.Unmarshal(data, answer)
	}
	return nil
}

// checkResult is a service's state and its last check result, as the API
// returns them.
type checkResult struct {
	State         int
	Output        string
	Perfdata      map[string]perfValue
	Reachable     bool
	ExecutionEnd  float64
	rawPerfdata   []string
	hasCheckEvent bool
}

type perfValue struct {
	Value                     float64
	UOM                       string
	Warn, Crit, Min, Max      string
	ValueText, Label, RawItem string
}

// services lists the names of a host's services.
func (a *icingaAPI) services(t *testing.T, host string) []string {
	t.Helper()
	var answer struct {
		Results []struct {
			Attrs struct {
				Name string `json:"name"`
			} `json:"attrs"`
		} `json:"results"`
	}
	query := url.Values{"filter": {fmt.Sprintf("host.name==%q", host)}, "attrs": {"name"}}
	if err := a.do(http.MethodGet, "/v1/objects/services?"+query.Encode(), nil, &answer); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range answer.Results {
		names = append(names, r.Attrs.Name)
	}
	return names
}

// force runs the service's check now, through the API, and returns the
// result it produced.
func (a *icingaAPI) force(t *testing.T, host, service string) checkResult {
	t.Helper()
	before := a.result(t, host, service).ExecutionEnd
	body := map[string]any{"type": "Service", "filter": fmt.Sprintf("host.name==%q && service.name==%q", host, service), "force": true}
	if err := a.do(http.MethodPost, "/v1/actions/reschedule-check", body, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := a.result(t, host, service)
		if r.hasCheckEvent && r.ExecutionEnd > before {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s!%s: no check result within 30s of forcing one", host, service)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *icingaAPI) result(t *testing.T, host, service string) checkResult {
	t.Helper()
	var answer struct {
		Results []struct {
			Attrs struct {
				State           float64 `json:"state"`
				LastReachable   bool    `json:"last_reachable"`
				LastCheckResult *struct {
					ExitStatus      float64  `json:"exit_status"`
					Output          string   `json:"output"`
					PerformanceData []string `json:"performance_data"`
					ExecutionEnd    float64  `json:"execution_end"`
				} `json:"last_check_result"`
			} `json:"attrs"`
		} `json:"results"`
	}
	path := "/v1/objects/services/" + url.PathEscape(host+"!"+service) + "?attrs=state&attrs=last_check_result&attrs=last_reachable"
	if err := a.do(http.MethodGet, path, nil, &answer); err != nil {
		t.Fatal(err)
	}
	if len(answer.Results) != 1 {
		t.Fatalf("%s!%s: %d objects", host, service, len(answer.Results))
	}
	attrs := answer.Results[0].Attrs
	r := checkResult{State: int(attrs.State), Reachable: attrs.LastReachable}
	if cr := attrs.LastCheckResult; cr != nil {
		r.hasCheckEvent = true
		r.Output, r.ExecutionEnd, r.rawPerfdata = cr.Output, cr.ExecutionEnd, cr.PerformanceData
		r.Perfdata = make(map[string]perfValue)
		for _, item := range cr.PerformanceData {
			p, err := parsePerfdata(item)
			if err != nil {
				t.Fatalf("%s!%s: perfdata %q: %v", host, service, item, err)
			}
			r.Perfdata[p.Label] = p
		}
	}
	return r
}

// parsePerfdata parses one item, 'label'=value[UOM];warn;crit;min;max, as
// a graphing add-on would: a value that does not parse is an error.
func parsePerfdata(item string) (perfValue, error) {
	label, rest, ok := strings.Cut(item, "=")
	if !ok {
		return perfValue{}, fmt.Errorf("no '='")
	}
	p := perfValue{Label: strings.Trim(label, "'"), RawItem: item}
	fields := strings.Split(rest, ";")
	p.ValueText = fields[0]
	number := strings.TrimRight(fields[0], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%")
	p.UOM = fields[0][len(number):]
	v, err := strconv.ParseFloat(number, 64)
	if err != nil {
		return perfValue{}, err
	}
	p.Value = v
	for i, dst := range []*string{&p.Warn, &p.Crit, &p.Min, &p.Max} {
		if i+1 < len(fields) {
			*dst = fields[i+1]
		}
	}
	return p, nil
}

// writeCerts writes the API's certificate, key and CA where icinga2 looks
// for them: DataDir/certs/<NodeName>.crt and .key, and ca.crt.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: nodeName}, DNSNames: []string{nodeName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeFile(t, filepath.Join(dir, nodeName+".crt"), string(certPEM))
	writeFile(t, filepath.Join(dir, "ca.crt"), string(certPEM))
	writeFile(t, filepath.Join(dir, nodeName+".key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
}

// debianServices are services Debian's conf.d/services.conf applies to
// the host NodeName: installing ours must leave them.
var debianServices = []string{"disk", "load", "ssh", "swap", "users"}

// TestShippedConfigurationIsValid: the shipped files load beside Debian's
// whole configuration, and make, for a host with a URL and one Kubernetes
// service, the three services they promise, none for a host without a URL,
// and leave Debian's own services in place.
func TestShippedConfigurationIsValid(t *testing.T) {
	i := install(t, `object Host "k8s-codfw" {
  check_command = "dummy"
  vars.kube_spread_url = "https://kube-spread-exporter.codfw.example:10217/metrics"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid", kube_spread_timeout = "30s" }
}
object Host "no-kubernetes" {
  check_command = "dummy"
  address = "127.0.0.1"
  vars.kube_spread_k8s_services["mathoid"] = { k8s_namespace = "mathoid", k8s_kind = "Deployment", k8s_name = "mathoid" }
}
`)
	code, out := i.validate(t)
	if code != 0 || !strings.Contains(out, "Finished validating the configuration file(s).") {
		t.Fatalf("icinga2 daemon -C: exit %d\n%s", code, out)
	}
	code, list := runCommand(t, icinga2Binary, i.defines("object", "list", "--type", "Service")...)
	if code != 0 {
		t.Fatalf("icinga2 object list: exit %d\n%s", code, list)
	}
	for _, want := range []string{"k8s-codfw!kube-spread-all", "k8s-codfw!kube-spread-health", "k8s-codfw!kube-spread-k8s-mathoid"} {
		if !strings.Contains(list, "Object '"+want+"'") {
			t.Errorf("no service %s", want)
		}
	}
	// An entry's other keys are its service's variables.
	code, mathoid := runCommand(t, icinga2Binary, i.defines("object", "list", "--type", "Service", "--name", "k8s-codfw!kube-spread-k8s-mathoid")...)
	if code != 0 || !strings.Contains(mathoid, `kube_spread_timeout = "30s"`) || !strings.Contains(mathoid, `kube_spread_service_name = "mathoid"`) {
		t.Errorf("the service of the mathoid entry lacks its variables (exit %d):\n%s", code, mathoid)
	}
	// Debian's ping4 applies to it (it has an address); ours must not.
	if strings.Contains(list, "no-kubernetes!kube-spread") {
		t.Errorf("a host without kube_spread_url got services:\n%s", grepLines(list, "no-kubernetes!kube-spread"))
	}
	code, dependencies := runCommand(t, icinga2Binary, i.defines("object", "list", "--type", "Dependency")...)
	if code != 0 {
		t.Fatalf("icinga2 object list: exit %d\n%s", code, dependencies)
	}
	for _, want := range []string{"k8s-codfw!kube-spread-all!kube-spread-health", "k8s-codfw!kube-spread-k8s-mathoid!kube-spread-health"} {
		if !strings.Contains(dependencies, "Object '"+want+"'") {
			t.Errorf("no dependency %s:\n%s", want, grepLines(dependencies, "Object '"))
		}
	}
	if strings.Contains(dependencies, "kube-spread-health!kube-spread-health") {
		t.Error("the health check depends on itself")
	}
	for _, name := range debianServices {
		if !strings.Contains(list, "Object '"+nodeName+"!"+name+"'") {
			t.Errorf("Debian's service %s of the host %s is gone", name, nodeName)
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestValidationCatchesErrors proves the validation above can fail: a host
// whose check command does not exist is rejected.
func TestValidationCatchesErrors(t *testing.T) {
	code, out := install(t, `object Host "h" { check_command = "kube_spread_typo" }`).validate(t)
	if code == 0 || !strings.Contains(out, "kube_spread_typo") {
		t.Errorf("icinga2 daemon -C accepted an unknown check command: exit %d\n%s", code, out)
	}
}

// currentUser and currentGroup are what icinga2 runs as: the test's own
// user owns the temporary directories.
func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return "root"
	}
	return u.Username
}

func currentGroup() string {
	u, err := user.Current()
	if err != nil {
		return "root"
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "root"
	}
	return g.Name
}
