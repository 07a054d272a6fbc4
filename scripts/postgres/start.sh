#!/usr/bin/env bash
# Start a private PostgreSQL cluster for the `smartgroups bench --postgres`
# comparator and print its DSN on stdout (the last line).
#
#   dsn=$(scripts/postgres/start.sh [DIR])      # DIR default: a new temp dir
#   smartgroups bench --quick --postgres "$dsn"
#   scripts/postgres/stop.sh DIR                # DIR is printed on stderr
#
# Installs PostgreSQL from Debian packages when initdb is missing (needs
# root), creates the cluster under DIR on a free loopback port, owned by a
# non-root user (postgres when run as root), with trust authentication on
# 127.0.0.1 only. Nothing outside DIR is touched besides the package.
set -euo pipefail

find_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && { echo "$d"; return 0; }
	done
	if command -v initdb >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v initdb)")"
		return 0
	fi
	return 1
}

if ! BIN=$(find_bin); then
	if [ "$(id -u)" -ne 0 ]; then
		echo "start.sh: PostgreSQL is not installed and installing it needs root" >&2
		exit 1
	fi
	echo "start.sh: installing PostgreSQL from Debian packages" >&2
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
	BIN=$(find_bin)
fi

DIR=${1:-$(mktemp -d /tmp/smartgroups-pg.XXXXXX)}
mkdir -p "$DIR"

# A free port: ask the kernel for one.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo 54329)

RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
	# initdb and postgres refuse to run as root.
	if ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir "$DIR" --shell /usr/sbin/nologin postgres
	fi
	chown -R postgres "$DIR"
	chmod 700 "$DIR"
	RUNAS=(su postgres -s /bin/sh -c)
else
	RUNAS=(sh -c)
fi

if [ ! -f "$DIR/data/PG_VERSION" ]; then
	"${RUNAS[@]}" "'$BIN/initdb' -D '$DIR/data' -U postgres -A trust -E UTF8 --no-locale" >"$DIR/initdb.log" 2>&1 || {
		cat "$DIR/initdb.log" >&2
		exit 1
	}
fi
"${RUNAS[@]}" "'$BIN/pg_ctl' -D '$DIR/data' -l '$DIR/postgres.log' -w -t 60 \
	-o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1 -c fsync=on -c shared_buffers=256MB\" start" >&2 || {
	cat "$DIR/postgres.log" >&2
	exit 1
}
echo "$PORT" >"$DIR/port"
echo "start.sh: PostgreSQL running in $DIR on 127.0.0.1:$PORT; stop with scripts/postgres/stop.sh $DIR" >&2
echo "postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
