package chart

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/helm"
)

// schemaFailure starts every message of values.schema.json.
const schemaFailure = "values don't meet the specifications of the schema(s)"

// TestBadValuesFailWithTheSchemasMessage: helm template refuses values
// the exporter or Kubernetes would refuse later, or silently ignore, and
// says which value and why.
func TestBadValuesFailWithTheSchemasMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  string
		want string
	}{
		{"negative replica count", "replicas=-1", "at '/replicas': minimum: got -1, want 1"},
		{"no replica", "replicas=0", "at '/replicas': minimum: got 0, want 1"},
		{"unknown flag name", `flags.namespace\.include=team-a`, "at '/flags': additional properties 'namespace.include' not allowed"},
		{"flag the chart sets itself", `flags.web\.listen-address=:9100`, "at '/flags': additional properties 'web.listen-address' not allowed"},
		{"malformed maintenance selector", `flags.node\.maintenance-selector=maintenance in batch-3`, "at '/flags/node.maintenance-selector': 'maintenance in batch-3' does not match pattern"},
		{"selector with a trailing comma", `flags.node\.maintenance-selector=maintenance=batch-3\,`, "at '/flags/node.maintenance-selector': 'maintenance=batch-3,' does not match pattern"},
		{"min nodes below one", `flags.spread\.default-min-nodes=0`, "at '/flags/spread.default-min-nodes': minimum: got 0, want 1"},
		{"boolean flag given a string", `flags.collector\.node-replicas=off`, "at '/flags/collector.node-replicas': got string, want boolean"},
		{"unknown log level", `flags.log\.level=verbose`, "at '/flags/log.level': value must be one of"},
		{"taint key with a space", `flags.node\.maintenance-taint={example.org/main tenance}`, "at '/flags/node.maintenance-taint/0': 'example.org/main tenance' does not match pattern"},
		{"cluster label not a label name", "cluster.label=k8s-cluster", "at '/cluster/label': 'k8s-cluster' does not match pattern"},
		{"misspelt value", "replica=3", "additional properties 'replica' not allowed"},
		{"GOMEMLIMIT in env, which the memory limit sets", "env[0].name=GOMEMLIMIT,env[0].value=1GiB", "at '/env/0/name'"},
		{"environment variable without a name", "env[0].value=50", "at '/env/0': missing property 'name'"},
		{"client certificate without its key", "webConfig.probe.certFile=client.crt,webConfig.secretName=web", "at '/webConfig/probe/keyFile': minLength: got 0, want 1"},
		{"TLS without the Secret of the web configuration", "webConfig.tls=true", "at '/webConfig/secretName': minLength: got 0, want 1"},
		{"probe credentials without the Secret", "webConfig.probe.basicAuthUsername=prometheus,webConfig.probe.basicAuthPasswordFile=password", "at '/webConfig/secretName': minLength: got 0, want 1"},
		{"empty job selector", "prometheusRule.jobSelector=", "at '/prometheusRule/jobSelector': minLength: got 0, want 1"},
		{"unknown admission mode", "admission.enabled=true,admission.mode=block", "at '/admission/mode': value must be one of 'warn', 'deny'"},
		{"webhook timeout past the API server's 30 s", "admission.enabled=true,admission.timeoutSeconds=60", "at '/admission/timeoutSeconds': maximum: got 60, want 30"},
		{"webhook port out of range", "admission.enabled=true,admission.port=0", "at '/admission/port': minimum: got 0, want 1"},
		{"unknown certificate source", "admission.enabled=true,admission.certificate.source=vault", "at '/admission/certificate/source': value must be one of 'certManager', 'secret'"},
		{"own Secret without its CA", "admission.enabled=true,admission.certificate.source=secret", "at '/admission/certificate/caBundle': minLength: got 0, want 1"},
		{"CA bundle as PEM, not base64", "admission.enabled=true,admission.certificate.source=secret,admission.certificate.caBundle=-----BEGIN CERTIFICATE-----",
			"at '/admission/certificate/caBundle': '-----BEGIN CERTIFICATE-----' does not match pattern"},
		{"CA bundle that cert-manager would overwrite", "admission.enabled=true,admission.certificate.caBundle=LS0tLS1CRUdJTiBD", "at '/admission/certificate/caBundle': maxLength: got 16, want 0"},
		{"certificate Secret not a name", "admission.enabled=true,admission.certificate.secretName=Admission_TLS", "at '/admission/certificate/secretName': 'Admission_TLS' does not match pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm.Template(t.TempDir(), release, namespace, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded, want the schema to refuse it", tc.set)
			}
			if !strings.Contains(err.Error(), schemaFailure) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %s failed with\n%v\nwant the schema's message %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestBadValuesFailInTheTemplates: what the schema cannot say, because it
