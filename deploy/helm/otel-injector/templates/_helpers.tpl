{{/*
Names. fullname is the release name when it already contains the chart name, so the
default release "otel-injector" gives objects named "otel-injector".
*/}}
{{- define "otel-injector.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "otel-injector.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "otel-injector.namespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{- define "otel-injector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "otel-injector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: otel-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "otel-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otel-injector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "otel-injector.jaegerSelectorLabels" -}}
app.kubernetes.io/name: jaeger
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "otel-injector.jaegerLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "otel-injector.jaegerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.jaeger.image.tag | quote }}
app.kubernetes.io/component: tracing-backend
app.kubernetes.io/part-of: otel-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The webhook's Service; the serving certificate is issued for <service>.<ns>.svc. */}}
{{- define "otel-injector.serviceName" -}}
{{- include "otel-injector.fullname" . -}}
{{- end -}}

{{- define "otel-injector.collectorSourceName" -}}
{{- printf "%s-collector-config" (include "otel-injector.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "otel-injector.certificateName" -}}
{{- include "otel-injector.fullname" . -}}
{{- end -}}

{{- define "otel-injector.image" -}}
{{- printf "%s:%s" .Values.webhook.image.repository (.Values.webhook.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "otel-injector.sidecarImage" -}}
{{- printf "%s:%s" .Values.sidecar.image.repository (toString .Values.sidecar.image.tag) -}}
{{- end -}}

{{/* Where the serving certificate and key are read from (tls.crt, tls.key). */}}
{{- define "otel-injector.certDir" -}}
/var/run/otel-injector/certs
{{- end -}}

{{- define "otel-injector.leaderElection" -}}
{{- if gt (int .Values.webhook.replicas) 1 -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Namespaces no pod is ever sent from: the system ones and the injector's own. */}}
{{- define "otel-injector.excludedNamespaces" -}}
{{- $base := list "kube-system" "kube-public" "kube-node-lease" (include "otel-injector.namespace" .) -}}
{{- concat $base .Values.webhook.excludedNamespaces | uniq | toJson -}}
{{- end -}}

{{/* host:port the sidecars export to; empty means "none configured". */}}
{{- define "otel-injector.exporterEndpoint" -}}
{{- if .Values.collector.exporterEndpoint -}}
{{- .Values.collector.exporterEndpoint -}}
{{- else if .Values.jaeger.deploy -}}
{{- printf "jaeger-collector.%s.svc:4317" (include "otel-injector.namespace" .) -}}
{{- end -}}
{{- end -}}

{{/* OTLP URL of the webhook's own spans. */}}
{{- define "otel-injector.tracingEndpoint" -}}
{{- if .Values.webhook.tracing.endpoint -}}
{{- .Values.webhook.tracing.endpoint -}}
{{- else if .Values.jaeger.deploy -}}
{{- $port := ternary "4317" "4318" (eq .Values.webhook.tracing.protocol "grpc") -}}
{{- printf "http://jaeger-collector.%s.svc:%s" (include "otel-injector.namespace" .) $port -}}
{{- end -}}
{{- end -}}

{{/*
The collector config the sidecars get (key config.yaml of the source ConfigMap):
collector.config verbatim when set; else files/collector-config.yaml (a copy of
deploy/collector/config.yaml) with the endpoint placeholder filled in; with no endpoint
at all, the same config with a debug exporter instead of otlp_grpc.
*/}}
{{- define "otel-injector.collectorConfig" -}}
{{- $custom := .Values.collector.config -}}
{{- if $custom -}}
{{- if kindIs "string" $custom -}}
{{- $custom -}}
{{- else -}}
{{- toYaml $custom -}}
{{- end -}}
{{- else -}}
{{- $text := .Files.Get "files/collector-config.yaml" -}}
{{- $endpoint := include "otel-injector.exporterEndpoint" . -}}
{{- if $endpoint -}}
{{- $text = replace "${env:OTEL_INJECTOR_EXPORTER_ENDPOINT}" $endpoint $text -}}
{{- if not .Values.collector.exporterInsecure -}}
{{- $text = replace "insecure: true" "insecure: false" $text -}}
{{- end -}}
{{- $text -}}
{{- else -}}
{{- $config := fromYaml $text -}}
{{- $_ := set $config "exporters" (dict "debug" (dict "verbosity" "basic")) -}}
{{- range $name, $pipeline := $config.service.pipelines -}}
{{- $_ := set $pipeline "exporters" (list "debug") -}}
{{- end -}}
{{- printf "# Default sidecar config with a debug exporter: set collector.exporterEndpoint\n# (or jaeger.deploy=true) to send the data somewhere.\n" -}}
{{- toYaml $config -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checks with a clear message for the choices the templates depend on. values.schema.json
catches most of these first; these also hold with --skip-schema-validation.
*/}}
{{- define "otel-injector.validate" -}}
{{- $certModes := list "self-managed" "cert-manager" "secret" -}}
{{- if not (has .Values.certs.mode $certModes) -}}
{{- fail (printf "certs.mode must be one of %s, not %q" (join ", " $certModes) (toString .Values.certs.mode)) -}}
{{- end -}}
{{- $sidecarModes := list "native" "container" -}}
{{- if not (has .Values.sidecar.mode $sidecarModes) -}}
{{- fail (printf "sidecar.mode must be one of %s, not %q" (join ", " $sidecarModes) (toString .Values.sidecar.mode)) -}}
{{- end -}}
{{- $policies := list "Ignore" "Fail" -}}
{{- if not (has .Values.webhook.failurePolicy $policies) -}}
{{- fail (printf "webhook.failurePolicy must be one of %s, not %q" (join ", " $policies) (toString .Values.webhook.failurePolicy)) -}}
{{- end -}}
{{- $pullPolicies := list "Always" "IfNotPresent" "Never" -}}
{{- range $what, $policy := dict "webhook.image.pullPolicy" .Values.webhook.image.pullPolicy "sidecar.image.pullPolicy" .Values.sidecar.image.pullPolicy "jaeger.image.pullPolicy" .Values.jaeger.image.pullPolicy -}}
{{- if not (has $policy $pullPolicies) -}}
{{- fail (printf "%s must be one of %s, not %q" $what (join ", " $pullPolicies) (toString $policy)) -}}
{{- end -}}
{{- end -}}
{{- $protocols := list "grpc" "http/protobuf" -}}
{{- if not (has .Values.webhook.tracing.protocol $protocols) -}}
{{- fail (printf "webhook.tracing.protocol must be one of %s, not %q" (join ", " $protocols) (toString .Values.webhook.tracing.protocol)) -}}
{{- end -}}
{{- $levels := list "DEBUG" "INFO" "WARNING" "ERROR" -}}
{{- if not (has (upper (toString .Values.logLevel)) $levels) -}}
{{- fail (printf "logLevel must be one of %s, not %q" (join ", " $levels) (toString .Values.logLevel)) -}}
{{- end -}}
{{- $timeout := int .Values.webhook.timeoutSeconds -}}
{{- if or (lt $timeout 1) (gt $timeout 30) -}}
{{- fail (printf "webhook.timeoutSeconds must be between 1 and 30 (the apiserver's limit), not %v" .Values.webhook.timeoutSeconds) -}}
{{- end -}}
{{- if lt (int .Values.webhook.replicas) 1 -}}
{{- fail (printf "webhook.replicas must be at least 1, not %v" .Values.webhook.replicas) -}}
{{- end -}}
{{- if and (eq .Values.certs.mode "secret") (not .Values.certs.caBundle) -}}
{{- fail "certs.mode=secret needs certs.caBundle: the base64 PEM of the CA that signed the certificate in certs.secretName" -}}
{{- end -}}
{{- if not .Values.certs.secretName -}}
{{- fail "certs.secretName must not be empty" -}}
{{- end -}}
{{- if and .Values.webhook.tracing.enabled (not (include "otel-injector.tracingEndpoint" .)) -}}
{{- fail "webhook.tracing.enabled=true needs webhook.tracing.endpoint (or jaeger.deploy=true to send the spans to the quick-start Jaeger)" -}}
{{- end -}}
{{- if not .Values.selectors.label -}}
{{- fail "selectors.label must not be empty" -}}
{{- end -}}
{{- if eq (toString .Values.selectors.enabledValue) (toString .Values.selectors.disabledValue) -}}
{{- fail "selectors.enabledValue and selectors.disabledValue must differ" -}}
{{- end -}}
{{- end -}}

{{/* Everything the two webhooks of the MutatingWebhookConfiguration share. */}}
{{- define "otel-injector.webhookCommon" -}}
rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
    scope: Namespaced
clientConfig:
  service:
    name: {{ include "otel-injector.serviceName" . }}
    namespace: {{ include "otel-injector.namespace" . }}
    path: /mutate
    port: 443
  {{- if eq .Values.certs.mode "secret" }}
  caBundle: {{ .Values.certs.caBundle | quote }}
  {{- end }}
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ int .Values.webhook.timeoutSeconds }}
sideEffects: NoneOnDryRun
admissionReviewVersions: ["v1"]
reinvocationPolicy: IfNeeded
matchPolicy: Equivalent
{{- end -}}
