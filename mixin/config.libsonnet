// The settings of the mixin. The defaults are those of the shipped rules
// and dashboards; override them with
//
//   (import 'mixin.libsonnet') + { _config+:: { jobSelector: 'job="kse"' } }
local rules = import 'generated/kube-spread.rules.json';
local alerts = [rule for group in rules.groups for rule in group.rules if std.objectHas(rule, 'alert')];
local alertNames = std.set([alert.alert for alert in alerts]);

local isLabelName(s) =
  local first = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_';
  std.isString(s) && std.length(s) > 0 && std.member(first, s[0])
  && std.all([std.member(first + '0123456789', ch) for ch in std.stringChars(s)]);

{
  _config+:: {
    // Settings that would silently do nothing, or break a rule or a
    // dashboard, stop the evaluation instead.
    local unknown(settings) = std.setDiff(std.set(std.objectFields(settings)), alertNames),
    assert std.isString(self.jobSelector) && std.length(self.jobSelector) > 0 : 'kube-spread mixin: _config.jobSelector is empty',
    assert isLabelName(self.clusterLabel) : 'kube-spread mixin: _config.clusterLabel %s is not a label name' % std.manifestJson(self.clusterLabel),
    assert unknown(self.severities) == [] : 'kube-spread mixin: _config.severities names no alert of the mixin: %s' % std.join(', ', unknown(self.severities)),
    assert unknown(self.forDurations) == [] : 'kube-spread mixin: _config.forDurations names no alert of the mixin: %s' % std.join(', ', unknown(self.forDurations)),

    // Selects the exporter's scrape job in the alerts about the exporter
    // itself (KubeSpreadExporterDown, KubeSpreadExporterBlind,
    // KubeSpreadExporterAbsent). The default matches the usual job names:
    // kube-spread-exporter, a Helm release's <release>-kube-spread-exporter.
    jobSelector: 'job=~".*kube-spread.*"',

    // The label that tells clusters apart in a Prometheus (Thanos, Mimir)
    // over several clusters, usually an external label. The rules keep
    // every label but instance and pod, whatever its name, so only
    // KubeSpreadExporterBlind's description and the dashboards' cluster
    // variable name it.
    clusterLabel: 'cluster',

    // Each runbook_url is this prefix followed by the alert's name in
    // lower case, the anchor of its heading in docs/runbooks.md.
    runbookURLPrefix: 'https://github.com/kube-spread-exporter/kube-spread-exporter/blob/main/docs/runbooks.md#',

    // The severity label of each alert, by alert name: critical pages,
    // warning files a ticket (deploy/alertmanager.example.yml). Override
    // single alerts with severities+: { KubeSpreadSingleHomed: 'info' }.
    severities: { [alert.alert]: alert.labels.severity for alert in alerts },

    // The `for` of each alert, by alert name. The rule file says why each
    // is what it is: 1m keeps the maintenance alerts within two minutes of
    // the cordon, 15m lets rolling updates pass. A description that names
    // the duration ("for 5 minutes") names the new one.
    forDurations: { [alert.alert]: alert['for'] for alert in alerts if std.objectHas(alert, 'for') },
  },
}
