#!/bin/bash
# tests/service/endpoints.sh BANK_SERVICE: every endpoint and every error
# the service can be made to give on demand, with exact status codes and the
# body's key fields; the command line (--help, a bad flag); /metrics as
# Prometheus text; read-your-writes; the event stream and its resumption.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
test_deadline 90

# --- the command line ---------------------------------------------------------
timeout 10 "$SVC_BIN" --help >"$TMP/help" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "--help exited $rc, expected 0"
for flag in listen store strategy workers; do
	grep -q -- "--$flag" "$TMP/help" || fail "--help does not mention --$flag"
done
bad_flag() {
	local flag=$1 rc
	shift
	timeout 10 "$SVC_BIN" "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "$*: exit $rc, expected 2 (stderr: $(head -c 300 "$TMP/bad.err"))"
	grep -q -- "$flag" "$TMP/bad.err" || fail "$*: stderr does not name $flag: $(head -c 300 "$TMP/bad.err")"
	grep -q "listening on" "$TMP/bad.out" && fail "$*: it started listening"
}
bad_flag --bogus --listen=127.0.0.1:0 --store=memory --bogus
bad_flag --strategy --listen=127.0.0.1:0 --store=memory --strategy=pessimistic
bad_flag --store --listen=127.0.0.1:0 --store=nosuchkind:x
bad_flag --workers --listen=127.0.0.1:0 --store=memory --workers=-1
bad_flag --listen --listen=nohostnoport --store=memory

# --- a service on a free port, in memory ---------------------------------------
start_service svc --store=memory --strategy=optimistic --workers=2 --max-streams=8
url=$svc_URL
note "service at $url"
events=0 # events the service must have stored, for the stream's check

req GET "$url/healthz"
expect "GET /healthz" 200
[ "$(printf '%s' "$BODY" | tr -d '\r\n')" = ok ] || fail "GET /healthz: body '$BODY', expected ok"

a=acct-$RUN
req GET "$url/accounts/$a"
expect "GET a never opened account" 404 && [ -n "$(jfield error)" ] ||
	fail "GET a never opened account: no \"error\": $BODY"

req POST "$url/accounts/$a/open" '{"amount": 100}'
expect "open" 200 account="$a" version=1 balance=100 duplicate=false && events=$((events + 1))
req GET "$url/accounts/$a"
expect "GET after open" 200 account="$a" version=1 balance=100 open=true

# Read-your-writes: each GET right after a POST shows it.
for i in 1 2 3 4 5; do
	req POST "$url/accounts/$a/deposit" '{"amount": 50}'
	expect "deposit $i" 200 account="$a" version=$((1 + i)) balance=$((100 + 50 * i)) duplicate=false &&
		events=$((events + 1))
	req GET "$url/accounts/$a"
	expect "GET after deposit $i" 200 version=$((1 + i)) balance=$((100 + 50 * i))
done
req POST "$url/accounts/$a/withdraw" '{"amount": 30}'
expect "withdraw" 200 version=7 balance=320 duplicate=false && events=$((events + 1))
req GET "$url/accounts/$a"
expect "GET after withdraw" 200 version=7 balance=320 open=true

# --- rejections: 422 with a code and a reason, nothing stored ------------------
rejected() {
	local what=$1
	expect "$what" 422 || return
	[ -n "$(jfield error)" ] || fail "$what: no \"error\": $BODY"
	[ -n "$(jfield code)" ] || fail "$what: no \"code\": $BODY"
	[ -n "$(jfield reason)" ] || fail "$what: no \"reason\": $BODY"
}
req POST "$url/accounts/$a/withdraw" '{"amount": 321}'
rejected "withdraw more than the balance"
req POST "$url/accounts/$a/open" '{"amount": 5}'
rejected "open twice"
req POST "$url/accounts/never-$RUN/deposit" '{"amount": 5}'
rejected "deposit to an account never opened"
req POST "$url/accounts/never-$RUN/withdraw" '{"amount": 5}'
rejected "withdraw from an account never opened"
req GET "$url/accounts/$a"
expect "GET after the rejections" 200 version=7 balance=320
# An account may be opened empty; a deposit or withdrawal of 0 is refused below.
req POST "$url/accounts/empty-$RUN/open" '{"amount": 0}'
expect "open with amount 0" 200 version=1 balance=0 duplicate=false && events=$((events + 1))

