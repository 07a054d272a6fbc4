#!/usr/bin/env bash
# Stop (and with --rm, delete) a cluster started by start.sh.
#   scripts/postgres/stop.sh DIR [--rm]
set -euo pipefail
DIR=${1:?usage: stop.sh DIR [--rm]}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -1)
[ -n "$BIN" ] || BIN=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
if [ "$(id -u)" -eq 0 ]; then
	su postgres -s /bin/sh -c "'$BIN/pg_ctl' -D '$DIR/data' -m fast -w stop" >&2 || true
else
	"$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
fi
if [ "${2:-}" = "--rm" ]; then
	rm -rf "$DIR"
fi
