#!/usr/bin/env bash
# Builds the signed development policy bundle bundles/build/mcp-authz.tar.gz (wasm target, entrypoint
# mcp/authz/decision, plus mcp/authz/result and any other rule annotated `entrypoint: true`) from policies/, signed with a development RSA key pair kept in .tools/dev/ (generated on first
# use, mode 0600, never committed). Rebuilds only when a file in policies/ (or the key) is newer than the bundle;
# FORCE=1 rebuilds anyway.
#
# Environment: OPA (.tools/bin/opa), TOOLS_DIR (<repo>/.tools), FORCE, POLICIES (policies), OUT (the bundle).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
OPA=${OPA:-$TOOLS_DIR/bin/opa}
DEV_DIR=$TOOLS_DIR/dev
KEY=$DEV_DIR/bundle-signing.key.pem
PUB=$DEV_DIR/bundle-signing.pub.pem
POLICIES=${POLICIES:-policies}
OUT=${OUT:-bundles/build/mcp-authz.tar.gz}
# Only the builtins the gateway can evaluate under wasm (scripts/capabilities.mjs): a policy calling
# any other fails here, not at request time.
CAPABILITIES=bundles/capabilities.json
# mcp/authz/decision is required. The optional mcp/authz/result (docs/result-policy.md) is declared in the policy
# with `# METADATA entrypoint: true`, so opa exports it exactly when the policies define it: a `-e mcp/authz/result`
# here would make opa refuse every policy folder without one ("does not refer to a rule").
ENTRYPOINT=mcp/authz/decision

die() { echo "bundle: error: $*" >&2; exit 1; }

[[ -x $OPA ]] || die "$OPA not found: run 'make tools'"
[[ -d $POLICIES ]] || die "no $POLICIES/ folder"
[[ -f $CAPABILITIES ]] || die "no $CAPABILITIES"
find "$POLICIES" -name '*.rego' ! -name '*_test.rego' -print -quit | grep -q . || die "no *.rego policy in $POLICIES/"

# 1. Development signing key pair (RSA 2048; PKCS#8 private key, SPKI public key), generated with node:crypto.
if [[ ! -s $KEY || ! -s $PUB ]]; then
  mkdir -p "$DEV_DIR"
  chmod 700 "$DEV_DIR"
  rm -f "$KEY" "$PUB"
  node -e '
    const { generateKeyPairSync } = require("node:crypto");
    const { writeFileSync, renameSync } = require("node:fs");
    const [keyPath, pubPath] = process.argv.slice(1);
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    writeFileSync(pubPath + ".tmp", publicKey, { mode: 0o600 });
    writeFileSync(keyPath + ".tmp", privateKey, { mode: 0o600 });
    renameSync(pubPath + ".tmp", pubPath);
    renameSync(keyPath + ".tmp", keyPath);
  ' "$KEY" "$PUB"
  echo "bundle: generated development signing key pair in ${DEV_DIR#"$ROOT"/} (RSA 2048, never commit it)"
fi

# 2. Rebuild only when something changed.
if [[ -z ${FORCE:-} && -f $OUT ]] &&
  [[ -z $(find "$POLICIES" "$CAPABILITIES" "$KEY" "$PUB" -newer "$OUT" -print -quit) ]]; then
  echo "bundle: $OUT is up to date"
  exit 0
fi

REV=$(git describe --always --dirty 2>/dev/null || echo dev)
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.tmp"
"$OPA" build -b "$POLICIES/" -t wasm -e "$ENTRYPOINT" --ignore '*_test.rego' --capabilities "$CAPABILITIES" \
  --signing-key "$KEY" --signing-alg RS256 -r "$REV" -o "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
EXPORTED=$("$OPA" inspect -f json "$OUT" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () =>
    console.log((JSON.parse(s).manifest.wasm ?? []).map((w) => w.entrypoint).sort().join(", ")));')
echo "bundle: built $OUT (revision $REV, $(wc -c <"$OUT") bytes, signed with ${KEY#"$ROOT"/}; entrypoints $EXPORTED)"
