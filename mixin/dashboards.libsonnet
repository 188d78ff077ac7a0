// grafanaDashboards: the dashboards of dashboards/ (copied to generated/ by
// `go run ./dashboards/generate`, with a placeholder where the cluster
// label goes), for _config.clusterLabel. The Go code renders the copies
// and the shipped dashboards alike; the placeholder is all they differ in.
local placeholder = 'KUBE_SPREAD_CLUSTER_LABEL';
local templates = {
  'kube-spread-overview.json': importstr 'generated/kube-spread-overview.json',
  'kube-spread-service.json': importstr 'generated/kube-spread-service.json',
};

{
  grafanaDashboards+:: {
    [name]: std.parseJson(std.strReplace(templates[name], placeholder, $._config.clusterLabel))
    for name in std.objectFields(templates)
  },
}
