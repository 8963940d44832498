{{/* Names, labels and the operator's command line. */}}

{{- define "gpu-rental-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpu-rental-operator.fullname" -}}
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

{{- define "gpu-rental-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpu-rental-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-rental-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gpu-rental-operator.labels" -}}
helm.sh/chart: {{ include "gpu-rental-operator.chart" . }}
{{ include "gpu-rental-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gpu-rental-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gpu-rental-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gpu-rental-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gpu-rental-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The leader-election Lease's name (HA only), in the release's namespace. */}}
{{- define "gpu-rental-operator.leaseName" -}}
{{- default (include "gpu-rental-operator.fullname" .) .Values.ha.leaseName }}
{{- end }}

{{/*
The operator's arguments. Flags are the contract's (CONTRACT.md, "Running the operator");
--leader-election only with ha.enabled (the Lease is in the release's namespace, the pods'
POD_NAMESPACE).
*/}}
{{- define "gpu-rental-operator.args" -}}
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
- --metrics-port={{ .Values.metrics.port }}
- --metering-interval={{ .Values.metering.interval }}
- --provisioning-timeout={{ .Values.provisioning.timeout }}
{{- with .Values.rentalPriorityClasses.onDemand.name }}
- --on-demand-priority-class={{ . }}
{{- end }}
{{- with .Values.rentalPriorityClasses.interruptible.name }}
- --interruptible-priority-class={{ . }}
{{- end }}
{{- if .Values.idle.prometheusUrl }}
- --prometheus-url={{ .Values.idle.prometheusUrl }}
- --idle-check-interval={{ .Values.idle.checkInterval }}
{{- end }}
{{- if .Values.webhook.enabled }}
- --webhook-port={{ .Values.webhook.port }}
- --webhook-cert-dir=/etc/gpurental/webhook-tls
{{- end }}
{{- if .Values.ha.enabled }}
- --leader-election={{ include "gpu-rental-operator.leaseName" . }}
{{- end }}
{{- if .Values.ssh.image }}
- --sshd-image={{ .Values.ssh.image }}
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The kubernetes.io/tls Secret the webhook's serving certificate is mounted from. */}}
{{- define "gpu-rental-operator.webhookSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "gpu-rental-operator.fullname" .)) .Values.webhook.secretName }}
{{- end }}
