// Package controlplane runs a real Kubernetes control plane on the loopback
// interface, for the integration tests and the demo.
//
// Start launches etcd, kube-apiserver (RBAC on, TLS with a throw-away CA),
// kube-controller-manager, kube-scheduler and kwok as child processes in a
// working directory, waits until the cluster accepts pods, and returns an
// admin *rest.Config plus the path of an admin kubeconfig. kwok simulates the
// kubelets: every Node created in the cluster is managed by it, its pods are
// scheduled by the real scheduler, marked Running and Ready by kwok, and
// listed in EndpointSlices by the real controller-manager. Nothing is pulled
// or run, so a Node costs next to nothing.
//
// Options.APIServerOnly starts etcd and kube-apiserver alone, for the scale
// harness, which writes every object and status itself; Options.ExtraArgs
// adds flags to a component's command line; Options.ValidatingWebhooks
// configures the API server with admission webhooks on loopback, trusted
// through the control plane's CA (IssueServingCert issues their
// certificates). RunTestsWith starts a package's control plane with
// options.
//
// The binaries are built from pinned Go modules by `make tools`
// (tools/build-all.sh) and found in <repo>/.cache/bin, $KSE_TOOLS_BIN, or
// Options.BinDir.
//
// Every child runs in a process group of its own and gets SIGKILL when the
// Go process dies (Pdeathsig), so a panicking or killed test binary leaves no
// process behind; Stop terminates the groups gracefully and RunTests also
// stops the control plane on SIGINT and SIGTERM.
//
// controller-runtime's envtest was considered and not used: it manages only
// etcd and kube-apiserver, while the exporter's tests need the controller
// manager (EndpointSlices, ReplicaSets), the scheduler (pod placement is what
// the exporter measures) and kwok (Ready pods on many Nodes) under one
// lifecycle, and it would pull controller-runtime into the product's go.mod.
package controlplane
