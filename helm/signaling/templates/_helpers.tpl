{{/* Chart name, overridable. */}}
{{- define "signaling.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, with the chart name appended unless the release name
already contains it. 63 characters at most (DNS label).
*/}}
{{- define "signaling.fullname" -}}
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

{{- define "signaling.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard app.kubernetes.io labels, on every object. */}}
{{- define "signaling.labels" -}}
helm.sh/chart: {{ include "signaling.chart" . }}
{{ include "signaling.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | toString | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: signaling
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select this release's pods (never change them: selectors are immutable). */}}
{{- define "signaling.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signaling.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "signaling.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "signaling.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "signaling.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/* Whether the pod needs the Secret (JWT key, TURN secret). */}}
{{- define "signaling.needsSecret" -}}
{{- if or (ne .Values.auth.mode "none") .Values.turn.urls (eq .Values.journal.backend "redis") }}true{{ end }}
{{- end }}

{{/* Whether the chart makes that Secret itself. */}}
{{- define "signaling.makesSecret" -}}
{{- if and (include "signaling.needsSecret" .) (not .Values.existingSecret) }}true{{ end }}
{{- end }}

{{- define "signaling.secretName" -}}
{{- default (include "signaling.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "signaling.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "signaling.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* Server-side checks that a schema cannot express; each fails the render with why. */}}
{{- define "signaling.validate" -}}
{{- if eq .Values.journal.backend "memory" }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount is %d, but journal.backend is \"memory\": each pod would hold its own rooms in memory, so clients of one room would be split across pods. Keep replicaCount: 1 until a shared journal backend is available." (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) 1) }}
{{- fail (printf "autoscaling.maxReplicas is %d, but journal.backend is \"memory\": each pod would hold its own rooms in memory, so clients of one room would be split across pods. Keep autoscaling.maxReplicas: 1 (or autoscaling.enabled: false) until a shared journal backend is available." (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and (eq .Values.journal.backend "redis") (not .Values.existingSecret) (not .Values.journal.redis.url) }}
{{- fail "journal.backend is \"redis\": set journal.redis.url (redis://host:6379/0), or existingSecret naming a Secret with a redis-url key." }}
{{- end }}
{{- $pause := float64 .Values.preStopPauseSeconds }}
{{- $drain := float64 .Values.server.shutdownTimeoutSeconds }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) (addf $pause $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than preStopPauseSeconds (%v) plus server.shutdownTimeoutSeconds (%v), or the kubelet kills the server before it has drained its clients." .Values.terminationGracePeriodSeconds .Values.preStopPauseSeconds .Values.server.shutdownTimeoutSeconds) }}
{{- end }}
{{- if and (eq .Values.auth.mode "secret") (not .Values.existingSecret) (not .Values.auth.jwtSecret) }}
{{- fail "auth.mode is \"secret\": set auth.jwtSecret, or existingSecret naming a Secret with a jwt-secret key." }}
{{- end }}
{{- if and (eq .Values.auth.mode "publicKey") (not .Values.existingSecret) (not .Values.auth.jwtPublicKey) }}
{{- fail "auth.mode is \"publicKey\": set auth.jwtPublicKey (PEM), or existingSecret naming a Secret with a jwt-public-key.pem key." }}
{{- end }}
{{- if and (eq .Values.auth.mode "jwks") (not .Values.existingSecret) (not .Values.auth.jwks) }}
{{- fail "auth.mode is \"jwks\": set auth.jwks (a JWKS document), or existingSecret naming a Secret with a jwks.json key." }}
{{- end }}
{{- if and .Values.turn.urls (not .Values.existingSecret) (not .Values.turn.secret) }}
{{- fail "turn.urls is set: set turn.secret (the TURN server's shared secret), or existingSecret naming a Secret with a turn-secret key." }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not (and .Values.tls.cert .Values.tls.key)) }}
{{- fail "tls.enabled: set tls.existingSecret (a kubernetes.io/tls Secret), or both tls.cert and tls.key (PEM)." }}
{{- end }}
{{- if and .Values.tracing.enabled (not .Values.tracing.endpoint) }}
{{- fail "tracing.enabled: set tracing.endpoint, the OTLP/HTTP collector URL (e.g. http://otel-collector:4318)." }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.sharedClientAddress) (not .Values.ingress.trustedProxies) (not .Values.server.trustedProxies) }}
{{- fail "ingress.enabled with no trusted proxies: every client would reach the server from the ingress controller's pod address and share that one address's limits (open WebSockets, handshakes, room creations), so a few users would lock out everyone. Set ingress.trustedProxies to the ingress controller's pod CIDRs (your cluster's pod CIDR, e.g. --set 'ingress.trustedProxies={10.244.0.0/16}'), or set ingress.sharedClientAddress: true to accept one shared budget (e.g. a single trusted front end)." }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to null)." }}
{{- end }}
{{- end }}