// compares two values, the templates refuse with a message of their own.
func TestBadValuesFailInTheTemplates(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  string
		want string
	}{
		{"a budget that allows no eviction", "podDisruptionBudget.minAvailable=2",
			"podDisruptionBudget.minAvailable 2 must be below replicas 2: a budget that allows no eviction blocks every drain"},
		{"no ServiceAccount to run as", "serviceAccount.create=false",
			"serviceAccount.name: name the ServiceAccount to run as when serviceAccount.create is false"},
		{"the webhook on the metrics port", "admission.enabled=true,admission.port=10217",
			"admission.port 10217 is service.port too: the webhook needs a listener of its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm.Template(t.TempDir(), release, namespace, "--set", tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %s: %v, want the message %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestFlagsRenderAsArguments: each kind of flag value becomes the
// argument the exporter takes, after the listen address the chart owns.
func TestFlagsRenderAsArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"defaults: the exporter's own", nil, []string{"--web.listen-address=:10217"}},
		{"the service port is the listen address", []string{"--set", "service.port=9999"}, []string{"--web.listen-address=:9999"}},
		{"string", []string{"--set", `flags.namespaces\.include=team-a|team-b`}, []string{"--web.listen-address=:10217", "--namespaces.include=team-a|team-b"}},
		{"selector with spaces and commas", []string{"--set-string", `flags.node\.maintenance-selector=maintenance in (batch-3\,batch-4)`},
			[]string{"--web.listen-address=:10217", "--node.maintenance-selector=maintenance in (batch-3,batch-4)"}},
		{"number", []string{"--set", `flags.spread\.default-min-nodes=3`}, []string{"--web.listen-address=:10217", "--spread.default-min-nodes=3"}},
		{"true", []string{"--set", `flags.web\.disable-exporter-metrics=true`}, []string{"--web.listen-address=:10217", "--web.disable-exporter-metrics"}},
		{"false", []string{"--set", `flags.collector\.node-replicas=false`}, []string{"--web.listen-address=:10217", "--no-collector.node-replicas"}},
		{"list", []string{"--set", `flags.topology\.key={topology.kubernetes.io/zone,example.org/rack}`},
			[]string{"--web.listen-address=:10217", "--topology.key=topology.kubernetes.io/zone", "--topology.key=example.org/rack"}},
		{"web configuration", []string{"--set", "webConfig.secretName=web"},
			[]string{"--web.listen-address=:10217", "--web.config.file=/etc/kube-spread-exporter/web-config.yml"}},
		{"admission webhook, warn mode: the exporter's default", []string{"--set", "admission.enabled=true", "--set", `flags.log\.level=debug`},
			[]string{"--web.listen-address=:10217", "--admission.listen-address=:10218",
				"--admission.web.config.file=/etc/kube-spread-exporter/admission/web-config.yml", "--log.level=debug"}},
		{"admission webhook, deny mode, another port", []string{"--set", "admission.enabled=true", "--set", "admission.mode=deny", "--set", "admission.port=8443"},
			[]string{"--web.listen-address=:10217", "--admission.listen-address=:8443",
				"--admission.web.config.file=/etc/kube-spread-exporter/admission/web-config.yml", "--admission.mode=deny"}},
		{"admission mode without the webhook: nothing", []string{"--set", "admission.mode=deny"}, []string{"--web.listen-address=:10217"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stringList(container(t, objects(t, render(t, tc.args...)))["args"])
			if !slices.Equal(got, tc.want) {
				t.Errorf("args %q, want %q", got, tc.want)
			}
		})
	}
}

