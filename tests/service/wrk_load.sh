#!/bin/bash
# tests/service/wrk_load.sh BANK_SERVICE: the service under a real load
# tool. On one HTTP thread, wrk opens 128 connections at once against
# /healthz, twice; on two, 256 connections of deposits (bench/service/
# deposit.lua) to 100 accounts, twice. Every request must be answered 200,
# no connection dropped or timed out, and after the deposits the balances
# must add up to what the 200s say. A burst of connections once left
# requests unread until the 5 s idle timeout closed them (see http.c): each
# run lasts 7 s so that such a stall shows as wrk's read errors and
# timeouts. The test is bounded by its deadline.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
test_deadline 100
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (scripts/install-deps.sh installs it)"
lua=$here/../../bench/service/deposit.lua
ACCOUNTS=100

# wrk_run NAME THREADS CONNECTIONS ARGS...: run wrk (bounded), check its
# errors; sets REQS to the requests it completed.
wrk_run() {
	local name=$1 t=$2 c=$3 out
	shift 3
	out=$TMP/$name.wrk
	ACCOUNTS=$ACCOUNTS timeout 40 wrk -t"$t" -c"$c" -d7s --timeout 10s "$@" >"$out" 2>&1 ||
		fail "$name: wrk failed: $(tail -n 3 "$out")"
	REQS=$(awk '/requests in/ { print $1 }' "$out")
	[ -n "$REQS" ] && [ "$REQS" -gt 0 ] || fail "$name: no requests completed: $(cat "$out")"
	if grep -qE 'Socket errors|Non-2xx' "$out"; then
		fail "$name: $(grep -E 'Socket errors|Non-2xx' "$out" | tr -s ' ' | tr '\n' ' ')"
	fi
}

start_service one --store=memory --workers=2 --http-threads=1
for k in 1 2; do
	wrk_run "healthz-$k" 1 128 "$one_URL/healthz"
done
stop_clean one

start_service two --store=memory --workers=2 --http-threads=2
url=$two_URL
batch_reset
for i in $(seq 0 $((ACCOUNTS - 1))); do
	batch_add "$i" POST "$url/accounts/acct-$i/open" '{"amount": 0}' -
done
batch_run
for i in $(seq 0 $((ACCOUNTS - 1))); do
	bload "$i"
	expect "open acct-$i" 200 balance=0 || break
done
total=0
for k in 1 2; do
	wrk_run "deposits-$k" 2 256 -s "$lua" "$url"
	total=$((total + REQS))
done
# Every deposit wrk counted was answered 200 (checked above): the
# balances hold each of them, and wrk's requests in flight at the end of
# a run, which it does not count, may add a few.
sum=0
batch_reset
for i in $(seq 0 $((ACCOUNTS - 1))); do
	batch_add "$i" GET "$url/accounts/acct-$i" - -
done
batch_run
for i in $(seq 0 $((ACCOUNTS - 1))); do
	bload "$i"
	expect "GET acct-$i" 200 || break
	sum=$((sum + $(jfield balance)))
done
[ "$sum" -ge "$total" ] && [ "$sum" -le $((total + 2 * 256)) ] ||
	fail "balances add up to $sum, wrk counted $total deposits answered"
note "$total deposits, balances add up to $sum"
stop_clean two
past_deadline && die "past the deadline"
finish
