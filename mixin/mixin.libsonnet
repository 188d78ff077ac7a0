// The kube-spread-exporter monitoring mixin: its alerts (prometheusAlerts)
// and Grafana dashboards (grafanaDashboards), with the settings of
// config.libsonnet in _config. With the default _config it yields exactly
// rules/kube-spread.rules.yml and dashboards/*.json of this repository,
// from their copies in generated/ (test/mixin checks both).
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
