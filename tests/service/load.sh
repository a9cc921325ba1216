# tests/service/load.sh: a bounded deposit load with one Idempotency-Key per
# request, every request logged, and the checks after a restart. Sourced
# after lib.sh by crash.sh and sigterm.sh.
#
# Each log line: KEY ACCOUNT AMOUNT STATUS CURL_EXIT DUPLICATE RETRY_AFTER
# OUTCOME (STATUS 000 when no answer came; DUPLICATE, RETRY_AFTER and the
# body's "outcome" "-" when absent).

LOAD_ACCOUNTS=${LOAD_ACCOUNTS:-8}
LOAD_OPEN=1000 # each account opens with this
LOAD_PIDS=""

# load_open URL: open the accounts.
load_open() {
	local i
	for i in $(seq 1 "$LOAD_ACCOUNTS"); do
		req POST "$1/accounts/load-$RUN-$i/open" "{\"amount\": $LOAD_OPEN}"
		expect "open load-$RUN-$i" 200 balance=$LOAD_OPEN || die "cannot open the accounts"
	done
}

# load_loop N URL MAX: one client sending deposits one after another until
# $TMP/stop exists, MAX requests are sent or 60 s have passed.
load_loop() {
	local n=$1 url=$2 max=$3 i=0 key acct amount code rc dup ra out body end=$((SECONDS + 60))
	while [ ! -e "$TMP/stop" ] && [ "$i" -lt "$max" ] && [ "$SECONDS" -lt "$end" ]; do
		i=$((i + 1))
		key=L$n-$i
		acct=load-$RUN-$((1 + (RANDOM % LOAD_ACCOUNTS)))
		amount=$((1 + (RANDOM % 997)))
		code=$(timeout 20 curl -sS -o "$TMP/l$n.body" -D "$TMP/l$n.headers" -w '%{http_code}' \
			--max-time 10 --connect-timeout 5 -X POST -H 'Content-Type: application/json' \
			-H "Idempotency-Key: $key" --data-binary "{\"amount\": $amount}" \
			"$url/accounts/$acct/deposit" 2>/dev/null)
		rc=$?
		[ -n "$code" ] || code=000
		body=""
		[ -f "$TMP/l$n.body" ] && IFS= read -r -d '' body <"$TMP/l$n.body"
		jget duplicate "$body"
		dup=$JV
		jget outcome "$body"
		out=$JV
		ra=$(tr -d '\r' <"$TMP/l$n.headers" 2>/dev/null | sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*//p' | head -n 1)
		echo "$key $acct $amount $code $rc ${dup:--} ${ra:--} ${out:--}" >>"$TMP/load.$n.log"
		# No server: do not spin.
		[ "$code" = 000 ] && sleep 0.05
		rm -f "$TMP/l$n.body" "$TMP/l$n.headers"
	done
}

# load_start URL LOOPS MAX: LOOPS clients in the background.
load_start() {
	local n
	rm -f "$TMP/stop" "$TMP"/load.*.log
	for n in $(seq 1 "$2"); do
		: >"$TMP/load.$n.log"
		load_loop "$n" "$1" "$3" &
		LOAD_PIDS="$LOAD_PIDS $!"
		BG_PIDS="$BG_PIDS $!"
	done
}

load_acked() { cat "$TMP"/load.*.log 2>/dev/null | awk '$4 == 200' | wc -l; }

# load_wait_acked N SECONDS: until N requests got 200 (a failure after SECONDS).
load_wait_acked() {
	local end=$((SECONDS + $2))
	while [ "$(load_acked)" -lt "$1" ]; do
		[ "$SECONDS" -ge "$end" ] && die "fewer than $1 deposits acknowledged in $2 s ($(load_acked)); service stderr: $(tail -n 5 "$TMP"/*.err)"
		sleep 0.1
	done
}

# load_stop: tell the clients to stop and wait for them (each request is
# bounded by 20 s).
load_stop() {
	local p end=$((SECONDS + 30))
	touch "$TMP/stop"
	for p in $LOAD_PIDS; do
		while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
		kill -0 "$p" 2>/dev/null && fail "a load client did not stop"
		wait "$p" 2>/dev/null
	done
	LOAD_PIDS=""
	cat "$TMP"/load.*.log >"$TMP/load.log"
}

# resend URL LOG: send each line's request again (same key, account and
# amount), 8 at a time; "KEY STATUS DUPLICATE" for each to LOG.resent.
resend() {
	local url=$1 log=$2 key acct amount rest n=0
	: >"$log.resent"
	[ -s "$log" ] || return 0
	batch_reset
	while read -r key acct amount rest; do
		n=$((n + 1))
		batch_add "r$n" POST "$url/accounts/$acct/deposit" "{\"amount\": $amount}" "$key"
	done <"$log"
	batch_run par 8
	n=0
	while read -r key acct amount rest; do
		n=$((n + 1))
		bload "r$n"
		jget duplicate
		echo "$key $CODE ${JV:--}" >>"$log.resent"
	done <"$log"
}

# balances URL: "ACCOUNT BALANCE" for each account to $TMP/balances.
balances() {
	local i
	: >"$TMP/balances"
	for i in $(seq 1 "$LOAD_ACCOUNTS"); do
		req GET "$1/accounts/load-$RUN-$i"
		expect "GET load-$RUN-$i" 200 || continue
		echo "load-$RUN-$i $(jfield balance)" >>"$TMP/balances"
	done
}

# check_acked_durable URL: after a restart, for every account, the opening
# plus the acknowledged deposits is at most the balance; every acknowledged
# key sent again answers 200 duplicate true.
check_acked_durable() {
	local acct bal acked bad
	balances "$1"
	while read -r acct bal; do
		acked=$(awk -v a="$acct" -v o="$LOAD_OPEN" 'BEGIN { s = o } $2 == a && $4 == 200 { s += $3 } END { print s }' "$TMP/load.log")
		[ "$bal" -ge "$acked" ] 2>/dev/null ||
			fail "$acct: balance '$bal' after the restart, less than the opening plus the acknowledged deposits ($acked): an acknowledged deposit was lost"
	done <"$TMP/balances"
	awk '$4 == 200' "$TMP/load.log" >"$TMP/acked.log"
	resend "$1" "$TMP/acked.log"
	bad=$(awk '$2 != 200 || $3 != "true"' "$TMP/acked.log.resent")
	[ -z "$bad" ] || fail "acknowledged keys sent again after the restart, not answered 200 duplicate true ($(echo "$bad" | wc -l) of $(wc -l <"$TMP/acked.log")): $(echo "$bad" | head -n 5 | tr '\n' ';')"
	[ "$(wc -l <"$TMP/acked.log.resent")" -eq "$(wc -l <"$TMP/acked.log")" ] ||
		fail "not every acknowledged key was sent again"
}

# check_exact URL: every account's balance is its opening plus every deposit
# of the log, each once, and its version one more than its deposits.
check_exact() {
	local i acct want wantv
	get_accounts "$1" "load-$RUN" "$LOAD_ACCOUNTS"
	for i in $(seq 1 "$LOAD_ACCOUNTS"); do
		acct=load-$RUN-$i
		want=$(awk -v a="$acct" -v o="$LOAD_OPEN" 'BEGIN { s = o } $2 == a { s += $3 } END { print s }' "$TMP/load.log")
		wantv=$(awk -v a="$acct" 'BEGIN { n = 1 } $2 == a { n++ } END { print n }' "$TMP/load.log")
		bload "$i"
		expect "$acct after every key was answered (each deposit once)" 200 balance="$want" version="$wantv"
	done
}
