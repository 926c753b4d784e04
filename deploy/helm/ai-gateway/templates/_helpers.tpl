{{/* Names and labels shared by every template. */}}
{{- define "ai-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ai-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "ai-gateway.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ai-gateway.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ai-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ai-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ai-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ai-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ai-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ai-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ai-gateway.configMapName" -}}
{{- default (include "ai-gateway.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/*
"true" when the history database is SQLite: no existing Secret (taken to hold a PostgreSQL URL)
and a URL that is empty (the image's default, sqlite://ai-gateway.db) or starts with sqlite:.
*/}}
{{- define "ai-gateway.sqlite" -}}
{{- if and (not .Values.database.existingSecret) (or (not .Values.database.url) (hasPrefix "sqlite:" .Values.database.url)) }}true{{- end }}
{{- end }}

{{/* Refuses values that cannot work; included by the Deployment so every render checks them. */}}
{{- define "ai-gateway.validate" -}}
{{- $replicas := int .Values.replicaCount }}
{{- if .Values.autoscaling.enabled }}
{{- $replicas = int .Values.autoscaling.maxReplicas }}
{{- end }}
{{- if and (include "ai-gateway.sqlite" .) (gt $replicas 1) }}
{{- fail (printf "SQLite keeps history in one pod's file: with %d replicas (replicaCount, or autoscaling.maxReplicas) set database.url or database.existingSecret to a PostgreSQL URL" $replicas) }}
{{- end }}
{{- $stopping := add (int .Values.preStopSleepSeconds) (int .Values.shutdown.drainSeconds) (int .Values.shutdown.graceSeconds) (int .Values.shutdown.historyFlushSeconds) }}
{{- if le (int .Values.terminationGracePeriodSeconds) $stopping }}
{{- fail (printf "terminationGracePeriodSeconds must exceed preStopSleepSeconds + shutdown.drainSeconds + shutdown.graceSeconds + shutdown.historyFlushSeconds (%d), or the pod is killed before streams and history are done" $stopping) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
