{{/* Names, labels and the rendered gateway config, shared by every template. */}}

{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.fullname" -}}
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

{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Fixed paths in the pod; the data directory is the image's VOLUME. */}}
{{- define "portcullis.configDir" -}}/etc/portcullis{{- end }}
{{- define "portcullis.dataDir" -}}/var/lib/portcullis{{- end }}

{{- define "portcullis.upstreamNamespace" -}}
{{- default .Release.Namespace .Values.upstreamIsolation.namespace }}
{{- end }}

{{/* ------------------------------------------------------------------------------------- secrets */}}

{{- define "portcullis.bundleConfigMapName" -}}
{{- default (printf "%s-bundle" (include "portcullis.fullname" .)) .Values.bundle.configMap.name }}
{{- end }}

{{- define "portcullis.verificationKeySecretName" -}}
{{- default (printf "%s-bundle-key" (include "portcullis.fullname" .)) .Values.verificationKey.existingSecret }}
{{- end }}

{{- define "portcullis.redisSecretName" -}}
{{- default (printf "%s-redis" (include "portcullis.fullname" .)) .Values.redis.existingSecret }}
{{- end }}

{{- define "portcullis.sealKeysSecretName" -}}
{{- default (printf "%s-seal-keys" (include "portcullis.fullname" .)) .Values.sealKeys.existingSecret }}
{{- end }}

{{/* The environment variable of one seal key id. */}}
{{- define "portcullis.sealKeyEnv" -}}
{{- printf "PORTCULLIS_SEAL_KEY_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
"true" when the chart creates the seal-key Secret: every key has its value in values. Fails on a mix, on a
malformed id or key, on ids that share an environment variable, and on several replicas without keys.
*/}}
{{- define "portcullis.sealKeysCreated" -}}
{{- $keys := .Values.sealKeys.keys | default list }}
{{- $withValue := 0 }}
{{- $envs := dict }}
{{- range $i, $k := $keys }}
{{- if not (regexMatch "^[A-Za-z0-9_-]{1,32}$" (toString $k.id)) }}
{{- fail (printf "sealKeys.keys[%d].id: %q is not letters, digits, '_' or '-' (1-32)" $i (toString $k.id)) }}
{{- end }}
{{- $env := include "portcullis.sealKeyEnv" (toString $k.id) }}
{{- if hasKey $envs $env }}
{{- fail (printf "sealKeys.keys[%d].id: %q maps to %s like an earlier id" $i $k.id $env) }}
{{- end }}
{{- $_ := set $envs $env true }}
{{- if $k.key }}
{{- $withValue = add1 $withValue }}
{{- if or (not (regexMatch "^[A-Za-z0-9+/]{43}=$" $k.key)) (ne (len (b64dec $k.key)) 32) }}
{{- fail (printf "sealKeys.keys[%d].key: not 32 bytes in base64 (openssl rand -base64 32)" $i) }}
{{- end }}
{{- end }}
{{- end }}
{{- $replicas := ternary (int .Values.autoscaling.maxReplicas) (int .Values.replicaCount) .Values.autoscaling.enabled }}
{{- if and (eq (len $keys) 0) (gt $replicas 1) }}
{{- fail "sealKeys.keys is empty: replicas would not open each other's sessions; give at least one key (or run one replica)" }}
{{- end }}
{{- if and (gt $withValue 0) (lt $withValue (len $keys)) }}
{{- fail "sealKeys.keys: give every key's value (the chart creates the Secret) or none (they are in sealKeys.existingSecret)" }}
{{- end }}
{{- if and (gt $withValue 0) .Values.sealKeys.existingSecret }}
{{- fail "sealKeys: set either sealKeys.existingSecret or the keys' values, not both" }}
{{- end }}
{{- if gt $withValue 0 }}true{{ end }}
{{- end }}

{{/* ------------------------------------------------------------------------------- gateway config */}}

{{/*
gateway.yaml: .Values.config plus the keys the chart owns (values.yaml lists them). Fails when values set an
owned key, so the pod's mounts and environment and the config can never disagree.
*/}}
{{- define "portcullis.gatewayConfig" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $owned := dict "listen" "the chart listens on 0.0.0.0:containerPort" }}
{{- range $key, $why := $owned }}
{{- if hasKey $cfg $key }}{{ fail (printf "config.%s is set by the chart (%s)" $key $why) }}{{ end }}
{{- end }}
{{- if not $cfg.publicUrl }}
{{- fail "config.publicUrl is required: the URL agents use (it names the protected resources)" }}
{{- end }}
{{- $_ := set $cfg "listen" (dict "host" "0.0.0.0" "port" (int .Values.containerPort)) }}

{{- /* policy: the bundle and its key come from mounts or the URL */}}
{{- $policy := get $cfg "policy" | default dict }}
{{- if hasKey $policy "bundle" }}{{ fail "config.policy.bundle is set by the chart: use bundle.url or bundle.configMap" }}{{ end }}
{{- if hasKey $policy "verificationKey" }}{{ fail "config.policy.verificationKey is set by the chart: use verificationKey.existingSecret or verificationKey.pem" }}{{ end }}
{{- $bundle := .Values.bundle.url | default (printf "%s/bundle/%s" (include "portcullis.configDir" .) .Values.bundle.configMap.key) }}
{{- $_ := set $policy "bundle" $bundle }}
{{- $_ := set $policy "verificationKey" (printf "%s/keys/%s" (include "portcullis.configDir" .) .Values.verificationKey.secretKey) }}
{{- $_ := set $cfg "policy" $policy }}

{{- /* sessions.sealKeys: the ids in order, each key from its environment variable */}}
{{- $sessions := get $cfg "sessions" | default dict }}
{{- if hasKey $sessions "sealKeys" }}{{ fail "config.sessions.sealKeys is set by the chart: use sealKeys.keys (ids) and their Secret" }}{{ end }}
{{- $sealKeys := list }}
{{- range .Values.sealKeys.keys }}
{{- $sealKeys = append $sealKeys (dict "id" (toString .id) "key" (printf "${%s}" (include "portcullis.sealKeyEnv" (toString .id)))) }}
{{- end }}
{{- if $sealKeys }}
{{- $_ := set $sessions "sealKeys" $sealKeys }}
{{- $_ := set $cfg "sessions" $sessions }}
{{- end }}

{{- /* rateLimits: shared through Redis when enabled */}}
{{- if .Values.redis.enabled }}
{{- $rl := get $cfg "rateLimits" | default dict }}
{{- $redis := get $rl "redis" | default dict }}
{{- if or (hasKey $rl "store") (hasKey $redis "url") }}{{ fail "config.rateLimits.store and config.rateLimits.redis.url are set by the chart when redis.enabled" }}{{ end }}
{{- $_ := set $redis "url" "${PORTCULLIS_REDIS_URL}" }}
{{- $_ := set $rl "store" "redis" }}
{{- $_ := set $rl "redis" $redis }}
{{- $_ := set $cfg "rateLimits" $rl }}
{{- /* the session ledger: the same Redis, so DELETE and idle expiry hold on every replica */}}
{{- $sessions := get $cfg "sessions" | default dict }}
{{- if hasKey $sessions "store" }}{{ fail "config.sessions.store is set by the chart when redis.enabled" }}{{ end }}
{{- $_ := set $sessions "store" "redis" }}
{{- $_ := set $cfg "sessions" $sessions }}
{{- end }}

{{- /* edge.allowedHosts: the Service's in-cluster names */}}
{{- if .Values.service.allowClusterHosts }}
{{- $edge := get $cfg "edge" | default dict }}
{{- $hosts := get $edge "allowedHosts" | default list }}
{{- $svc := include "portcullis.fullname" . }}
{{- $port := ternary "" (printf ":%d" (int .Values.service.port)) (eq (int .Values.service.port) 80) }}
{{- range list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.%s" $svc .Release.Namespace .Values.service.clusterDomain) }}
{{- $hosts = append $hosts (printf "%s%s" . $port) }}
{{- end }}
{{- $_ := set $edge "allowedHosts" (uniq $hosts) }}
{{- $_ := set $cfg "edge" $edge }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Environment of the gateway container: seal keys, Redis URL, then extraEnv. */}}
{{- define "portcullis.env" -}}
{{- $secret := include "portcullis.sealKeysSecretName" . }}
{{- range .Values.sealKeys.keys }}
- name: {{ include "portcullis.sealKeyEnv" (toString .id) }}
  valueFrom:
    secretKeyRef: { name: {{ $secret }}, key: {{ toString .id | quote }} }
{{- end }}
{{- if .Values.redis.enabled }}
- name: PORTCULLIS_REDIS_URL
  valueFrom:
    secretKeyRef: { name: {{ include "portcullis.redisSecretName" . }}, key: {{ .Values.redis.secretKey | quote }} }
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
