#!/bin/bash
# tests/service/hostile.sh BANK_SERVICE: clients that misbehave, while two
# well-behaved clients go on. Bad JSON of several kinds gets 400; a 10 MB
# body gets 413 or a cut connection (with and without Expect: 100-continue,
# and chunked); garbage instead of HTTP gets a 4xx or a cut; connections
# that send their headers or their body one byte a second, or nothing at
# all, are cut off or answered within SLOW_BOUND seconds; 200 idle
# connections come at once and stay 8 s. Meanwhile every
# normal request gets 200 within NORMAL_BOUND seconds, and at the end the
# service still answers and exits 0 on SIGTERM.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "$1"
test_deadline 100
SLOW_BOUND=${SLOW_BOUND:-30}
NORMAL_BOUND=${NORMAL_BOUND:-3}

start_service svc --store=memory --strategy=optimistic --workers=2
url=$svc_URL
port=${url##*:}
a=host-$RUN
req POST "$url/accounts/$a/open" '{"amount": 1}'
expect "open" 200 || die "cannot open the account"

# --- the well-behaved clients ----------------------------------------------------
# normal N: a GET or a deposit of 1 every 0.2 s until $TMP/stop (or 80 s,
# or 400 requests); "STATUS SECONDS" per request to $TMP/normal.N.
normal() {
	local n=$1 i=0 out end=$((SECONDS + 80))
	while [ ! -e "$TMP/stop" ] && [ "$i" -lt 400 ] && [ "$SECONDS" -lt "$end" ]; do
		i=$((i + 1))
		if [ $((i % 2)) -eq 0 ]; then
			out=$(timeout 20 curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 15 \
				-X POST -H 'Content-Type: application/json' --data-binary '{"amount": 1}' \
				"$url/accounts/$a/deposit" 2>/dev/null)
		else
			out=$(timeout 20 curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 15 \
				"$url/accounts/$a" 2>/dev/null)
		fi
		echo "${out:-000 15}" >>"$TMP/normal.$n"
		sleep 0.2
	done
}
for n in 1 2; do
	: >"$TMP/normal.$n"
	normal "$n" &
	BG_PIDS="$BG_PIDS $!"
	normal_pids="${normal_pids:-} $!"
done

# --- slow and silent connections, through bash's /dev/tcp -------------------------
# slow NAME MODE: MODE headers: a request whose header never ends, one byte a
# second; body: whole headers, then a 40-byte body one byte a second; idle:
# nothing. Writes "NAME closed|answered SECONDS [STATUS LINE]" or
# "NAME open SECONDS" (still open after SLOW_BOUND + 5 s) to $TMP/slow.NAME.
slow() {
	local name=$1 mode=$2 start=$SECONDS data i line rc result=open
	trap '' PIPE
	if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
		echo "$name connect-failed 0" >"$TMP/slow.$name"
		return
	fi
	case $mode in
	headers)
		data=$'POST /accounts/'"$a"$'/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '
		data=$data$(printf 'a%.0s' $(seq 1 200))
		;;
	body)
		printf 'POST /accounts/%s/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n' "$a" >&3
		data='{"amount": 1                           }'
		;;
	idle) data="" ;;
	esac
	for ((i = 0; SECONDS - start < SLOW_BOUND + 5; i++)); do
		if [ -n "$data" ] && [ "$i" -lt "${#data}" ]; then
			if ! printf '%s' "${data:i:1}" >&3 2>/dev/null; then
				result=closed
				break
			fi
		fi
		line=""
		read -r -t 1 -u 3 line 2>/dev/null
		rc=$?
		if [ "$rc" -eq 0 ] || [ -n "$line" ]; then
			result="answered"
			break
		elif [ "$rc" -le 128 ]; then
			result=closed
			break
		fi
	done
	exec 3>&-
	echo "$name $result $((SECONDS - start)) ${line%$'\r'}" >"$TMP/slow.$name"
}
slow_names=""
for spec in h1:headers h2:headers h3:headers b1:body b2:body i1:idle i2:idle; do
	slow "${spec%%:*}" "${spec#*:}" &
	BG_PIDS="$BG_PIDS $!"
	slow_pids="${slow_pids:-} $!"
	slow_names="$slow_names ${spec%%:*}"
done

# A crowd: 200 connections opened at once that send nothing, held for 8 s
# (the service's idle timeout should shed them; the normal clients must not
# notice either way).
crowd() {
	local fds=() i fd
	for i in $(seq 1 200); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || break
		fds+=("$fd")
	done
	echo "${#fds[@]}" >"$TMP/crowd"
	sleep 8
	for fd in "${fds[@]}"; do
		exec {fd}>&-
	done
}
crowd &
BG_PIDS="$BG_PIDS $!"
crowd_pid=$!

