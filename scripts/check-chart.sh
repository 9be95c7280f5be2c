#!/usr/bin/env bash
# The Helm chart deploy/helm/portcullis, checked without a cluster (make deploy-lint):
#   1. helm lint --strict, with the default values and with each deploy/helm/portcullis/ci/*-values.yaml;
#   2. helm template of each, for every Kubernetes version in K8S_VERSIONS, validated by kubeconform -strict
#      against the schemas of that version (scripts/k8s-schemas.sh; no schema is downloaded, none may be
#      missing);
#   3. scripts/check-chart.mjs on each render: gateway.yaml loads in the gateway, mounts, security, selectors;
#   4. values the chart must refuse, refused with the message that says why.
# Environment: HELM, KUBECONFORM, K8S_VERSIONS ("1.25.0 1.37.0"), TOOLS_DIR (<repo>/.tools).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
HELM=${HELM:-$TOOLS_DIR/bin/helm}
KUBECONFORM=${KUBECONFORM:-$TOOLS_DIR/bin/kubeconform}
read -r -a VERSIONS <<<"${K8S_VERSIONS:-1.25.0 1.37.0}"
CHART=deploy/helm/portcullis
SCHEMAS="$TOOLS_DIR/k8s-schemas/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"

die() { echo "check-chart: error: $*" >&2; exit 1; }
[[ -x $HELM ]] || die "$HELM not found: run 'make tools-helm'"
[[ -x $KUBECONFORM ]] || die "$KUBECONFORM not found: run 'make tools-kubeconform'"
for v in "${VERSIONS[@]}"; do
  [[ -d $TOOLS_DIR/k8s-schemas/v$v-local-strict ]] || die "no schemas for Kubernetes $v: run 'make tools-k8s-schemas'"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
newest=${VERSIONS[${#VERSIONS[@]}-1]}

# Default values first, then each CI values file.
sets=("defaults")
for f in "$CHART"/ci/*-values.yaml; do sets+=("$f"); done
for set in "${sets[@]}"; do
  args=()
  [[ $set == defaults ]] || args=(-f "$set")
  name=${set##*/}
  echo "==> helm lint --strict $CHART ${args[*]}"
  "$HELM" lint --strict --kube-version "$newest" "$CHART" "${args[@]}" | sed -n 's/^[0-9]* chart(s) linted.*/  &/p; /^\[\(WARNING\|ERROR\)\]/p'
  for v in "${VERSIONS[@]}"; do
    out=$tmp/$name-$v.yaml
    "$HELM" template portcullis "$CHART" --namespace portcullis --kube-version "$v" "${args[@]}" >"$out"
    echo "==> helm template ($name) | kubeconform -strict -kubernetes-version $v"
    "$KUBECONFORM" -strict -summary -kubernetes-version "$v" -schema-location "$SCHEMAS" "$out" | sed 's/^/  /'
  done
  node scripts/check-chart.mjs "$tmp/$name-$newest.yaml" "$name"
done

# Values the chart refuses: each renders to an error carrying this message.
echo "==> values the chart refuses"
refuse() {
  local why=$1; shift
  local err
  if err=$("$HELM" template portcullis "$CHART" --kube-version "$newest" "$@" 2>&1 >/dev/null); then
    die "helm template $* rendered; it should have failed with: $why"
  fi
  grep -qF -- "$why" <<<"$err" || die "helm template $* failed without '$why':"$'\n'"$err"
  echo "  refused ($why): $*"
}
refuse "sealKeys.keys is empty" --set-json 'sealKeys.keys=[]'
refuse "not 32 bytes in base64" --set 'sealKeys.keys[0].id=k1' --set 'sealKeys.keys[0].key=c2hvcnQ='
refuse "give every key's value" --set-json 'sealKeys.keys=[{"id":"k2","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},{"id":"k1"}]'
refuse "maps to PORTCULLIS_SEAL_KEY_K_1" --set-json 'sealKeys.keys=[{"id":"k-1"},{"id":"k_1"}]'
refuse "config.listen is set by the chart" --set config.listen.port=9000
refuse "config.sessions.sealKeys is set by the chart" --set-json 'config.sessions={"sealKeys":[]}'
refuse "config.policy.bundle is set by the chart" --set config.policy.bundle=/x.tar.gz
refuse "config.publicUrl is required" --set config.publicUrl=null
refuse "set by the chart when redis.enabled" --set redis.enabled=true --set config.rateLimits.store=redis
refuse "upstreamIsolation.podSelector is empty" --set upstreamIsolation.podSelector.matchLabels=null
refuse "set minAvailable or maxUnavailable, not both" --set podDisruptionBudget.maxUnavailable=1
echo "==> chart checks passed"
