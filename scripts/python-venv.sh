#!/usr/bin/env bash
# The Python virtualenv for the Python MCP client tests (test/python/mcp_client.py): .tools/venv with exactly
# the hash-pinned packages of test/python/requirements.txt. Other venvs of the project (the ContextForge peer
# of the bench: scripts/contextforge-venv.sh) are made the same way by setting VENV_DIR, REQUIREMENTS,
# PYTHON_MIN and VENV_CHECK.
#
#   scripts/python-venv.sh    create or refresh the venv; a no-op while requirements.txt, the interpreter and
#                             the venv are unchanged (a stamp file holds their checksum)
#
# Environment: PYTHON (python3), TOOLS_DIR (<repo>/.tools), VENV_DIR ($TOOLS_DIR/venv),
# REQUIREMENTS (test/python/requirements.txt), PYTHON_MIN (3.11), VENV_CHECK (import mcp.client: what the venv
# must be able to run to count as ready).
# Needs Python >= PYTHON_MIN with the venv module and ensurepip (Debian/Ubuntu: apt-get install python3-venv).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
VENV=${VENV_DIR:-$TOOLS_DIR/venv}
REQUIREMENTS=${REQUIREMENTS:-$ROOT/test/python/requirements.txt}
STAMP=$VENV/.portcullis-stamp
PYTHON=${PYTHON:-python3}
PYTHON_MIN=${PYTHON_MIN:-3.11}
VENV_CHECK=${VENV_CHECK:-import mcp.client}
min_tuple="(${PYTHON_MIN%%.*}, ${PYTHON_MIN#*.})"

log() { echo "python-venv: $*"; }
die() { echo "python-venv: error: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found. Install Python >= $PYTHON_MIN (Debian/Ubuntu: apt-get install python3 python3-venv), or set PYTHON=/path/to/python3."
"$PYTHON" -c "import sys; sys.exit(0 if sys.version_info >= $min_tuple else 1)" ||
  die "$("$PYTHON" --version 2>&1) is too old: the pinned packages need Python >= $PYTHON_MIN (set PYTHON=/path/to/python$PYTHON_MIN+)."
# Debian and Ubuntu ship venv without ensurepip unless python3-venv is installed; `python3 -m venv` then
# fails half-way with a long message, so check first and say what to install.
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  minor=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  die "$PYTHON cannot create virtualenvs (no venv/ensurepip module). On Debian/Ubuntu: apt-get install python3-venv (or python$minor-venv for that interpreter); elsewhere install your distribution's Python venv package."
fi
[[ -f $REQUIREMENTS ]] || die "$REQUIREMENTS is missing"

mkdir -p "$TOOLS_DIR"
# One run at a time (make -j, two test runs): the second waits, then finds the venv up to date.
if command -v flock >/dev/null; then
  exec 9>"$VENV.lock"
  flock 9
fi

# What the venv was built from: the requirements file and the exact interpreter.
want=$( { sha256sum "$REQUIREMENTS" | cut -d' ' -f1; "$PYTHON" -c 'import sys; print(sys.executable, sys.version)'; } | sha256sum | cut -d' ' -f1)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]] && "$VENV/bin/python" -c "$VENV_CHECK" 2>/dev/null; then
  log "up to date ($VENV)"
  exit 0
fi

# Rebuilt from scratch, so packages dropped from requirements.txt do not linger; the stamp is written last,
# so a failed install is retried in full next time.
log "creating $VENV with $("$PYTHON" --version 2>&1)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv $VENV' failed (Debian/Ubuntu: apt-get install python3-venv)"
log "installing ${REQUIREMENTS#"$ROOT"/} (hash-checked)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --require-hashes --no-deps --only-binary=:all: -r "$REQUIREMENTS" ||
  die "pip install failed (it downloads the pinned packages from the Python package index; see the pip output above)"
# --no-deps trusts requirements.txt to be complete; pip check proves it for this interpreter.
"$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null ||
  die "requirements.txt is incomplete for $("$PYTHON" --version 2>&1): $("$VENV/bin/python" -m pip check 2>&1 | head -5). Re-resolve it (see its header)."
"$VENV/bin/python" -c "$VENV_CHECK" || die "the venv cannot run: $VENV_CHECK"
echo "$want" >"$STAMP"
log "ready: $VENV ($(wc -l < <(grep -E '^[A-Za-z0-9]' "$REQUIREMENTS")) pinned packages)"
