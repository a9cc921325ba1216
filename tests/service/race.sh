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
#         finds exactly the acknowledged withdrawals. Optimistic with no
#         retry: the loser gets 409.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
mode=${2:-local}
test_deadline 100
ROUNDS=${ROUNDS:-100}

# open_all URL PREFIX: open PREFIX-1..ROUNDS with 500.
open_all() {
	local i
	batch_reset
	for i in $(seq 1 "$ROUNDS"); do
		batch_add "$i" POST "$1/accounts/$2-$i/open" '{"amount": 500}' -
	done
	batch_run
	for i in $(seq 1 "$ROUNDS"); do
		bload "$i"
		expect "open $2-$i" 200 balance=500 version=1 || return 1
	done
}

# warm URL PREFIX: read every account (so the process holds it).
warm() {
	local i
	get_accounts "$1" "$2" "$ROUNDS"
	for i in $(seq 1 "$ROUNDS"); do
		bload "$i"
		expect "GET $2-$i at $1" 200 balance=500 || return 1
	done
}

# final_strict URL PREFIX: every account reads balance 200, version 2.
final_strict() {
	local i
	get_accounts "$1" "$2" "$ROUNDS"
	for i in $(seq 1 "$ROUNDS"); do
		bload "$i"
		expect "final GET $2-$i" 200 balance=200 version=2 || true
	done
}

# race_split URL1 URL2 PREFIX strict|lenient: on each account two
# withdrawals of 300 at once, one to each URL (the order alternating; one URL
# twice for one process). The pairs go PAIRS at a time, all sent at once by
# one curl, each request on its own connection. Counts in OK (one 200, one
# 422), OVER (two 200s: a failure when strict) and ODD (anything else: a
# failure); acked[i] is the number of withdrawals acknowledged on account i.
PAIRS=${PAIRS:-10}
race_split() {
	local i first pair bodies c1 c2
	OK=0 OVER=0 ODD=0
	for first in $(seq 1 "$PAIRS" "$ROUNDS"); do
		batch_reset
		for i in $(seq "$first" $((first + PAIRS - 1))); do
			[ "$i" -le "$ROUNDS" ] || break
			if [ $((i % 2)) -eq 0 ]; then
				batch_add "$i.1" POST "$1/accounts/$3-$i/withdraw" '{"amount": 300}' -
				batch_add "$i.2" POST "$2/accounts/$3-$i/withdraw" '{"amount": 300}' -
			else
				batch_add "$i.1" POST "$2/accounts/$3-$i/withdraw" '{"amount": 300}' -
				batch_add "$i.2" POST "$1/accounts/$3-$i/withdraw" '{"amount": 300}' -
			fi
		done
		batch_run par
		for i in $(seq "$first" $((first + PAIRS - 1))); do
			[ "$i" -le "$ROUNDS" ] || break
			bload "$i.1"
			c1=$CODE bodies=$BODY
			bload "$i.2"
			c2=$CODE bodies="$bodies / $BODY"
			if [ "$c1" -le "$c2" ]; then pair="$c1 $c2"; else pair="$c2 $c1"; fi
			acked[$i]=0
			case $pair in
			"200 422") OK=$((OK + 1)) acked[$i]=1
				case $bodies in *'"code"'*) ;; *) fail "$3-$i: the 422 has no \"code\": $bodies" ;; esac ;;
			"200 200") OVER=$((OVER + 1)) acked[$i]=2
				[ "$4" = strict ] && fail "$3-$i: both withdrawals succeeded: $bodies" ;;
			*) ODD=$((ODD + 1))
				fail "$3-$i: statuses $pair, expected 200 and 422 (or two 200s unchecked): $bodies" ;;
			esac
		done
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
	stop_clean svc
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
stop_clean a
stop_clean b
# A fresh process replays the store: exactly the acknowledged withdrawals.
start_service c --store="$store" --strategy=optimistic --workers=2
get_accounts "$c_URL" "unc-$RUN" "$ROUNDS"
for i in $(seq 1 "$ROUNDS"); do
	n=${acked[$i]}
	bload "$i"
	expect "unchecked: replayed unc-$RUN-$i ($n withdrawal(s) acknowledged)" 200 \
		balance=$((500 - 300 * n)) version=$((1 + n)) || true
done
stop_clean c

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
stop_clean a
stop_clean b

# Optimistic with no retry (ESR_MAX_RETRIES=0): the loser of each race,
# deciding on the balance it holds, meets the conflict and has no retry left:
# 409 with "error", nothing stored.
ROUNDS=20
ESR_MAX_RETRIES=0 start_service a --store="$store" --strategy=optimistic --workers=2
ESR_MAX_RETRIES=0 start_service b --store="$store" --strategy=optimistic --workers=2
open_all "$a_URL" "nor-$RUN"
warm "$a_URL" "nor-$RUN"
warm "$b_URL" "nor-$RUN"
batch_reset
for i in $(seq 1 "$ROUNDS"); do
	batch_add "$i.1" POST "$a_URL/accounts/nor-$RUN-$i/withdraw" '{"amount": 300}' -
	batch_add "$i.2" POST "$b_URL/accounts/nor-$RUN-$i/withdraw" '{"amount": 300}' -
done
batch_run par
conflicts=0
for i in $(seq 1 "$ROUNDS"); do
	bload "$i.1"
	c1=$CODE b1=$BODY
	bload "$i.2"
	c2=$CODE b2=$BODY
	if [ "$c1" -le "$c2" ]; then pair="$c1 $c2"; else pair="$c2 $c1"; fi
	case $pair in
	"200 409")
		conflicts=$((conflicts + 1))
		case "$b1$b2" in *'"error"'*) ;; *) fail "nor-$RUN-$i: the 409 has no \"error\": $b1 / $b2" ;; esac
		;;
	*) fail "nor-$RUN-$i, no retries: statuses $pair, expected 200 and 409: $b1 / $b2" ;;
	esac
done
note "two processes, optimistic, no retries: $conflicts of $ROUNDS rounds one 200 + one 409"
final_strict "$a_URL" "nor-$RUN"
stop_clean a
stop_clean b
finish
