// Package harness holds, in its sub-packages, the test and demo harness:
// the real control plane (controlplane), the exporter, Prometheus and other
// child processes (exporterproc, promserver, childproc), the mathoid replay
// (replay), the checkout's root (repo), Helm on the chart (helm) and the
// promtool tests rewritten for other labels (ruletest). None of it ships in a product
// binary; the packages that do are internal/check and internal/nagios.
package harness
