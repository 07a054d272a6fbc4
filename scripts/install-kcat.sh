#!/usr/bin/env bash
# Installs kcat (Debian package kcat) and curl from Debian's packages when
# they are missing: the README walkthrough (scripts/readme-walkthrough.sh),
# scripts/kcat-demo.sh and the kcat end-to-end test use them. Needs root,
# as CI has; does nothing when both are there.
set -euo pipefail
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-kcat: ${missing[*]} missing; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "install-kcat: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
command -v kcat >/dev/null && command -v curl >/dev/null
