#!/usr/bin/env bash
# ensure-apt.sh COMMAND [PACKAGE]: installs the Debian package PACKAGE (default: COMMAND) with
# apt-get when COMMAND is not on the PATH. CI may run as root (no sudo there) or as a user
# with sudo; with neither, it says so and fails.
set -euo pipefail
cmd=$1
pkg=${2:-$1}
command -v "$cmd" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"
elif command -v sudo >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"
else
  echo "$cmd is missing, and neither root nor sudo can install $pkg" >&2
  exit 1
fi
