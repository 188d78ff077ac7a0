// prometheusAlerts: the groups of rules/kube-spread.rules.yml (copied to
// generated/kube-spread.rules.json by `go run ./rules/generate`), with the
// settings of _config put in place of the shipped ones. The copy holds the
// defaults of config.libsonnet, so the default _config changes nothing.
local rules = import 'generated/kube-spread.rules.json';
local shipped = (import 'config.libsonnet')._config;

local nameChars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_';

// replace is std.strReplace, skipped when nothing changes.
local replace(s, from, to) = if from == to then s else std.strReplace(s, from, to);

// renameLabelRef turns the template reference $labels.<from> into
// $labels.<to>, where <from> is the whole label name: $labels.clusters
// stays as it is.
local renameLabelRef(s, from, to) =
  local ref = '$labels.' + from;
  local parts = std.split(s, ref);
  if from == to then s else
    std.foldl(
      function(text, part)
        text + (if std.length(part) > 0 && std.member(nameChars, part[0]) then ref else '$labels.' + to) + part,
      parts[1:],
      parts[0],
    );

// humanize spells a duration as the descriptions do: 5m is "5 minutes".
// Durations of several units stay as written (1h30m).
local humanize(duration) =
  local units = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };
  local count = std.substr(duration, 0, std.length(duration) - 1);
  local unit = duration[std.length(duration) - 1];
  if std.objectHas(units, unit) && std.length(count) > 0
     && std.all([std.member('0123456789', ch) for ch in std.stringChars(count)])
  then count + ' ' + units[unit] + (if count == '1' then '' else 's')
  else duration;

// A description that says how long the condition has held names the
// alert's `for`: it follows a changed one.
local renameDuration(text, from, to) =
  if from == to then text else
    replace(replace(text, 'for ' + humanize(from), 'for ' + humanize(to)),
            'For ' + humanize(from),
            'For ' + humanize(to));

// text puts the selector and the cluster label of config in the place of
// the shipped ones, in an expression or an annotation.
local text(config, s) =
  renameLabelRef(replace(s, shipped.jobSelector, config.jobSelector), shipped.clusterLabel, config.clusterLabel);

local runbookURL(config, url) =
  if std.startsWith(url, shipped.runbookURLPrefix)
  then config.runbookURLPrefix + url[std.length(shipped.runbookURLPrefix):]
  else url;

local alert(config, rule) =
  local name = rule.alert;
  local forDuration = if std.objectHas(config.forDurations, name) then config.forDurations[name] else null;
  rule {
    expr: text(config, rule.expr),
    [if forDuration != null then 'for']: forDuration,
    labels+: { severity: config.severities[name] },
    annotations: {
      [key]:
        local value = text(config, rule.annotations[key]);
        if key == 'runbook_url' then runbookURL(config, value)
        else if key == 'description' && std.objectHas(rule, 'for') && forDuration != null then renameDuration(value, rule['for'], forDuration)
        else value
      for key in std.objectFields(rule.annotations)
    },
  };

{
  prometheusAlerts+:: {
    local config = $._config,

    groups+: [
      group {
        rules: [
          if std.objectHas(rule, 'alert') then alert(config, rule) else rule { expr: text(config, rule.expr) }
          for rule in group.rules
        ],
      }
      for group in rules.groups
    ],
  },
}
