{{/*
The chart name, or nameOverride. Truncated to 63 characters: some Kubernetes name fields
are limited to that (DNS-1123 labels).
*/}}
{{- define "caravan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name used as the prefix of the release's objects: fullnameOverride, else the
release name, with the chart name added unless the release name already contains it.
*/}}
{{- define "caravan.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "caravan.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels on every object of the release.
*/}}
{{- define "caravan.labels" -}}
helm.sh/chart: {{ include "caravan.chart" . }}
{{ include "caravan.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: the Deployment's selector is immutable, so only the two labels that never
change over the release's life.
*/}}
{{- define "caravan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "caravan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount Caravan runs as.
*/}}
{{- define "caravan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "caravan.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding). They are shared by every
namespace, and one release serves one namespace, so the namespace is part of the name:
two releases called "caravan" in two namespaces must not claim the same object.
*/}}
{{- define "caravan.clusterName" -}}
{{- printf "%s-%s" (include "caravan.fullname" .) .Release.Namespace | trunc 200 | trimSuffix "-" }}
{{- end }}

{{/*
The image reference: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "caravan.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Names of the state ConfigMaps: "<prefix>-<what>". Caravan derives the same names from
CARAVAN_CONFIGMAP_PREFIX, so the chart and the process always agree.
Usage: include "caravan.configMapName" (list . "logs")
*/}}
{{- define "caravan.configMapName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" $root.Values.configMaps.prefix (index . 1) }}
{{- end }}

{{/*
The ServiceAccount task pods run as when their template names none; empty: the namespace's
default account (Caravan still mounts no token for it).
*/}}
{{- define "caravan.taskServiceAccountName" -}}
{{- if .Values.taskPods.serviceAccount.create }}
{{- default (printf "%s-task" (include "caravan.fullname" .)) .Values.taskPods.serviceAccount.name }}
{{- else }}
{{- .Values.taskPods.serviceAccount.name }}
{{- end }}
{{- end }}
