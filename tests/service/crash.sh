#!/bin/bash
# tests/service/crash.sh BANK_SERVICE: the file store under a deposit load
# from 4 clients, each request with its own Idempotency-Key; kill -9 in the
# middle; a restart on the same directory. Every deposit acknowledged (200)
# is there: the balances hold at least the acknowledged deposits, and each
# acknowledged key sent again answers "duplicate": true. Then every other
# key is sent again: after that each balance is exactly the opening plus
# every deposit, each applied once.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
. "$here/load.sh"
test_deadline 100
dir=$TMP/store

start_service svc --store="file:$dir" --strategy=optimistic --workers=2
load_open "$svc_URL"
load_start "$svc_URL" 4 400
load_wait_acked 150 40
kill9_service svc
note "killed with $(load_acked) deposits acknowledged"
# Let the clients meet the dead server, then stop them.
sleep 0.5
load_stop
total=$(wc -l <"$TMP/load.log")
acked=$(awk '$4 == 200' "$TMP/load.log" | wc -l)
odd=$(awk '$4 != 200 && $4 != 000 && $4 != 503' "$TMP/load.log")
[ -z "$odd" ] || fail "answers other than 200, 503 or none under the load: $(echo "$odd" | head -n 5 | tr '\n' ';')"
dup=$(awk '$4 == 200 && $6 != "false"' "$TMP/load.log")
[ -z "$dup" ] || fail "first sends answered other than duplicate false: $(echo "$dup" | head -n 5 | tr '\n' ';')"
note "$total deposits sent, $acked acknowledged before the kill"

start_service svc2 --store="file:$dir" --strategy=optimistic --workers=2
check_acked_durable "$svc2_URL"
awk '$4 != 200' "$TMP/load.log" >"$TMP/unanswered.log"
resend "$svc2_URL" "$TMP/unanswered.log"
bad=$(awk '$2 != 200' "$TMP/unanswered.log.resent")
[ -z "$bad" ] || fail "unanswered keys sent again, not answered 200: $(echo "$bad" | head -n 5 | tr '\n' ';')"
applied=$(awk '$3 == "true"' "$TMP/unanswered.log.resent" | wc -l)
note "$(wc -l <"$TMP/unanswered.log") unanswered keys sent again: $applied had been applied before the kill"
check_exact "$svc2_URL"
stop_clean svc2
finish