# --- 400: the request itself is wrong; nothing stored ---------------------------
bad_request() {
	local what=$1
	shift
	req "$@"
	# Should it be taken anyway, the event it stored counts for the stream.
	[ "$CODE" = 200 ] && events=$((events + 1))
	expect "$what" 400 && { [ -n "$(jfield error)" ] || fail "$what: no \"error\": $BODY"; }
}
bad_request "malformed JSON" POST "$url/accounts/$a/deposit" '{"amount": 5'
bad_request "not JSON" POST "$url/accounts/$a/deposit" 'amount=5'
bad_request "JSON array" POST "$url/accounts/$a/deposit" '[5]'
bad_request "empty body" POST "$url/accounts/$a/deposit" ''
bad_request "no amount" POST "$url/accounts/$a/deposit" '{}'
bad_request "amount 0" POST "$url/accounts/$a/deposit" '{"amount": 0}'
bad_request "negative amount" POST "$url/accounts/$a/withdraw" '{"amount": -5}'
bad_request "amount a string" POST "$url/accounts/$a/deposit" '{"amount": "5"}'
bad_request "amount a fraction" POST "$url/accounts/$a/deposit" '{"amount": 1.5}'
long_id=$(printf 'x%.0s' $(seq 1 1000))
bad_request "id of 1000 bytes" POST "$url/accounts/$long_id/open" '{"amount": 5}'
# The id's limit (256 bytes, as documented) is allowed, one more is not.
id256=$(printf 'i%.0s' $(seq 1 256))
req POST "$url/accounts/$id256/open" '{"amount": 5}'
expect "open an id of 256 bytes" 200 account="$id256" version=1 balance=5 && events=$((events + 1))
req GET "$url/accounts/$id256"
expect "GET an id of 256 bytes" 200 account="$id256" balance=5
bad_request "id of 257 bytes" POST "$url/accounts/${id256}j/open" '{"amount": 5}'
bad_request "id not UTF-8" POST "$url/accounts/a%FFb/open" '{"amount": 5}'
key64=$(printf 'k%.0s' $(seq 1 64))
bad_request "Idempotency-Key of 65 bytes" POST "$url/accounts/$a/deposit" '{"amount": 5}' \
	"Idempotency-Key: ${key64}z"
req GET "$url/accounts/$a"
expect "GET after the bad requests" 200 version=7 balance=320
# The limit itself is allowed.
req POST "$url/accounts/$a/deposit" '{"amount": 5}' "Idempotency-Key: $key64"
expect "Idempotency-Key of 64 bytes" 200 version=8 balance=325 duplicate=false && events=$((events + 1))
req POST "$url/accounts/$a/deposit" '{"amount": 5}' "Idempotency-Key: $key64"
expect "the same 64-byte key again" 200 duplicate=true
req GET "$url/accounts/$a"
expect "GET after the resent key" 200 version=8 balance=325

# --- 404, 405, 413 ---------------------------------------------------------------
for path in /nope /accounts "/accounts/$a/frobnicate" "/accounts/$a/deposit/more" /healthz/x; do
	req GET "$url$path"
	expect "GET $path" 404
done
req POST "$url/accounts/$a/frobnicate" '{"amount": 5}'
expect "POST to an unknown command" 404
# wrong_method WHAT ALLOW METHOD PATH [BODY]: 405 with "error" and an Allow
# header naming ALLOW.
wrong_method() {
	local what=$1 allow=$2
	shift 2
	req "$1" "$url$2" "${3-}"
	expect "$what" 405 || return
	jget error
	[ -n "$JV" ] || fail "$what: no \"error\": $BODY"
	grep -qi "^allow:.*$allow" "$TMP/headers" ||
		fail "$what: Allow header '$(grep -i '^allow' "$TMP/headers" | tr -d '\r')', expected one naming $allow"
}
wrong_method "DELETE an account" GET DELETE "/accounts/$a"
wrong_method "POST to an account" GET POST "/accounts/$a" '{"amount": 5}'
wrong_method "GET a command" POST GET "/accounts/$a/deposit"
wrong_method "PUT a command" POST PUT "/accounts/$a/deposit" '{"amount": 5}'
wrong_method "POST /healthz" GET POST /healthz '{}'
wrong_method "POST /metrics" GET POST /metrics '{}'
wrong_method "POST /events" GET POST /events '{}'
# Just over 4 KiB of valid JSON: 413, or the connection cut.
pad=$(printf ' %.0s' $(seq 1 4200))
req POST "$url/accounts/$a/deposit" "{\"amount\": 5$pad}"
case $CODE/$CURL_RC in
413/0) ;;
000/52 | 000/55 | 000/56) note "a 4.2 KiB body: connection cut (curl $CURL_RC)" ;;
*) fail "a 4.2 KiB body: status $CODE (curl $CURL_RC), expected 413 or a cut connection" ;;
esac
req GET "$url/accounts/$a"
expect "GET after the big body" 200 version=8 balance=325

