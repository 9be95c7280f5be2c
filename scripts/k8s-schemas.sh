#!/usr/bin/env bash
# Kubernetes JSON schemas for kubeconform, without the schema repository kubeconform would download from:
# the hash-pinned wheel of tools/k8s-schemas/requirements.txt (kubernetes-validate) from the Python package
# index, its "local-strict" schemas of each Kubernetes version asked for copied into
# $TOOLS_DIR/k8s-schemas/v<version>-local-strict/, named as kubeconform's -schema-location template expects
# ({{ .ResourceKind }}{{ .KindSuffix }}.json). The package's schemas point at one shared _definitions.json by
# an absolute URI (their $id is on kubernetes.io); here each reference is made relative to the file and $id is
# dropped, so kubeconform resolves everything from the folder and never from the network.
#
#   scripts/k8s-schemas.sh 1.25.0 1.37.0   a no-op when those versions from that wheel are in place
#
# Environment: PYTHON (python3), TOOLS_DIR (<repo>/.tools).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
OUT=$TOOLS_DIR/k8s-schemas
REQUIREMENTS=$ROOT/tools/k8s-schemas/requirements.txt
PYTHON=${PYTHON:-python3}

log() { echo "k8s-schemas: $*"; }
die() { echo "k8s-schemas: error: $*" >&2; exit 1; }

(($# > 0)) || die "usage: $0 KUBERNETES_VERSION... (e.g. 1.25.0 1.37.0)"
command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found (needed to download and unpack the schema wheel); set PYTHON"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (Debian/Ubuntu: apt-get install python3-pip)"

# What the folder was made from: the pinned requirement (with its hash) and the versions.
want="$(grep -v '^#' "$REQUIREMENTS" | tr -d ' \\\n') $*"
if [[ -f $OUT/.complete && $(cat "$OUT/.complete") == "$want" ]]; then
  log "present ($*)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "downloading the pinned kubernetes-validate wheel (hash-checked)"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-input --no-deps --only-binary=:all: \
  --require-hashes -r "$REQUIREMENTS" -d "$tmp/wheel" ||
  die "pip download failed (it fetches the pinned wheel from the Python package index; see above)"

"$PYTHON" - "$tmp/wheel" "$tmp/out" "$@" <<'PY'
import glob, json, os, sys, zipfile

wheel_dir, out, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
(wheel,) = glob.glob(os.path.join(wheel_dir, "*.whl"))
SHARED = "/api/_definitions.json#"

def relative(node):
    """Every $ref to the shared definitions made relative to the schema's own folder."""
    if isinstance(node, dict):
        return {k: (("_definitions.json#" + v[len(SHARED):]) if k == "$ref" and isinstance(v, str) and v.startswith(SHARED) else relative(v))
                for k, v in node.items() if k != "$id"}
    if isinstance(node, list):
        return [relative(v) for v in node]
    return node

with zipfile.ZipFile(wheel) as z:
    for version in versions:
        prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
        names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
        if not names:
            sys.exit(f"k8s-schemas: error: the wheel has no schemas for Kubernetes {version}")
        dest = os.path.join(out, f"v{version}-local-strict")
        os.makedirs(dest)
        for name in names:
            schema = relative(json.loads(z.read(name)))
            with open(os.path.join(dest, name[len(prefix):]), "w") as f:
                json.dump(schema, f, separators=(",", ":"))
        left = [n for n in os.listdir(dest) if '"$ref":"/' in open(os.path.join(dest, n)).read()]
        if left:
            sys.exit(f"k8s-schemas: error: absolute references left in {left[:3]}")
        print(f"k8s-schemas: Kubernetes {version}: {len(names)} schemas")
PY

echo "$want" >"$tmp/out/.complete"
rm -rf "$OUT"
mkdir -p "$TOOLS_DIR"
mv "$tmp/out" "$OUT"
log "ready: $OUT"
