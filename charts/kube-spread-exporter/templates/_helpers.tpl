{{/* The chart name, or nameOverride: app.kubernetes.io/name. */}}
{{- define "kube-spread-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the objects: fullnameOverride, else the release name when it
contains the chart name (helm install kube-spread-exporter ...), else
<release>-<chart name>. 63 characters at most, as label values must be.
*/}}
{{- define "kube-spread-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kube-spread-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries. */}}
{{- define "kube-spread-exporter.labels" -}}
helm.sh/chart: {{ include "kube-spread-exporter.chart" . }}
{{ include "kube-spread-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The labels that select the release's pods: the Deployment, the Service, the
anti-affinity, the spread constraint and the PodDisruptionBudget use them
all, so two releases never count each other's pods.
*/}}
{{- define "kube-spread-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-spread-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kube-spread-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-spread-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the ServiceAccount to run as when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kube-spread-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) }}
{{- end }}

{{/* Where the Secret of webConfig is mounted. */}}
{{- define "kube-spread-exporter.webConfigDir" -}}
/etc/kube-spread-exporter
{{- end }}

{{/* The admission webhook's ConfigMap, Issuer and Certificate. */}}
{{- define "kube-spread-exporter.admissionName" -}}
{{- printf "%s-admission" (include "kube-spread-exporter.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret of the webhook's certificate. */}}
{{- define "kube-spread-exporter.admissionSecretName" -}}
{{- .Values.admission.certificate.secretName | default (printf "%s-admission-tls" (include "kube-spread-exporter.fullname" .)) }}
{{- end }}

{{/* Where the webhook's web configuration and certificate are mounted, as in deploy/components/admission. */}}
{{- define "kube-spread-exporter.admissionDir" -}}
/etc/kube-spread-exporter/admission
{{- end }}

{{/* http or https, as the exporter serves. */}}
{{- define "kube-spread-exporter.scheme" -}}
{{- if .Values.webConfig.tls }}https{{ else }}http{{ end }}
{{- end }}

{{/* The metrics path: flags."web.telemetry-path" or the exporter's default. */}}
{{- define "kube-spread-exporter.telemetryPath" -}}
{{- index .Values.flags "web.telemetry-path" | default "/metrics" }}
{{- end }}

{{/*
Whether the readiness probe must authenticate (a client certificate or basic
auth): the kubelet's httpGet probes can do neither.
*/}}
{{- define "kube-spread-exporter.probeAuthenticates" -}}
{{- with .Values.webConfig.probe }}
{{- if or .certFile .basicAuthUsername }}true{{ end }}
{{- end }}
{{- end }}

{{/*
The exporter's arguments: the listen addresses and web configurations the
chart owns (the admission webhook's after the metrics', as
deploy/components/admission appends them), then every flag of
.Values.flags, in the order of their names.
*/}}
{{- define "kube-spread-exporter.args" -}}
- --web.listen-address=:{{ .Values.service.port }}
{{- if .Values.webConfig.secretName }}
- --web.config.file={{ include "kube-spread-exporter.webConfigDir" . }}/web-config.yml
{{- end }}
{{- with .Values.admission }}
{{- if .enabled }}
- --admission.listen-address=:{{ .port }}
- --admission.web.config.file={{ include "kube-spread-exporter.admissionDir" $ }}/web-config.yml
{{- if ne .mode "warn" }}
- --admission.mode={{ .mode }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.flags }}
{{- if kindIs "bool" $value }}
- --{{ if not $value }}no-{{ end }}{{ $name }}
{{- else if kindIs "slice" $value }}
{{- range $value }}
- {{ printf "--%s=%v" $name . | quote }}
{{- end }}
{{- else }}
- {{ printf "--%s=%v" $name $value | quote }}
{{- end }}
{{- end }}
{{- end }}
