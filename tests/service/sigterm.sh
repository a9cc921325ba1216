#!/bin/bash
# tests/service/sigterm.sh BANK_SERVICE: the file store under a deposit load
# from 4 clients (one Idempotency-Key per request); SIGTERM in the middle.
# The service exits 0 within 30 s, having answered what it accepted. Every
# answer is 200, 503 (with Retry-After) or none at all (a connection refused
# or closed). After a restart on the same directory: every 200 is durable
# (as in crash.sh), and no request without a 200 took effect: each such key
# sent again answers "duplicate": false. Then each balance is exactly the
# opening plus every deposit.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
. "$here/load.sh"
test_deadline 100
dir=$TMP/store

start_service svc --store="file:$dir" --strategy=optimistic --workers=2
load_open "$svc_URL"
load_start "$svc_URL" 4 400
load_wait_acked 150 40
at=$(load_acked)
# A reader of the event stream, waiting at its end: the service ends it.
timeout 70 curl -sSN --max-time 60 "$svc_URL/events?from=0" >"$TMP/reader.sse" 2>/dev/null &
reader=$!
BG_PIDS="$BG_PIDS $reader"
sleep 0.3
t0=$SECONDS
stop_service svc TERM 30
[ "$STOP_RC" -eq 0 ] || fail "SIGTERM under load: exit $STOP_RC (124: still running after 30 s), expected 0; stderr: $(tail -n 20 "$TMP/svc.err")"
note "SIGTERM with $at deposits acknowledged; exited $STOP_RC after $((SECONDS - t0)) s"
for i in $(seq 1 50); do
	kill -0 "$reader" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$reader" 2>/dev/null; then
	fail "an event stream reader still connected 5 s after the service exited"
else
	grep -q '^id:' "$TMP/reader.sse" || fail "the event stream reader got no event before the stop"
fi
# The clients go on a moment against the stopped service, then stop.
sleep 0.5
load_stop
total=$(wc -l <"$TMP/load.log")
acked=$(awk '$4 == 200' "$TMP/load.log" | wc -l)
after=$((acked - at))
odd=$(awk '$4 != 200 && $4 != 000 && $4 != 503' "$TMP/load.log")
[ -z "$odd" ] || fail "answers other than 200, 503 or none: $(echo "$odd" | head -n 5 | tr '\n' ';')"
noretry=$(awk '$4 == 503 && $7 == "-" && $8 != "unknown"' "$TMP/load.log")
[ -z "$noretry" ] || fail "503 (not an unknown outcome) without Retry-After: $(echo "$noretry" | head -n 3 | tr '\n' ';')"
dup=$(awk '$4 == 200 && $6 != "false"' "$TMP/load.log")
[ -z "$dup" ] || fail "first sends answered other than duplicate false: $(echo "$dup" | head -n 5 | tr '\n' ';')"
note "$total deposits sent: $acked acknowledged ($after of them after the signal), $(awk '$4 == 503' "$TMP/load.log" | wc -l) answered 503, $(awk '$4 == "000"' "$TMP/load.log" | wc -l) without an answer"

start_service svc2 --store="file:$dir" --strategy=optimistic --workers=2
check_acked_durable "$svc2_URL"
# Curl's own time limit (exit 28) says nothing of the server, and a 503 with
# "outcome": "unknown" says it does not know: such a request may have been
# applied. Every other one without a 200 must not have been.
awk '$4 != 200' "$TMP/load.log" >"$TMP/unanswered.log"
resend "$svc2_URL" "$TMP/unanswered.log"
bad=$(awk '$2 != 200' "$TMP/unanswered.log.resent")
[ -z "$bad" ] || fail "unanswered keys sent again, not answered 200: $(echo "$bad" | head -n 5 | tr '\n' ';')"
awk 'NR == FNR { if ($5 == 28 || $8 == "unknown") timed[$1] = 1; next } $3 == "true" && !($1 in timed)' \
	"$TMP/unanswered.log" "$TMP/unanswered.log.resent" >"$TMP/applied_unanswered"
if [ -s "$TMP/applied_unanswered" ]; then
	fail "requests that got no 200 were applied (the service took them and did not answer): $(head -n 5 "$TMP/applied_unanswered" | tr '\n' ';') ; their first answers: $(awk 'NR == FNR { k[$1] = 1; next } $1 in k' "$TMP/applied_unanswered" "$TMP/load.log" | head -n 5 | tr '\n' ';')"
fi
check_exact "$svc2_URL"
stop_clean svc2
finish
