#!/bin/bash
# tests/service/race.sh BANK_SERVICE local|pg: two withdrawals of 300 from a
# balance of 500, sent at once, on 100 accounts.
#  local: one process, in memory, optimistic: each time exactly one gets 200
#         and the other 422; every balance ends at 200.
#  pg:    two processes on one PostgreSQL database, each pair split across
#         them, both processes having read the account first (so each holds
#         it). Optimistic: exactly one 200 and one 422 each time. Unchecked:
#         the overdraft may show (counted and reported, not a failure); every
#         answer is still 200 or 422, and a fresh process reading the store
#         finds exactly the acknowledged withdrawals.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
mode=${2:-local}
test_deadline 100
ROUNDS=${ROUNDS:-100}

# open_all URL PREFIX: open PREFIX-1..ROUNDS with 500.
open_all() {
	local i
	for i in $(seq 1 "$ROUNDS"); do
		req POST "$1/accounts/$2-$i/open" '{"amount": 500}'
		expect "open $2-$i" 200 balance=500 version=1 || return 1
		past_deadline && die "past the deadline while opening accounts"
	done
}

# warm URL PREFIX: read every account (so the process holds it).
warm() {
	local i
	for i in $(seq 1 "$ROUNDS"); do
		req GET "$1/accounts/$2-$i"
		expect "GET $2-$i at $1" 200 balance=500 || return 1
	done
}

# withdraw_pair URL1 URL2 ACCOUNT: two withdrawals of 300 at once, one to
# each URL; sets PAIR to the two statuses, sorted ("200 422").
withdraw_pair() {
	local c1 c2
	timeout 20 curl -sS -o "$TMP/w1.body" -w '%{http_code}' --max-time 15 -X POST \
		-H 'Content-Type: application/json' --data-binary '{"amount": 300}' \
		"$1/accounts/$3/withdraw" >"$TMP/w1.code" 2>/dev/null &
	local p1=$!
	timeout 20 curl -sS -o "$TMP/w2.body" -w '%{http_code}' --max-time 15 -X POST \
		-H 'Content-Type: application/json' --data-binary '{"amount": 300}' \
		"$2/accounts/$3/withdraw" >"$TMP/w2.code" 2>/dev/null &
	local p2=$!
	wait "$p1" "$p2"
	c1=$(cat "$TMP/w1.code")
	c2=$(cat "$TMP/w2.code")
	PAIR=$(printf '%s\n%s\n' "${c1:-000}" "${c2:-000}" | sort | tr '\n' ' ' | sed 's/ $//')
	PAIR_BODIES="$(cat "$TMP/w1.body") / $(cat "$TMP/w2.body")"
}

# final_strict URL PREFIX: every account reads balance 200, version 2.
final_strict() {
	local i
	for i in $(seq 1 "$ROUNDS"); do
		req GET "$1/accounts/$2-$i"
		expect "final GET $2-$i" 200 balance=200 version=2 || true
	done
}

# race_split URL1 URL2 PREFIX strict|lenient: the rounds, each pair split
# across the two URLs (the order alternating; one URL twice for one
# process). Counts in OK (one 200, one 422), OVER (two 200s: a failure when
# strict) and ODD (anything else: a failure); acked[i] is the number of
# withdrawals acknowledged on account i.
race_split() {
	local i
	OK=0 OVER=0 ODD=0
	for i in $(seq 1 "$ROUNDS"); do
		if [ $((i % 2)) -eq 0 ]; then
			withdraw_pair "$1" "$2" "$3-$i"
		else
			withdraw_pair "$2" "$1" "$3-$i"
		fi
		acked[$i]=0
		case $PAIR in
		"200 422") OK=$((OK + 1)) acked[$i]=1
			case $PAIR_BODIES in *'"code"'*) ;; *) fail "$3-$i: the 422 has no \"code\": $PAIR_BODIES" ;; esac ;;
		"200 200") OVER=$((OVER + 1)) acked[$i]=2
			[ "$4" = strict ] && fail "$3-$i: both withdrawals succeeded: $PAIR_BODIES" ;;
		*) ODD=$((ODD + 1))
			fail "$3-$i: statuses $PAIR, expected 200 and 422 (or two 200s unchecked): $PAIR_BODIES" ;;
		esac
		past_deadline && die "past the deadline after $i rounds"
	done
}
declare -a acked

if [ "$mode" = local ]; then
	start_service svc --store=memory --strategy=optimistic --workers=2
	open_all "$svc_URL" "race-$RUN"
	race_split "$svc_URL" "$svc_URL" "race-$RUN" strict
	note "one process, optimistic: $OK rounds one 200 + one 422, $OVER overdrafts, $ODD other"
	final_strict "$svc_URL" "race-$RUN"
	stop_service svc TERM 30
	[ "$STOP_RC" -eq 0 ] || fail "SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/svc.err")"
	finish
fi

[ "$mode" = pg ] || die "mode '$mode': expected local or pg"
pg_conninfo
store="postgres:$PG_CONNINFO"

# Unchecked: both processes hold the account at balance 500.
start_service a --store="$store" --strategy=unchecked --workers=2
start_service b --store="$store" --strategy=unchecked --workers=2
open_all "$a_URL" "unc-$RUN"
warm "$a_URL" "unc-$RUN"
warm "$b_URL" "unc-$RUN"
race_split "$a_URL" "$b_URL" "unc-$RUN" lenient
note "two processes, unchecked: $OVER of $ROUNDS rounds overdrawn (both withdrawals 200), $OK one 200 + one 422, $ODD other"
stop_service a TERM 30
[ "$STOP_RC" -eq 0 ] || fail "a: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/a.err")"
stop_service b TERM 30
[ "$STOP_RC" -eq 0 ] || fail "b: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/b.err")"
# A fresh process replays the store: exactly the acknowledged withdrawals.
start_service c --store="$store" --strategy=optimistic --workers=2
for i in $(seq 1 "$ROUNDS"); do
	n=${acked[$i]}
	req GET "$c_URL/accounts/unc-$RUN-$i"
	expect "unchecked: replayed unc-$RUN-$i ($n withdrawal(s) acknowledged)" 200 \
		balance=$((500 - 300 * n)) version=$((1 + n)) || true
done
stop_service c TERM 30
[ "$STOP_RC" -eq 0 ] || fail "c: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/c.err")"

# Optimistic, the same: never an overdraft.
start_service a --store="$store" --strategy=optimistic --workers=2
start_service b --store="$store" --strategy=optimistic --workers=2
open_all "$a_URL" "opt-$RUN"
warm "$a_URL" "opt-$RUN"
warm "$b_URL" "opt-$RUN"
race_split "$a_URL" "$b_URL" "opt-$RUN" strict
note "two processes, optimistic: $OK rounds one 200 + one 422, $OVER overdrafts, $ODD other"
final_strict "$a_URL" "opt-$RUN"
final_strict "$b_URL" "opt-$RUN"
stop_service a TERM 30
[ "$STOP_RC" -eq 0 ] || fail "a: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/a.err")"
stop_service b TERM 30
[ "$STOP_RC" -eq 0 ] || fail "b: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/b.err")"
finish
