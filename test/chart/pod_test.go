package chart

import (
	"reflect"
	"slices"
	"testing"
)

// TestProbes: plain HTTP and TLS alone keep the kubelet's httpGet probes;
// a web configuration that wants a client certificate or a password gets
// a TCP liveness probe and check_kube_spread as the readiness probe, with
// the Secret's files, as docs/deploy.md does it by hand.
func TestProbes(t *testing.T) {
	httpGet := func(path, scheme string) any {
		probe := map[string]any{"path": path, "port": "http-metrics"}
		if scheme != "" {
			probe["scheme"] = scheme
		}
		return probe
	}
	for _, tc := range []struct {
		name                string
		set                 []string
		liveness, readiness string // the probe's handler
		want                map[string]any
		command             []string
	}{
		{name: "plain HTTP", liveness: "httpGet", readiness: "httpGet",
			want: map[string]any{"livenessProbe": httpGet("/healthz", ""), "readinessProbe": httpGet("/readyz", "")}},
		{name: "TLS without client authentication", set: []string{"webConfig.secretName=web", "webConfig.tls=true"}, liveness: "httpGet", readiness: "httpGet",
			want: map[string]any{"livenessProbe": httpGet("/healthz", "HTTPS"), "readinessProbe": httpGet("/readyz", "HTTPS")}},
		{name: "client certificate and basic auth", liveness: "tcpSocket", readiness: "exec",
			set: []string{"webConfig.secretName=web", "webConfig.tls=true", "webConfig.probe.caFile=ca.crt",
				"webConfig.probe.certFile=client.crt", "webConfig.probe.keyFile=client.key",
				"webConfig.probe.basicAuthUsername=prometheus", "webConfig.probe.basicAuthPasswordFile=password",
				`flags.web\.telemetry-path=/kube-spread/metrics`},
			command: []string{"/bin/check_kube_spread", "--url=https://localhost:10217/kube-spread/metrics",
				"--tls.ca-file=/etc/kube-spread-exporter/ca.crt",
				"--tls.cert-file=/etc/kube-spread-exporter/client.crt", "--tls.key-file=/etc/kube-spread-exporter/client.key",
				"--basic-auth.username=prometheus", "--basic-auth.password-file=/etc/kube-spread-exporter/password", "health", "--critical-not-synced=0", "--warning-not-synced=", "--warning-stale=", "--warning-list-watch-errors-for="}},
		{name: "basic auth over HTTP", liveness: "tcpSocket", readiness: "exec",
			set: []string{"webConfig.secretName=web", "webConfig.probe.basicAuthUsername=prometheus", "webConfig.probe.basicAuthPasswordFile=password"},
			command: []string{"/bin/check_kube_spread", "--url=http://localhost:10217/metrics",
				"--basic-auth.username=prometheus", "--basic-auth.password-file=/etc/kube-spread-exporter/password", "health", "--critical-not-synced=0", "--warning-not-synced=", "--warning-stale=", "--warning-list-watch-errors-for="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			c := container(t, objects(t, render(t, args...)))
			for probe, handler := range map[string]string{"livenessProbe": tc.liveness, "readinessProbe": tc.readiness} {
				if get(c, probe, handler) == nil {
					t.Errorf("%s: %v, want a %s probe", probe, c[probe], handler)
				}
				if want, ok := tc.want[probe]; ok && !reflect.DeepEqual(get(c, probe, handler), want) {
					t.Errorf("%s.%s = %v, want %v", probe, handler, get(c, probe, handler), want)
				}
			}
			if tc.command != nil {
				if got := stringList(get(c, "readinessProbe", "exec", "command")); !slices.Equal(got, tc.command) {
					t.Errorf("readiness command %q, want %q", got, tc.command)
				}
			}
			if len(tc.set) > 0 {
				if got := get(c, "volumeMounts", 0, "mountPath"); got != "/etc/kube-spread-exporter" {
					t.Errorf("web configuration mounted at %v, want /etc/kube-spread-exporter", got)
				}
			}
		})
	}
}

// TestGoMemLimitFollowsTheMemoryLimit: GOMEMLIMIT is the container's
// memory limit when it has one, and unset without one (it would be the
// node's memory).
func TestGoMemLimitFollowsTheMemoryLimit(t *testing.T) {
	withLimit := container(t, objects(t, render(t)))
	if got := get(withLimit, "env", 0, "valueFrom", "resourceFieldRef", "resource"); get(withLimit, "env", 0, "name") != "GOMEMLIMIT" || got != "limits.memory" {
		t.Errorf("env %v, want GOMEMLIMIT from limits.memory", withLimit["env"])
	}
	withoutLimit := container(t, objects(t, render(t, "--set", "resources.limits=null")))
	if env, ok := withoutLimit["env"]; ok {
		t.Errorf("env %v without a memory limit, want none", env)
	}
}

// TestEnv: the env value adds to the container's environment, beside
// GOMEMLIMIT or alone without a memory limit (the schema refuses
// GOMEMLIMIT in it: TestBadValuesFailWithTheSchemasMessage).
func TestEnv(t *testing.T) {
	gogc := map[string]any{"name": "GOGC", "value": "50"}
	withLimit := container(t, objects(t, render(t, "--set", "env[0].name=GOGC", "--set-string", "env[0].value=50")))
	if env, _ := withLimit["env"].([]any); len(env) != 2 || get(withLimit, "env", 0, "name") != "GOMEMLIMIT" || !reflect.DeepEqual(env[1], gogc) {
		t.Errorf("env %v, want GOMEMLIMIT then GOGC=50", withLimit["env"])
	}
	withoutLimit := container(t, objects(t, render(t, "--set", "resources.limits=null", "--set", "env[0].name=GOGC", "--set-string", "env[0].value=50")))
	if env, _ := withoutLimit["env"].([]any); len(env) != 1 || !reflect.DeepEqual(env[0], gogc) {
		t.Errorf("env %v without a memory limit, want GOGC=50 alone", withoutLimit["env"])
	}
}

// TestServiceMonitor: the endpoint follows the exporter's settings (path,
// scheme), keeps honorLabels, and names the cluster when asked to.
func TestServiceMonitor(t *testing.T) {
	manifests := render(t, "--set", "serviceMonitor.enabled=true", "--set", "webConfig.secretName=web", "--set", "webConfig.tls=true",
		"--set", `flags.web\.telemetry-path=/kube-spread/metrics`, "--set", "cluster.label=k8s_cluster", "--set", "cluster.name=codfw")
	endpoint := get(one(t, objects(t, manifests), "ServiceMonitor"), "spec", "endpoints", 0)
	want := map[string]any{
		"port":        "http-metrics",
		"path":        "/kube-spread/metrics",
		"scheme":      "https",
		"interval":    "30s",
		"honorLabels": true,
		"relabelings": []any{map[string]any{"action": "replace", "targetLabel": "k8s_cluster", "replacement": "codfw"}},
	}
	if !reflect.DeepEqual(endpoint, want) {
		t.Errorf("endpoint %v, want %v", endpoint, want)
	}
}
