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
# KEY=VALUE lines for the tests (tests/fixtures/pg_env.c reads them). On failure
# STATE_DIR/unavailable holds the reason (and STATE_DIR/server-log and
# server-initdb.log the server's own words, when it got that far), and the
# exit status is 0 (the tests then report themselves skipped, with that
# reason) unless ESR_PG_REQUIRED=1, when it is 1.
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

# The server programs: the newest Debian version that has initdb (a newer
# client-only version may sit beside it), else pg_config's. Never a pg_ctl
# on PATH, which may be Debian's wrapper.
bindir() {
	d=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
	d=${d%/initdb}
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
		# The last lines, without their time stamps and process ids.
		reason="$reason; server log: $(tail -n 3 "$tmp/log" |
			sed 's/^[0-9-]* [0-9:.]* [A-Z]* \[[0-9]*\] //' | tr '\n' ' ')"
	fi
	# Leave nothing running or in /tmp: a server that started but does not
	# answer, and the cluster. Its logs stay in STATE_DIR for a look.
	case "${tmp:-}" in
	/tmp/esr-pg.*)
		as_server "$bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
		for f in initdb.log log; do
			[ -f "$tmp/$f" ] && cp "$tmp/$f" "$state/server-$f"
		done
		rm -rf "$tmp"
		;;
	esac
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
	tmp=""
	rm -f "$state/unavailable" "$state/server-initdb.log" "$state/server-log"
	bin=$(bindir) || unavailable "no PostgreSQL server programs (install Debian's postgresql)"
	runas=""
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || unavailable "running as root and there is no postgres user"
		runas=postgres
	fi
	tmp=$(mktemp -d /tmp/esr-pg.XXXXXX) || unavailable "cannot make a directory in /tmp"
	if [ -n "$runas" ]; then
		chown "$runas" "$tmp" || unavailable "cannot give $tmp to $runas"
	fi
	chmod 700 "$tmp"
	data=$tmp/data
	as_server "$bin/initdb" -D "$data" --auth=trust -U postgres --no-sync -E UTF8 --locale=C \
		>"$tmp/initdb.log" 2>&1 || unavailable "initdb failed: $(tail -n 2 "$tmp/initdb.log" | tr '\n' ' ')"
	as_server "$bin/pg_ctl" -D "$data" -l "$tmp/log" -w -t 60 -o "$(opts "$tmp")" start \
		>/dev/null 2>&1 || unavailable "the server did not start"
	conninfo="host=$tmp port=$port user=postgres dbname=postgres"
	# pg_ctl -w waited for it to accept connections; check that it answers.
	if [ -x "$bin/psql" ]; then
		out=$("$bin/psql" "$conninfo" -Atqc 'select 1' 2>&1) || true
		[ "$out" = 1 ] || unavailable "the server does not answer: $(echo "$out" | tail -n 1)"
	elif [ -x "$bin/pg_isready" ]; then
		out=$("$bin/pg_isready" -d "$conninfo" -t 10 2>&1) ||
			unavailable "the server does not answer: $out"
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
