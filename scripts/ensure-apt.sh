#!/usr/bin/env bash
# ensure-apt.sh COMMAND [PACKAGE]: installs the Debian package PACKAGE (default: COMMAND) with
# apt-get when COMMAND is not on the PATH: the package and what it depends on, without its
# recommended packages (chromium then brings its libraries and fonts, not a desktop), with
# apt's output kept to a one-line summary. CI may run as root (no sudo there) or as a user with
# sudo; with neither, it says so and fails.
set -euo pipefail
cmd=$1
pkg=${2:-$1}
command -v "$cmd" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "$cmd is missing, and neither root nor sudo can install $pkg" >&2
  exit 1
fi
echo "ensure-apt: installing $pkg (apt-get, --no-install-recommends) for $cmd" >&2
log=$(mktemp)
if ! { "${as_root[@]}" apt-get update -qq &&
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$pkg"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
echo "ensure-apt: $(grep -c '^Setting up' "$log" || true) packages set up" >&2
rm -f "$log"
