#!/bin/bash
# tests/service/idempotency.sh BANK_SERVICE local|pg: one deposit sent twice
# at once with the same Idempotency-Key, then once more after both answered,
# on 20 accounts.
#  local: one process, in memory.
#  pg:    two processes on one PostgreSQL database (optimistic), the two
#         concurrent sends split across them and the later ones sent to
#         both; the store is then read by a fresh process.
# Each time: both concurrent sends get 200, exactly one with "duplicate":
# false; every later send gets 200 with "duplicate": true; the account holds
# one deposit (version 2, balance 1100) and the event stream shows two events
# for it (opened, deposited). A duplicate's answer carries the first run's
# version (2).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
mode=${2:-local}
test_deadline 100
ROUNDS=${ROUNDS:-20}

# rounds URL1 URL2 PREFIX: open PREFIX-1..ROUNDS with 1000; read each through
# both URLs (so both processes hold it); then for every account at once the
# concurrent pair (one send to each URL, all sent together by one curl);
# then one more send to each URL; then read each back through URL1.
rounds() {
	local i u c1 c2 b1 b2 d1 d2 acct key
	batch_reset
	for i in $(seq 1 "$ROUNDS"); do
		batch_add "$i" POST "$1/accounts/$3-$i/open" '{"amount": 1000}' -
	done
	batch_run
	for i in $(seq 1 "$ROUNDS"); do
		bload "$i"
		expect "open $3-$i" 200 version=1 balance=1000 || die "cannot open the accounts"
	done
	batch_reset
	for i in $(seq 1 "$ROUNDS"); do
		batch_add "$i.a" GET "$1/accounts/$3-$i" - -
		batch_add "$i.b" GET "$2/accounts/$3-$i" - -
	done
	batch_run
	for i in $(seq 1 "$ROUNDS"); do
		for u in a b; do
			bload "$i.$u"
			expect "GET $3-$i ($u) before the race" 200 version=1 balance=1000
		done
	done
	# The race: every pair at once, each request on its own connection.
	batch_reset
	for i in $(seq 1 "$ROUNDS"); do
		batch_add "$i.1" POST "$1/accounts/$3-$i/deposit" '{"amount": 100}' "key-$3-$i"
		batch_add "$i.2" POST "$2/accounts/$3-$i/deposit" '{"amount": 100}' "key-$3-$i"
	done
	batch_run par
	for i in $(seq 1 "$ROUNDS"); do
		acct=$3-$i key=key-$3-$i
		bload "$i.1"
		c1=$CODE b1=$BODY
		bload "$i.2"
		c2=$CODE b2=$BODY
		if [ "$c1" != 200 ] || [ "$c2" != 200 ]; then
			fail "$acct: the concurrent sends of $key got $c1 and $c2, expected 200 and 200: $b1 / $b2"
			continue
		fi
		jget duplicate "$b1"
		d1=$JV
		jget duplicate "$b2"
		d2=$JV
		case "$d1 $d2" in
		"false true" | "true false") ;;
		*) fail "$acct: the concurrent sends of $key answered duplicate $d1 and $d2, expected one false, one true: $b1 / $b2" ;;
		esac
	done
	# Later sends, after both answered: duplicates, through either process.
	batch_reset
	for i in $(seq 1 "$ROUNDS"); do
		batch_add "$i.1" POST "$1/accounts/$3-$i/deposit" '{"amount": 100}' "key-$3-$i"
		batch_add "$i.2" POST "$2/accounts/$3-$i/deposit" '{"amount": 100}' "key-$3-$i"
		batch_add "$i.g" GET "$1/accounts/$3-$i" - -
	done
	batch_run
	for i in $(seq 1 "$ROUNDS"); do
		for u in 1 2; do
			bload "$i.$u"
			expect "$3-$i: key-$3-$i sent again ($u) after both answered" 200 duplicate=true version=2
		done
		bload "$i.g"
		expect "$3-$i: GET after the sends" 200 version=2 balance=1100
	done
}

# check_events URL PREFIX: the stream from 0 holds exactly two events for
# each account (its opening and one deposit).
check_events() {
	local i n
	timeout 20 curl -sSN --max-time 2 "$1/events?from=0" >"$TMP/events.sse" 2>"$TMP/events.err"
	grep -q '^id:' "$TMP/events.sse" || { fail "/events?from=0 gave no event: $(head -c 300 "$TMP/events.sse")"; return; }
	for i in $(seq 1 "$ROUNDS"); do
		# The account's name ends in -i: a whole-word match of it.
		n=$(grep '^data:' "$TMP/events.sse" | grep -c -- "\"$2-$i\"")
		[ "$n" -eq 2 ] || fail "/events: $n events name $2-$i, expected 2 (opened, one deposit)"
	done
}

if [ "$mode" = local ]; then
	start_service svc --store=memory --strategy=optimistic --workers=2
	rounds "$svc_URL" "$svc_URL" "idem-$RUN"
	check_events "$svc_URL" "idem-$RUN"
	stop_clean svc
	finish
fi

[ "$mode" = pg ] || die "mode '$mode': expected local or pg"
pg_conninfo
store="postgres:$PG_CONNINFO"
start_service a --store="$store" --strategy=optimistic --workers=2
start_service b --store="$store" --strategy=optimistic --workers=2
rounds "$a_URL" "$b_URL" "idem-$RUN"
stop_clean a
stop_clean b
# What the store holds, through a process that never saw the requests.
start_service c --store="$store" --strategy=optimistic --workers=2
for i in $(seq 1 "$ROUNDS"); do
	req GET "$c_URL/accounts/idem-$RUN-$i"
	expect "fresh process: idem-$RUN-$i" 200 version=2 balance=1100
	req POST "$c_URL/accounts/idem-$RUN-$i/deposit" '{"amount": 100}' "Idempotency-Key: key-idem-$RUN-$i"
	expect "fresh process: key-idem-$RUN-$i sent again" 200 duplicate=true
done
check_events "$c_URL" "idem-$RUN"
stop_clean c
finish