# --- /metrics --------------------------------------------------------------------
# hist_count FILE: the sum of the histograms' _count samples.
hist_count() {
	awk '/^# TYPE .* histogram$/ { h[$3] = 1 }
		!/^#/ { n = $1; sub(/\{.*/, "", n); if (n ~ /_count$/) { b = n; sub(/_count$/, "", b); if (b in h) s += $NF } }
		END { print s + 0 }' "$1"
}
req GET "$url/metrics"
printf '%s\n' "$BODY" >"$TMP/metrics.before"
# Some load first, so that counters and the histogram have something: 200
# reads, 20 at a time (curl alone: nothing else needs installing).
batch_reset
for i in $(seq 1 200); do
	batch_add "g$i" GET "$url/accounts/$a" - -
done
batch_run par 20
n=0
for i in $(seq 1 200); do
	[ "$(bcode "g$i")" = 200 ] || n=$((n + 1))
done
[ "$n" -eq 0 ] || fail "$n of 200 concurrent GETs did not get 200"
req GET "$url/metrics"
expect "GET /metrics" 200
grep -qi '^content-type: text/plain' "$TMP/headers" ||
	fail "/metrics Content-Type: $(grep -i '^content-type' "$TMP/headers")"
printf '%s\n' "$BODY" >"$TMP/metrics"
awk -f "$here/prometheus.awk" "$TMP/metrics" >"$TMP/metrics.problems" ||
	fail "/metrics is not valid Prometheus text: $(head -n 10 "$TMP/metrics.problems")"
# The latency histogram counted the 200 reads.
before=$(hist_count "$TMP/metrics.before")
after=$(hist_count "$TMP/metrics")
[ $((after - before)) -ge 200 ] ||
	fail "/metrics: the histograms' _count went from $before to $after over 200 requests"

# --- the event stream --------------------------------------------------------------
# sse NAME QUERY [HEADER]: read /events for at most 2 s; the id: values, in order,
# to $TMP/NAME.ids.
sse() {
	local name=$1 query=$2
	shift 2
	timeout 10 curl -sSN --max-time 2 -D "$TMP/$name.headers" ${1:+-H "$1"} \
		"$url/events$query" >"$TMP/$name.sse" 2>"$TMP/$name.err"
	sed -n 's/^id:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$TMP/$name.sse" | tr -d '\r' >"$TMP/$name.ids"
}
sse all "?from=0"
head -n 1 "$TMP/all.headers" | grep -q ' 200' || fail "/events: $(head -n 1 "$TMP/all.headers")"
grep -qi '^content-type: text/event-stream' "$TMP/all.headers" ||
	fail "/events Content-Type: $(grep -i '^content-type' "$TMP/all.headers")"
n=$(wc -l <"$TMP/all.ids")
[ "$n" -eq "$events" ] || fail "/events?from=0: $n id: lines, expected $events (the events stored)"
grep -qv '^[0-9][0-9]*$' "$TMP/all.ids" && fail "/events: an id is not a position: $(grep -v '^[0-9]*$' "$TMP/all.ids" | head -n 1)"
sort -n -c -u "$TMP/all.ids" 2>/dev/null || fail "/events: ids do not go up: $(tr '\n' ' ' <"$TMP/all.ids")"
grep -q "$a" "$TMP/all.sse" || fail "/events: the account's name is in no event"
if [ "$n" -ge 4 ]; then
	mid=$(sed -n 3p "$TMP/all.ids")
	# Last-Event-ID: exactly what came after it.
	sse resumed "" "Last-Event-ID: $mid"
	awk -v m="$mid" '$1 > m' "$TMP/all.ids" >"$TMP/after.ids"
	cmp -s "$TMP/after.ids" "$TMP/resumed.ids" ||
		fail "Last-Event-ID: $mid: ids $(tr '\n' ' ' <"$TMP/resumed.ids"), expected $(tr '\n' ' ' <"$TMP/after.ids")"
	# from=P: from that position on (P itself included or not, but nothing
	# before it and nothing after it missing).
	sse from "?from=$mid"
	awk -v m="$mid" '$1 >= m' "$TMP/all.ids" >"$TMP/from_incl.ids"
	cmp -s "$TMP/from_incl.ids" "$TMP/from.ids" || cmp -s "$TMP/after.ids" "$TMP/from.ids" ||
		fail "/events?from=$mid: ids $(tr '\n' ' ' <"$TMP/from.ids"), expected those from $mid on: $(tr '\n' ' ' <"$TMP/from_incl.ids")"
