#!/bin/bash
# tests/service/pg_faults.sh BANK_SERVICE: the database goes away under the
# service and comes back. While it is down a deposit is answered within a
# bound with 500, or 503 with "outcome": "unknown" (never 200, never a
# hang), and the service keeps answering /healthz. Once the server is back
# the same key sent again is answered 200, the service takes new commands,
# and the account holds each deposit exactly once.
# Needs the throwaway server of the `pg` fixture (it stops and restarts it).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
test_deadline 100
pg_conninfo
envf=${ESR_PG_ENV:-}
get() { sed -n "s/^$1=//p" "$envf" 2>/dev/null; }
pg_bin=$(get ESR_PG_BIN) pg_data=$(get ESR_PG_DATA) pg_runas=$(get ESR_PG_RUNAS)
pg_script=$(get ESR_PG_SCRIPT) pg_state=$(get ESR_PG_STATE)
if [ -z "$pg_bin" ] || [ -z "$pg_data" ] || [ -z "$pg_script" ]; then
	[ "${ESR_PG_REQUIRED:-0}" = 1 ] && die "the PostgreSQL server is not the fixture's: cannot stop it"
	echo "SKIP: the PostgreSQL server is not the fixture's: cannot stop it" >&2
	exit 77
fi
as_server=()
[ -n "$pg_runas" ] && as_server=(runuser -u "$pg_runas" --)
# Whatever happens, the server runs again when the test ends.
pg_down=0
restore() {
	[ "$pg_down" = 1 ] && timeout 90 sh "$pg_script" restart "$pg_state" >/dev/null 2>&1
	cleanup
}
trap restore EXIT

store="postgres:$PG_CONNINFO"
start_service svc --store="$store" --strategy=optimistic --workers=2
a=fault-$RUN
req POST "$svc_URL/accounts/$a/open" '{"amount": 100}'
expect "open" 200 version=1 balance=100 || die "cannot open the account"
req POST "$svc_URL/accounts/$a/deposit" '{"amount": 10}' "Idempotency-Key: k1-$RUN"
expect "deposit before the fault" 200 version=2 balance=110

# Down: an immediate stop, as a crash of the database would be.
pg_down=1
timeout 60 "${as_server[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 ||
	die "cannot stop the PostgreSQL server"
t0=$SECONDS
req POST "$svc_URL/accounts/$a/deposit" '{"amount": 20}' "Idempotency-Key: k2-$RUN"
took=$((SECONDS - t0))
case $CODE in
500) jget error; [ -n "$JV" ] || fail "the 500 while the database is down has no \"error\": $BODY" ;;
503) jget outcome; [ "$JV" = unknown ] || note "503 while the database is down: $BODY" ;;
*) fail "a deposit while the database is down: status $CODE (curl $CURL_RC) after $took s, expected 500 or 503: $BODY" ;;
esac
note "a deposit while the database is down: $CODE after $took s: $BODY"
req GET "$svc_URL/healthz"
expect "GET /healthz while the database is down" 200
kill -0 "$svc_PID" 2>/dev/null || die "the service died with the database: $(tail -n 20 "$TMP/svc.err")"

# Back.
timeout 90 sh "$pg_script" restart "$pg_state" >/dev/null 2>&1 || die "cannot restart the PostgreSQL server"
pg_down=0
t0=$SECONDS
while :; do
	req POST "$svc_URL/accounts/$a/deposit" '{"amount": 20}' "Idempotency-Key: k2-$RUN"
	[ "$CODE" = 200 ] && break
	case $CODE in
	500 | 503) ;;
	*) fail "k2 sent again once the database is back: status $CODE, expected 200 (or, for a while, 500/503): $BODY"; break ;;
	esac
	[ $((SECONDS - t0)) -ge 30 ] && { fail "30 s after the database came back, k2 still gets $CODE: $BODY"; break; }
	sleep 0.5
done
note "k2 answered $CODE $((SECONDS - t0)) s after the database came back: $BODY"
req POST "$svc_URL/accounts/$a/deposit" '{"amount": 40}' "Idempotency-Key: k3-$RUN"
expect "a new deposit once the database is back" 200 duplicate=false
req POST "$svc_URL/accounts/$a/deposit" '{"amount": 20}' "Idempotency-Key: k2-$RUN"
expect "k2 once more" 200 duplicate=true
stop_clean svc
# What the store holds, through a fresh process: each deposit once.
start_service fresh --store="$store" --strategy=optimistic --workers=2
req GET "$fresh_URL/accounts/$a"
expect "the account in the store" 200 version=4 balance=170
stop_clean fresh
finish
