package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunRejectsBadInput pins the exit code and the one-line error of each
// kind of bad flag or configuration.
func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	badWebConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(badWebConfig, []byte("tls_server_config:\n  cert_file: [not, a, path]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noTLS := filepath.Join(dir, "no-tls.yml")
	if err := os.WriteFile(noTLS, []byte("http_server_config:\n  http2: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missingCert := filepath.Join(dir, "missing-cert.yml")
	if err := os.WriteFile(missingCert, []byte("tls_server_config:\n  cert_file: "+filepath.Join(dir, "nope.crt")+"\n  key_file: "+filepath.Join(dir, "nope.key")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(unreadable, []byte("this: is: not: yaml: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown flag", []string{"--bogus"}, "unknown long flag '--bogus'"},
		{"invalid include regexp", []string{"--namespaces.include=("}, `--namespaces.include "(": error parsing regexp`},
		{"invalid exclude regexp", []string{"--namespaces.exclude=[a-"}, `--namespaces.exclude "[a-": error parsing regexp`},
		{"invalid maintenance selector", []string{"--node.maintenance-selector=maintenance in batch"}, `--node.maintenance-selector "maintenance in batch":`},
		{"min nodes below one", []string{"--spread.default-min-nodes=0"}, `--spread.default-min-nodes must be a whole number of at least 1, got "0"`},
		{"min nodes not a number", []string{"--spread.default-min-nodes=two"}, `--spread.default-min-nodes must be a whole number of at least 1, got "two"`},
		{"missing web config", []string{"--web.config.file=" + filepath.Join(dir, "missing.yml")}, "--web.config.file " + filepath.Join(dir, "missing.yml")},
		{"malformed web config", []string{"--web.config.file=" + badWebConfig}, "--web.config.file " + badWebConfig},
		{"web config naming a missing certificate", []string{"--web.config.file=" + missingCert}, "--web.config.file " + missingCert + ": failed to read cert_file"},
		{"bad log format", []string{"--log.format=xml"}, "unrecognized log format xml"},
		{"missing kubeconfig", []string{"--kubeconfig=" + filepath.Join(dir, "nope")}, "--kubeconfig " + filepath.Join(dir, "nope")},
		{"malformed kubeconfig", []string{"--kubeconfig=" + unreadable}, "--kubeconfig " + unreadable},
		{"bad log level", []string{"--log.level=loud"}, "unrecognized log level"},
		{"webhook without web config", []string{"--admission.listen-address=:10218"}, "--admission.listen-address needs --admission.web.config.file with tls_server_config"},
		{"webhook web config without TLS", []string{"--admission.listen-address=:10218", "--admission.web.config.file=" + noTLS}, "--admission.web.config.file " + noTLS + " configures no TLS"},
		{"webhook web config malformed", []string{"--admission.listen-address=:10218", "--admission.web.config.file=" + badWebConfig}, "--admission.web.config.file " + badWebConfig},
		{"webhook web config missing", []string{"--admission.listen-address=:10218", "--admission.web.config.file=" + filepath.Join(dir, "missing.yml")}, "--admission.web.config.file " + filepath.Join(dir, "missing.yml")},
		{"webhook web config without listener", []string{"--admission.web.config.file=" + noTLS}, "no --admission.listen-address"},
		{"metrics path among the profiles", []string{"--web.enable-pprof", "--web.telemetry-path=/debug/pprof/heap"}, `--web.telemetry-path "/debug/pprof/heap" is under /debug/pprof/`},
		{"metrics path on the profiles' index", []string{"--web.enable-pprof", "--web.telemetry-path=/debug/pprof"}, `--web.telemetry-path "/debug/pprof" is under /debug/pprof/`},
		{"metrics path on the readiness probe", []string{"--web.telemetry-path=/readyz"}, `--web.telemetry-path "/readyz" is the exporter's own /readyz`},
		{"metrics path among the APIs", []string{"--web.telemetry-path=/api/v1/services"}, `--web.telemetry-path "/api/v1/services" is the exporter's own JSON APIs' /api/`},
		{"unknown webhook mode", []string{"--admission.mode=block"}, "enum value must be one of warn,deny, got 'block'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantErr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines > 0 {
				t.Errorf("error is %d lines, want one: %q", lines+1, stderr.String())
			}
		})
	}
}

func TestRunVersionAndHelpExitZero(t *testing.T) {
	for _, arg := range []string{"--version", "--help"} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), []string{arg}, &stdout, &stderr); code != exitOK {
			t.Errorf("%s: exit code %d, stderr %q", arg, code, stderr.String())
		}
		if !strings.Contains(stdout.String()+stderr.String(), "kube-spread-exporter") {
			t.Errorf("%s printed nothing about the program: %q", arg, stdout.String())
		}
	}
}

// TestReadmeListsEveryFlag: the flag table of README.md is the flags'
// documentation, so it names every flag of --help and no other.
func TestReadmeListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, found := strings.Cut(string(readme), "| Flag | Default | Meaning |")
	if !found {
		t.Fatal("README.md has no table headed | Flag | Default | Meaning |")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	documented := map[string]bool{}
	for _, name := range regexp.MustCompile("`--(?:\\[no-\\])?([a-z0-9.-]+)`").FindAllStringSubmatch(table, -1) {
		documented[name[1]] = true
	}
	app, _ := newApp(io.Discard, io.Discard)
	flags := map[string]bool{}
	for _, f := range app.Model().Flags {
		if f.Hidden || strings.HasPrefix(f.Name, "help") || strings.HasPrefix(f.Name, "completion-") {
			continue
		}
		flags[f.Name] = true
		if !documented[f.Name] {
			t.Errorf("--%s is a flag, but README.md's flag table does not list it", f.Name)
		}
	}
	if len(flags) < 20 {
		t.Errorf("only %d flags found in the application: %v", len(flags), flags)
	}
	for name := range documented {
		if !flags[name] {
			t.Errorf("README.md's flag table lists --%s, which is no flag", name)
		}
	}
}
