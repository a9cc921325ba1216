#!/bin/sh
# A throwaway PostgreSQL server for the tests, from Debian's packages.
#
#   sh scripts/pg-server.sh start STATE_DIR    make a cluster and start it
#   sh scripts/pg-server.sh restart STATE_DIR  restart it (fast shutdown)
#   sh scripts/pg-server.sh stop STATE_DIR     stop it and remove it
#   sh scripts/pg-server.sh status STATE_DIR   exit 0 if it is running
#
# The cluster lives in a new directory under /tmp (the build tree may not be
# readable by the server's user) and listens only on a Unix socket there.
# initdb refuses to run as root, so as root the server runs as the `postgres`
# user that Debian's package creates. On success STATE_DIR/env holds
# KEY=VALUE lines for the tests (tests/pg_env.c reads them). On failure
# STATE_DIR/unavailable holds the reason, and the exit status is 0 (the
# tests then report themselves skipped, with that reason) unless
# ESR_PG_REQUIRED=1, when it is 1.
set -eu

verb=${1:-}
state=${2:-}
if [ -z "$verb" ] || [ -z "$state" ]; then
	echo "usage: sh scripts/pg-server.sh start|restart|stop|status STATE_DIR" >&2
	exit 2
fi
mkdir -p "$state"
state=$(cd "$state" && pwd)
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
port=5432

bindir() {
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ] && command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir)
	fi
	[ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

# Run a server program as the server's user.
as_server() {
	if [ -n "$runas" ]; then
		if command -v runuser >/dev/null 2>&1; then
			runuser -u "$runas" -- "$@"
		else
			su "$runas" -s /bin/sh -c '"$0" "$@"' -- "$@"
		fi
	else
		"$@"
	fi
}

get() { sed -n "s/^$1=//p" "$state/env" 2>/dev/null; }

opts() {
	echo "-c listen_addresses='' -c unix_socket_directories=$1 -p $port" \
		"-c max_connections=200 -c shared_buffers=128MB -c fsync=on"
}

unavailable() {
	reason=$1
	if [ -n "${tmp:-}" ] && [ -f "$tmp/log" ]; then
		reason="$reason; server log: $(tail -n 3 "$tmp/log" | tr '\n' ' ')"
	fi
	rm -f "$state/env"
	echo "$reason" >"$state/unavailable"
	echo "pg-server: $reason" >&2
	[ "${ESR_PG_REQUIRED:-0}" = 1 ] && exit 1
	exit 0
}

load() {
	[ -f "$state/env" ] || return 1
	bin=$(get ESR_PG_BIN)
	tmp=$(get ESR_PG_TMP)
	runas=$(get ESR_PG_RUNAS)
	data=$(get ESR_PG_DATA)
	[ -n "$bin" ] && [ -n "$data" ]
}

stop() {
	load || return 0
	as_server "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
		as_server "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	case "$tmp" in /tmp/esr-pg.*) rm -rf "$tmp" ;; esac
	rm -f "$state/env"
}

start() {
	stop # whatever a previous run left behind
	rm -f "$state/unavailable"
	bin=$(bindir) || unavailable "no PostgreSQL server programs (install Debian's postgresql)"
	runas=""
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || unavailable "running as root and there is no postgres user"
		runas=postgres
	fi
	tmp=$(mktemp -d /tmp/esr-pg.XXXXXX)
	[ -n "$runas" ] && chown "$runas" "$tmp"
	chmod 700 "$tmp"
	data=$tmp/data
	as_server "$bin/initdb" -D "$data" --auth=trust -U postgres --no-sync -E UTF8 --locale=C \
		>"$tmp/initdb.log" 2>&1 || unavailable "initdb failed: $(tail -n 2 "$tmp/initdb.log" | tr '\n' ' ')"
	as_server "$bin/pg_ctl" -D "$data" -l "$tmp/log" -w -t 60 -o "$(opts "$tmp")" start \
		>/dev/null 2>&1 || unavailable "the server did not start"
	conninfo="host=$tmp port=$port user=postgres dbname=postgres"
	if command -v psql >/dev/null 2>&1; then
		psql "$conninfo" -Atqc 'select 1' >/dev/null 2>&1 || unavailable "the server does not answer"
	fi
	{
		echo "ESR_PG_CONNINFO=$conninfo"
		echo "ESR_PG_DATA=$data"
		echo "ESR_PG_BIN=$bin"
		echo "ESR_PG_RUNAS=$runas"
		echo "ESR_PG_TMP=$tmp"
		echo "ESR_PG_SCRIPT=$script"
		echo "ESR_PG_STATE=$state"
	} >"$state/env"
	echo "pg-server: PostgreSQL running: $conninfo"
}

case "$verb" in
start) start ;;
stop) stop ;;
restart)
	load || { echo "pg-server: no server in $state" >&2; exit 1; }
	as_server "$bin/pg_ctl" -D "$data" -l "$tmp/log" -m fast -w -t 60 -o "$(opts "$tmp")" \
		restart >/dev/null
	;;
status)
	load || exit 1
	as_server "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
	;;
*)
	echo "pg-server: unknown verb '$verb'" >&2
	exit 2
	;;
esac
