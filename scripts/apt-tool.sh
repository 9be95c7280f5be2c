#!/usr/bin/env bash
# Installs a Debian package for a test-time tool when its command is missing:
#   scripts/apt-tool.sh COMMAND PACKAGE WHY [VERSION_FLAG]
# (redis-server for the shared rate limits and sessions, haproxy for the multi-replica tests, chromium for the
# console's browser tests). VERSION_FLAG is the only flag tried for the version line when given: chromium treats an
# unknown flag such as -v as "start the browser".
set -euo pipefail
cmd="$1" pkg="$2" why="$3" version_flag="${4:-}"
version() {
  if [ -n "$version_flag" ]; then "$cmd" "$version_flag" 2>/dev/null | head -1
  else "$cmd" -v 2>/dev/null | head -1 || "$cmd" --version 2>/dev/null | head -1; fi
}
if command -v "$cmd" >/dev/null; then
  echo "==> $cmd: present ($(version))"
  exit 0
fi
echo "==> $cmd: installing the Debian package $pkg with apt-get ($why)"
command -v apt-get >/dev/null || { echo "error: $cmd is missing and apt-get is not available" >&2; exit 1; }
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
command -v "$cmd" >/dev/null || { echo "error: $cmd did not install" >&2; exit 1; }