# --- bad bodies, one after another, while the above go on --------------------------
bad() {
	local what=$1
	shift
	req POST "$url/accounts/$a/deposit" "$@"
	case $CODE in
	400) ;;
	*) fail "$what: status $CODE (curl $CURL_RC), expected 400; body: $(printf '%s' "$BODY" | head -c 200)" ;;
	esac
}
bad "unclosed object" '{"amount": 5'
bad "trailing garbage" '{"amount": 5} x'
bad "two objects" '{"amount": 5}{"amount": 5}'
bad "amount null" '{"amount": null}'
bad "amount true" '{"amount": true}'
bad "amount an object" '{"amount": {"amount": 5}}'
bad "not UTF-8" $'{"amount": 5, "x": "\xff\xfe"}'
bad "a control byte in a string" $'{"amount": 5, "x": "a\x01b"}'
bad "deep nesting" "$(printf '[%.0s' $(seq 1 2000))"
bad "amount with an exponent" '{"amount": 1e400}'
req POST "$url/accounts/$a/deposit" '{"amount": 99999999999999999999999999}'
case $CODE in
400 | 422) ;;
*) fail "an amount past 64 bits: status $CODE, expected 400 or 422; body: $BODY" ;;
esac

# 10 MB: 413, or the connection cut; never anything stored.
head -c 10485760 /dev/zero | tr '\0' ' ' >"$TMP/big"
printf '{"amount": 5}' >>"$TMP/big"
big() {
	local what=$1 code rc
	shift
	code=$(timeout 40 curl -sS -o "$TMP/big.body" -w '%{http_code}' --max-time 30 -X POST \
		-H 'Content-Type: application/json' "$@" --data-binary @"$TMP/big" \
		"$url/accounts/$a/deposit" 2>"$TMP/big.err")
	rc=$?
	case ${code:-000}/$rc in
	413/0) ;;
	000/52 | 000/55 | 000/56 | 000/16 | 000/92) note "$what: connection cut (curl $rc)" ;;
	*) fail "$what: status ${code:-000} (curl $rc: $(head -c 200 "$TMP/big.err")), expected 413 or a cut connection" ;;
	esac
}
big "10 MB body"
big "10 MB body without Expect" -H 'Expect:'
big "10 MB body, chunked" -H 'Transfer-Encoding: chunked'

# Not HTTP at all: a 4xx or a cut, in bounded time.
garbage() {
	local what=$1 data=$2 line=""
	if exec 4<>"/dev/tcp/127.0.0.1/$port"; then
		printf '%s' "$data" >&4 2>/dev/null
		read -r -t 10 -u 4 line 2>/dev/null
		exec 4>&-
		case $line in
		"" | "HTTP/1."[01]" 4"*) ;;
		*) fail "$what: answered '$line', expected a 4xx or a cut" ;;
		esac
	else
		fail "$what: cannot connect"
	fi
}
garbage "a garbage request line" $'GARBAGE\r\n\r\n'
garbage "binary" $'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'
garbage "a header without a colon" $'GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n'
garbage "Content-Length not a number" $'POST /accounts/x/deposit HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'

# --- the slow ones end; then the normal ones stop -----------------------------------
wait "$crowd_pid"
note "a crowd of $(cat "$TMP/crowd" 2>/dev/null) idle connections came and went"
for p in $slow_pids; do
	wait "$p"
done
for name in $slow_names; do
	read -r n result secs status <"$TMP/slow.$name" || { fail "slow $name: no result"; continue; }
	note "slow $name: $result after $secs s ${status:+($status)}"
	case $result in
	closed | answered)
		[ "$secs" -le "$SLOW_BOUND" ] || fail "slow $name: $result only after $secs s, bound $SLOW_BOUND s"
		;;
	*) fail "slow $name: still open after $secs s (bound $SLOW_BOUND s): not cut off" ;;
	esac
done
touch "$TMP/stop"
for p in $normal_pids; do
	wait "$p"
done
cat "$TMP"/normal.* >"$TMP/normal"
count=$(wc -l <"$TMP/normal")
[ "$count" -ge 20 ] || fail "only $count normal requests completed"
notok=$(awk '$1 != 200' "$TMP/normal" | wc -l)
[ "$notok" -eq 0 ] || fail "$notok of $count normal requests did not get 200: $(awk '$1 != 200' "$TMP/normal" | sort | uniq -c | head -n 5 | tr '\n' ';')"
slowest=$(sort -n -k2 "$TMP/normal" | tail -n 1 | cut -d' ' -f2)
awk -v b="$NORMAL_BOUND" '$2 > b { bad = 1 } END { exit bad }' "$TMP/normal" ||
	fail "normal requests slower than $NORMAL_BOUND s: $(awk -v b="$NORMAL_BOUND" '$2 > b' "$TMP/normal" | wc -l), the slowest $slowest s"
note "$count normal requests, $notok not 200, the slowest $slowest s"

# Nothing the hostile clients sent was stored: the balance is the opening
# plus the normal deposits.
deposits=$(awk 'NR % 2 == 0' "$TMP/normal.1" | awk '$1 == 200' | wc -l)
deposits=$((deposits + $(awk 'NR % 2 == 0' "$TMP/normal.2" | awk '$1 == 200' | wc -l)))
req GET "$url/accounts/$a"
expect "the account at the end" 200 balance=$((1 + deposits)) version=$((1 + deposits))
req GET "$url/healthz"
expect "GET /healthz at the end" 200
stop_clean svc
finish
