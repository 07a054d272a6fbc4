#!/usr/bin/env bash
# Installs Chromium (Debian package chromium) when it is missing: the
# console's browser tests (internal/console, chromedp) drive it. Needs root,
# as CI has; does nothing when chromium is already there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-chromium: chromium missing; run as root, or: sudo apt-get install -y chromium" >&2
  exit 1
fi
echo "install-chromium: installing chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