else
	fail "/events: too few events to check resumption"
fi

# Live: a reader waiting at the end gets an event posted after it connected.
last=$(tail -n 1 "$TMP/all.ids")
timeout 10 curl -sSN --max-time 4 -H "Last-Event-ID: ${last:-0}" "$url/events" >"$TMP/live.sse" 2>/dev/null &
live=$!
BG_PIDS="$BG_PIDS $live"
sleep 1
req POST "$url/accounts/$a/deposit" '{"amount": 7}'
expect "deposit while a reader waits" 200 version=9 balance=332
wait "$live"
new=$(sed -n 's/^id:[[:space:]]*\([0-9]*\).*/\1/p' "$TMP/live.sse" | tr -d '\r')
[ "$(echo "$new" | grep -c .)" -eq 1 ] && [ "$new" -gt "${last:-0}" ] ||
	fail "a waiting reader: ids '$(echo $new)' after $last, expected one new one"

# Readers that go away free their place: more of them, one after another,
# than the service takes at once (--max-streams=8 here); within 15 s (the
# service notices a gone reader when it next writes to it, a heartbeat at the
# latest) a reader gets in again.
for round in 1 2 3; do
	batch_reset
	for i in 1 2 3 4 5 6 7 8 9 10; do
		batch_add "s$i" GET "$url/events?from=0" - -
	done
	sed -i 's/^max-time = 15$/max-time = 1/' "$TMP/batch.cfg"
	batch_run par
done
t0=$SECONDS
while :; do
	timeout 10 curl -sSN --max-time 1 -o "$TMP/after.sse" -w '%{http_code}' "$url/events?from=0" \
		>"$TMP/after.code" 2>/dev/null
	[ "$(cat "$TMP/after.code")" = 200 ] && grep -q '^id:' "$TMP/after.sse" && break
	if [ $((SECONDS - t0)) -ge 15 ]; then
		fail "/events 15 s after 30 readers came and went (8 at most at once): status $(cat "$TMP/after.code"), $(grep -c '^id:' "$TMP/after.sse") events"
		break
	fi
	sleep 1
done
note "a reader got in again $((SECONDS - t0)) s after 30 came and went"

# --- 503: a full mailbox ----------------------------------------------------------
# A mailbox of one on an account of a store that syncs every append, and 100
# deposits at once: some find it full and get 503 with Retry-After; every
# other gets 200, and the balance holds exactly those.
ESR_MAILBOX_CAPACITY=1 start_service full --store="file:$TMP/full" --strategy=optimistic --workers=1
req POST "$full_URL/accounts/$a/open" '{"amount": 1}'
expect "open (mailbox of one)" 200
batch_reset
for i in $(seq 1 100); do
	batch_add "f$i" POST "$full_URL/accounts/$a/deposit" '{"amount": 1}' -
done
batch_run par
ok=0 full=0
for i in $(seq 1 100); do
	bload "f$i"
	case $CODE in
	200) ok=$((ok + 1)) ;;
	503)
		full=$((full + 1))
		[ -n "$(bheader "f$i" Retry-After)" ] || fail "503 for a full mailbox without Retry-After"
		jget error
		[ -n "$JV" ] || fail "503 for a full mailbox without \"error\": $BODY"
		jget outcome
		[ "$JV" != unknown ] || fail "503 for a full mailbox says the outcome is unknown: $BODY"
		;;
	*) fail "100 deposits at once on a mailbox of one: status $CODE, expected 200 or 503: $BODY" ;;
	esac
done
note "100 deposits at once, mailbox of one: $ok answered 200, $full 503"
[ "$full" -gt 0 ] || fail "100 deposits at once on a mailbox of one: no 503"
req GET "$full_URL/accounts/$a"
expect "the balance after the full mailbox" 200 balance=$((1 + ok)) version=$((1 + ok))
# SIGINT stops it as SIGTERM does.
stop_service full INT 30
[ "$STOP_RC" -eq 0 ] || fail "SIGINT: exit $STOP_RC, expected 0; stderr: $(tail -n 20 "$TMP/full.err")"

# --- the end: the service still answers, and stops cleanly ------------------------
req GET "$url/healthz"
expect "GET /healthz at the end" 200
stop_clean svc
finish
