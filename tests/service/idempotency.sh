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
# for it (opened, deposited).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
mode=${2:-local}
test_deadline 100
ROUNDS=${ROUNDS:-20}

# send URL ACCOUNT KEY OUT: a deposit of 100 with KEY, in the background;
# status then body in OUT.
send() {
	timeout 20 curl -sS -o "$4.body" -w '%{http_code}' --max-time 15 -X POST \
		-H 'Content-Type: application/json' -H "Idempotency-Key: $3" \
		--data-binary '{"amount": 100}' "$1/accounts/$2/deposit" >"$4.code" 2>/dev/null &
	SENT_PID=$!
}

# round URL1 URL2 ACCOUNT: the concurrent pair (URL1, URL2), then one more to
# each URL.
round() {
	local acct=$3 key="key-$3" p1 p2 c1 c2 d1 d2 b1 b2 u
	req POST "$1/accounts/$acct/open" '{"amount": 1000}'
	expect "open $acct" 200 version=1 balance=1000 || return
	# Both processes hold the account before the race.
	for u in "$1" "$2"; do
		req GET "$u/accounts/$acct"
		expect "GET $acct before the race" 200 version=1 balance=1000 || return
	done
	send "$1" "$acct" "$key" "$TMP/p1"
	p1=$SENT_PID
	send "$2" "$acct" "$key" "$TMP/p2"
	p2=$SENT_PID
	wait "$p1" "$p2"
	c1=$(cat "$TMP/p1.code") c2=$(cat "$TMP/p2.code")
	b1=$(cat "$TMP/p1.body") b2=$(cat "$TMP/p2.body")
	if [ "$c1" != 200 ] || [ "$c2" != 200 ]; then
		fail "$acct: the concurrent sends of $key got $c1 and $c2, expected 200 and 200: $b1 / $b2"
		return
	fi
	d1=$(jfield duplicate "$b1") d2=$(jfield duplicate "$b2")
	case "$d1 $d2" in
	"false true" | "true false") ;;
	*) fail "$acct: the concurrent sends of $key answered duplicate $d1 and $d2, expected one false, one true: $b1 / $b2" ;;
	esac
	for u in "$1" "$2"; do
		req POST "$u/accounts/$acct/deposit" '{"amount": 100}' "Idempotency-Key: $key"
		expect "$acct: $key sent again after both answered" 200 duplicate=true
	done
	req GET "$1/accounts/$acct"
	expect "$acct: GET after the sends" 200 version=2 balance=1100
	past_deadline && die "past the deadline at $acct"
}

# check_events URL PREFIX: the stream from 0 holds exactly two events for
# each account (its opening and one deposit).
check_events() {
	local i n
	timeout 20 curl -sSN --max-time 4 "$1/events?from=0" >"$TMP/events.sse" 2>"$TMP/events.err"
	grep -q '^id:' "$TMP/events.sse" || { fail "/events?from=0 gave no event: $(head -c 300 "$TMP/events.sse")"; return; }
	for i in $(seq 1 "$ROUNDS"); do
		# The account's name ends in -i: a whole-word match of it.
		n=$(grep '^data:' "$TMP/events.sse" | grep -c -- "\"$2-$i\"")
		[ "$n" -eq 2 ] || fail "/events: $n events name $2-$i, expected 2 (opened, one deposit)"
	done
}

if [ "$mode" = local ]; then
	start_service svc --store=memory --strategy=optimistic --workers=2
	for i in $(seq 1 "$ROUNDS"); do
		round "$svc_URL" "$svc_URL" "idem-$RUN-$i"
	done
	check_events "$svc_URL" "idem-$RUN"
	stop_service svc TERM 30
	[ "$STOP_RC" -eq 0 ] || fail "SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/svc.err")"
	finish
fi

[ "$mode" = pg ] || die "mode '$mode': expected local or pg"
pg_conninfo
store="postgres:$PG_CONNINFO"
start_service a --store="$store" --strategy=optimistic --workers=2
start_service b --store="$store" --strategy=optimistic --workers=2
for i in $(seq 1 "$ROUNDS"); do
	if [ $((i % 2)) -eq 0 ]; then
		round "$a_URL" "$b_URL" "idem-$RUN-$i"
	else
		round "$b_URL" "$a_URL" "idem-$RUN-$i"
	fi
done
stop_service a TERM 30
[ "$STOP_RC" -eq 0 ] || fail "a: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/a.err")"
stop_service b TERM 30
[ "$STOP_RC" -eq 0 ] || fail "b: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/b.err")"
# What the store holds, through a process that never saw the requests.
start_service c --store="$store" --strategy=optimistic --workers=2
for i in $(seq 1 "$ROUNDS"); do
	req GET "$c_URL/accounts/idem-$RUN-$i"
	expect "fresh process: idem-$RUN-$i" 200 version=2 balance=1100
	req POST "$c_URL/accounts/idem-$RUN-$i/deposit" '{"amount": 100}' "Idempotency-Key: key-idem-$RUN-$i"
	expect "fresh process: key-idem-$RUN-$i sent again" 200 duplicate=true
done
check_events "$c_URL" "idem-$RUN"
stop_service c TERM 30
[ "$STOP_RC" -eq 0 ] || fail "c: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/c.err")"
finish
