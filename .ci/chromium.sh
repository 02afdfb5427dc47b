#!/usr/bin/env bash
# Installs what the web console's browser tests need: Debian's chromium (only
# when /usr/bin/chromium is missing, so it is a no-op on a machine that has
# it). Run as root in CI, or with sudo available.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "chromium is missing and this is not root: run apt-get install -y chromium as root" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
