#!/usr/bin/env bash
# IBM ContextForge for the bench's peer comparison (bench/peers.ts): .tools/contextforge, a venv with exactly the
# hash-pinned packages of tools/contextforge/requirements.txt (mcp-contextforge-gateway 1.1.0), made by
# scripts/python-venv.sh. ContextForge 1.1.0 needs CPython 3.12 or 3.13: PYTHON when set, else the first of
# python3.13, python3.12, python3 on PATH that is one, else one that pyenv has installed.
#
#   scripts/contextforge-venv.sh    create or refresh the venv (a no-op while nothing changed)
#
# Environment: PYTHON, TOOLS_DIR (<repo>/.tools).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}

fits() { "$1" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 14) else 1)' >/dev/null 2>&1; }

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3; do
    if command -v "$candidate" >/dev/null && fits "$candidate"; then
      command -v "$candidate"
      return
    fi
  done
  # pyenv's shims answer only for the active version: look at what it has installed.
  local root
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for candidate in "$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3; do
    if [[ -x $candidate ]] && fits "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  return 1
}

if [[ -z ${PYTHON:-} ]]; then
  PYTHON=$(find_python) || {
    echo "contextforge-venv: error: ContextForge 1.1.0 needs CPython 3.12 or 3.13 and none was found (python3.12/python3.13 on PATH or under pyenv); install one or set PYTHON=/path/to/python3.12" >&2
    exit 1
  }
fi
fits "$PYTHON" || { echo "contextforge-venv: error: $PYTHON is not CPython 3.12 or 3.13" >&2; exit 1; }

PYTHON=$PYTHON VENV_DIR=$TOOLS_DIR/contextforge REQUIREMENTS=$ROOT/tools/contextforge/requirements.txt PYTHON_MIN=3.12 \
  VENV_CHECK='import mcpgateway' exec bash "$ROOT/scripts/python-venv.sh"