// The exporter's flags the chart has no value for, and why.
var flagsNotInValues = map[string]string{
	"help":               "kingpin's",
	"version":            "kingpin's",
	"kubeconfig":         "the exporter uses the in-cluster configuration of its ServiceAccount",
	"web.systemd-socket": "no systemd in a pod",
	"web.listen-address": "the chart sets it from service.port",
	"web.config.file":    "the chart sets it from webConfig.secretName",
	// The admission webhook comes with its certificate, Service port and
	// ValidatingWebhookConfiguration: values of their own.
	"admission.listen-address":  "the chart sets it from admission.enabled and admission.port",
	"admission.web.config.file": "the chart sets it, and mounts the web configuration, from admission.enabled",
	"admission.mode":            "the chart sets it from admission.mode",
}

// TestEveryFlagHasAValue: every flag of `kube-spread-exporter --help` is a
// property of flags in values.schema.json or set by the chart, and the
// schema knows no flag the exporter does not have.
func TestEveryFlagHasAValue(t *testing.T) {
	binary := exporterproc.BuildForTest(t, "kube-spread-exporter")
	out, err := exec.Command(binary, "--help-long").CombinedOutput()
	if err != nil {
		t.Fatalf("kube-spread-exporter --help-long: %v\n%s", err, out)
	}
	// kingpin lists each flag as "--name" or "--[no-]name" in a column of
	// its own, after a short flag ("-h, ") or its width in spaces; the
	// descriptions are indented further.
	flagLine := regexp.MustCompile(`^  (?:-\w, |    )--(?:\[no-\])?([a-z0-9][a-z0-9.-]*)`)
	var exporterFlags []string
	scanner := bufio.NewScanner(strings.NewReader(string(out)))
	for scanner.Scan() {
		if m := flagLine.FindStringSubmatch(scanner.Text()); m != nil {
			exporterFlags = append(exporterFlags, m[1])
		}
	}
	if len(exporterFlags) < 10 {
		t.Fatalf("found only %q in the exporter's help:\n%s", exporterFlags, out)
	}

	flags := readSchema(t).Properties["flags"]
	if string(flags.AdditionalProperties) != "false" {
		t.Error("values.schema.json: flags must have additionalProperties: false, so that a misspelt flag fails")
	}
	for _, name := range exporterFlags {
		_, inValues := flags.Properties[name]
		why, notInValues := flagsNotInValues[name]
		switch {
		case inValues && notInValues:
			t.Errorf("--%s is in values.schema.json, and the chart sets it itself (%s)", name, why)
		case !inValues && !notInValues:
			t.Errorf("--%s of the exporter has no value in the chart: add it to flags in values.schema.json and values.yaml", name)
		}
	}
	for name := range flags.Properties {
		if !slices.Contains(exporterFlags, name) {
			t.Errorf("values.schema.json has flags.%s, which the exporter does not know", name)
		}
	}
	for name := range flagsNotInValues {
		if !slices.Contains(exporterFlags, name) {
			t.Errorf("flagsNotInValues has %s, which the exporter does not know", name)
		}
	}
}

// schemaNode is the part of a JSON schema the tests read.
type schemaNode struct {
	Properties           map[string]schemaNode `json:"properties"`
	AdditionalProperties json.RawMessage       `json:"additionalProperties"`
}

func readSchema(t *testing.T) schemaNode {
	t.Helper()
	data, err := os.ReadFile(chartFile(t, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaNode
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return schema
}
