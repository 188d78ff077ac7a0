package icinga

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

const icinga2Binary = "/usr/sbin/icinga2"

// validate runs `icinga2 daemon -C` on a configuration that includes the
// shipped command.conf and services.conf plus extra objects. Every
// directory icinga2 would touch is a temporary one, so it needs neither
// root, nor a running daemon, nor /etc/icinga2.
func validate(t *testing.T, extra string) (int, string) {
	t.Helper()
	requireTool(t, icinga2Binary)
	dir := t.TempDir()
	for _, sub := range []string{"cache", "data", "log", "spool", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	icingaDir, err := filepath.Abs(filepath.Join(repoRoot, "icinga"))
	if err != nil {
		t.Fatal(err)
	}
	// The constants and the ITL (for "dummy") are what a Debian
	// /etc/icinga2/icinga2.conf provides.
	config := fmt.Sprintf(`const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
const NodeName = "localhost"
const ZoneName = "localhost"
include <itl>
include %q
include %q
%s
`, filepath.Join(icingaDir, "command.conf"), filepath.Join(icingaDir, "services.conf"), extra)
	configFile := filepath.Join(dir, "icinga2.conf")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// icinga2 drops to RunAsUser (nagios) before it writes its cache;
	// the test's own user owns the temporary directories.
	self, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	group, err := user.LookupGroupId(self.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return runCommand(t, icinga2Binary, "daemon", "-C", "-c", configFile, "-DRunAsUser="+self.Username, "-DRunAsGroup="+group.Name,
		"-DConfigDir="+dir, "-DCacheDir="+dir+"/cache", "-DDataDir="+dir+"/data", "-DLogDir="+dir+"/log",
		"-DSpoolDir="+dir+"/spool", "-DInitRunDir="+dir+"/run", "-DPidPath="+dir+"/run/icinga2.pid")
}

// TestShippedConfigurationIsValid: the CheckCommand and the apply rules of
// icinga/ load, and the rules make the three services they promise for a
// host with one Kubernetes service in its dictionary.
func TestShippedConfigurationIsValid(t *testing.T) {
	const host = `object Host "k8s-codfw" {
  check_command = "dummy"
  vars.kube_spread_url = "https://kube-spread-exporter.codfw.example:10217/metrics"
  vars.kube_spread_services["mathoid"] = {
    kube_spread_namespace = "mathoid"
    kube_spread_kind = "Deployment"
    kube_spread_name = "mathoid"
  }
}
object Host "no-kubernetes" {
  check_command = "dummy"
}
`
	code, out := validate(t, host)
	if code != 0 {
		t.Fatalf("icinga2 daemon -C: exit %d\n%s", code, out)
	}
	for _, want := range []string{"Instantiated 3 Services.", "Finished validating the configuration file(s)."} {
		if !strings.Contains(out, want) {
			t.Errorf("icinga2 daemon -C output lacks %q:\n%s", want, out)
		}
	}
}

// TestValidationCatchesErrors proves the validation above can fail: a host
// whose check command does not exist is rejected.
func TestValidationCatchesErrors(t *testing.T) {
	code, out := validate(t, `object Host "h" { check_command = "kube_spread_typo" }`)
	if code == 0 || !strings.Contains(out, "kube_spread_typo") {
		t.Errorf("icinga2 daemon -C accepted an unknown check command: exit %d\n%s", code, out)
	}
}
