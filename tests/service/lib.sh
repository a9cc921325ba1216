# tests/service/lib.sh: what the bank_service tests share. Sourced by bash
# with the program's path as $1:
#
#   . "$(dirname "$0")/lib.sh" "$1"
#
# Every process a test starts is recorded and killed on exit, whatever the
# exit; every client runs under `timeout`; every wait has a deadline.
set -u

SVC_BIN=${1:?usage: TEST.sh PATH_TO_bank_service}
case $SVC_BIN in /*) ;; *) SVC_BIN=$PWD/$SVC_BIN ;; esac
[ -x "$SVC_BIN" ] || { echo "FAIL: $SVC_BIN is not an executable" >&2; exit 1; }
for tool in curl timeout; do
	command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool is not installed" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/esr-service.XXXXXX")
SVC_PIDS=""  # every service started, for the cleanup
BG_PIDS=""   # every background client or loop
failures=0
TEST_START=$SECONDS
# Sanitizer builds: a report makes the program exit non-zero, and the report
# goes to the program's stderr, which the failure messages show.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

cleanup() {
	for p in $BG_PIDS $SVC_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	for p in $BG_PIDS $SVC_PIDS; do
		wait "$p" 2>/dev/null
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted" >&2; exit 1' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

die() {
	echo "FAIL: $*" >&2
	exit 1
}

note() { echo "$(basename "$0" .sh): $*"; }

# finish: the verdict, and the run time. A sanitizer's report in any
# service's stderr is a failure too (a process killed on purpose has no exit
# status to tell it).
finish() {
	local f
	for f in "$TMP"/*.err; do
		[ -f "$f" ] || continue
		if grep -qE 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$f"; then
			fail "$(basename "$f" .err): a sanitizer report: $(grep -m 1 -E 'WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer|runtime error:' "$f")"
		fi
	done
	note "$((SECONDS - TEST_START)) s, $failures failure(s)"
	[ "$failures" -eq 0 ] || exit 1
	exit 0
}

# A deadline for the whole test, below ctest's TIMEOUT so that the failure
# says where it was.
test_deadline() {
	TEST_DEADLINE=$((SECONDS + $1))
}
past_deadline() {
	[ "$SECONDS" -ge "${TEST_DEADLINE:-999999}" ]
}

# start_service NAME ARGS...: start the program on a free loopback port with
# ARGS; wait (at most 30 s) for its first line, `listening on http://H:P`.
# Sets NAME_URL and NAME_PID. Its output goes to $TMP/NAME.out and .err.
start_service() {
	local name=$1 pid line i
	shift
	"$SVC_BIN" --listen=127.0.0.1:0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	pid=$!
	SVC_PIDS="$SVC_PIDS $pid"
	for i in $(seq 1 600); do
		line=""
		# Only a whole first line (its newline written) counts.
		[ "$(wc -l <"$TMP/$name.out" 2>/dev/null)" -ge 1 ] 2>/dev/null && line=$(head -n 1 "$TMP/$name.out")
		case $line in
		"listening on http://"*:*) break ;;
		esac
		kill -0 "$pid" 2>/dev/null ||
			die "$name ($*) exited before listening: $(tail -n 5 "$TMP/$name.err")"
		sleep 0.05
	done
	case $line in
	"listening on http://127.0.0.1:"[0-9]*) ;;
	*) die "$name ($*): first line is '$line', expected 'listening on http://127.0.0.1:PORT'" ;;
	esac
	eval "${name}_URL=\${line#listening on }"
	eval "${name}_PID=$pid"
}

# stop_service NAME [SIGNAL] [SECONDS]: send SIGNAL (TERM) and wait at most
# SECONDS (30) for the exit; sets STOP_RC to the exit status, or 124 when it
# did not exit in time (then it is killed).
stop_service() {
	local name=$1 sig=${2:-TERM} limit=${3:-30} pid i
	eval "pid=\$${name}_PID"
	kill -s "$sig" "$pid" 2>/dev/null
	STOP_RC=124
	for i in $(seq 1 $((limit * 20))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			STOP_RC=$?
			return 0
		fi
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# get_accounts URL PREFIX N: GET PREFIX-1 .. PREFIX-N through one curl; read
# the i-th answer with `bload i`.
get_accounts() {
	local i
	batch_reset
	for i in $(seq 1 "$3"); do
		batch_add "$i" GET "$1/accounts/$2-$i" - -
	done
	batch_run
}

# stop_clean NAME: SIGTERM, and a failure unless it exits 0 within 30 s.
stop_clean() {
	stop_service "$1" TERM 30
	[ "$STOP_RC" -eq 0 ] || fail "$1: SIGTERM: exit $STOP_RC; stderr: $(tail -n 20 "$TMP/$1.err")"
}

# The exit status of a process killed on purpose is not reaped as an error.
kill9_service() {
	local name=$1 pid
	eval "pid=\$${name}_PID"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# req METHOD URL [BODY [HEADER...]]: one request. Sets CODE (the HTTP
# status, 000 when there was none), CURL_RC and BODY; the response headers
# are in $TMP/headers. Bounded by curl's own limit and by `timeout`.
req() {
	local method=$1 url=$2 body=${3-} h
	local args=(-sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 15
		--connect-timeout 5 -X "$method")
	shift 2
	[ $# -gt 0 ] && shift
	if [ -n "$body" ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$body")
	fi
	for h in "$@"; do
		args+=(-H "$h")
	done
	: >"$TMP/body"
	: >"$TMP/headers"
	CODE=$(timeout 20 curl "${args[@]}" "$url" 2>"$TMP/curl.err")
	CURL_RC=$?
	[ -n "$CODE" ] || CODE=000
	BODY=$(cat "$TMP/body")
}

# jget NAME [TEXT]: sets JV to the value of "NAME" in a flat JSON object
# (TEXT, or $BODY), a string without its quotes; empty when absent. No
# process is started: the tests call it thousands of times.
jget() {
	local text=${2-$BODY} re="\"$1\"[[:space:]]*:[[:space:]]*(\"[^\"]*\"|[^],}[:space:]]*)"
	JV=""
	if [[ $text =~ $re ]]; then
		JV=${BASH_REMATCH[1]}
		JV=${JV#\"}
		JV=${JV%\"}
	fi
}
# jfield NAME [TEXT]: the same, printed.
jfield() {
	jget "$@"
	printf '%s' "$JV"
}

# expect WHAT CODE [FIELD=VALUE...]: the last response has this status and
# these fields; a failure (counted) otherwise.
expect() {
	local what=$1 want=$2 kv k v got
	shift 2
	if [ "$CODE" != "$want" ]; then
		fail "$what: status $CODE (curl $CURL_RC), expected $want; body: $BODY"
		return 1
	fi
	for kv in "$@"; do
		k=${kv%%=*}
		v=${kv#*=}
		jget "$k"
		got=$JV
		if [ "$got" != "$v" ]; then
			fail "$what: \"$k\" is '$got', expected '$v'; body: $BODY"
			return 1
		fi
	done
	return 0
}

# The PostgreSQL connection string of the throwaway server, or the test's
# exit: a failure with ESR_PG_REQUIRED=1, a skip (77) otherwise.
pg_conninfo() {
	local c
	c=${ESR_PG_CONNINFO:-}
	if [ -z "$c" ] && [ -n "${ESR_PG_ENV:-}" ] && [ -f "$ESR_PG_ENV" ]; then
		c=$(sed -n 's/^ESR_PG_CONNINFO=//p' "$ESR_PG_ENV")
	fi
	if [ -z "$c" ]; then
		if [ "${ESR_PG_REQUIRED:-0}" = 1 ]; then
			echo "FAIL: no PostgreSQL server (ESR_PG_REQUIRED=1)" >&2
			exit 1
		fi
		echo "SKIP: no PostgreSQL server" >&2
		exit 77
	fi
	PG_CONNINFO=$c
}

# The tests share one database: each run's account names start with a prefix
# of its own, so runs never see each other's streams.
RUN=r$$x$RANDOM

# Many requests through one curl process (starting a process per request
# costs more than the request): batch_add ID METHOD URL BODY|- KEY|- queues
# one; batch_run [par] sends the queue, one after another or (par) all at
# once, each on its own connection; then bcode ID and bbody ID give each
# one's status (000 when none) and body. batch_run par N: N at a time.
batch_reset() {
	rm -rf "$TMP/batch"
	mkdir -p "$TMP/batch"
	: >"$TMP/batch.cfg"
	BATCH_N=0
}
batch_reset
batch_add() {
	local id=$1 method=$2 url=$3 body=$4 key=$5 cfg
	cfg="url = \"$url\"
request = \"$method\"
"
	if [ "$body" != - ]; then
		body=${body//\\/\\\\}
		body=${body//\"/\\\"}
		cfg="${cfg}data-binary = \"$body\"
header = \"Content-Type: application/json\"
"
	fi
	[ "$key" != - ] && cfg="${cfg}header = \"Idempotency-Key: $key\"
"
	[ "$BATCH_N" -gt 0 ] && cfg="next
$cfg"
	printf '%soutput = "%s"\ndump-header = "%s"\nwrite-out = "%s %%{http_code}\\n"\nmax-time = 15\nconnect-timeout = 5\n' \
		"$cfg" "$TMP/batch/$id.body" "$TMP/batch/$id.headers" "$id" >>"$TMP/batch.cfg"
	BATCH_N=$((BATCH_N + 1))
}
batch_run() {
	local par=() id code
	[ "${1-}" = par ] && par=(-Z --parallel-immediate --parallel-max "${2:-100}")
	timeout 120 curl -sS --no-progress-meter "${par[@]}" -K "$TMP/batch.cfg" \
		>"$TMP/batch.out" 2>"$TMP/batch.err"
	: >"$TMP/batch.cfg"
	BATCH_N=0
	BCODE=()
	while read -r id code; do
		BCODE[$id]=$code
	done <"$TMP/batch.out"
}
declare -A BCODE
bcode() {
	local c=${BCODE[$1]-}
	[[ $c =~ ^[0-9][0-9][0-9]$ ]] || c=000
	echo "$c"
}
# bload ID: CODE and BODY from one batched request (no process started).
bload() {
	CODE=${BCODE[$1]-}
	[[ $CODE =~ ^[0-9][0-9][0-9]$ ]] || CODE=000
	BODY=""
	[ -f "$TMP/batch/$1.body" ] && IFS= read -r -d '' BODY <"$TMP/batch/$1.body"
	CURL_RC=-
}
bbody() { cat "$TMP/batch/$1.body" 2>/dev/null; }
# bheader ID NAME: a response header's value.
bheader() {
	tr -d '\r' <"$TMP/batch/$1.headers" 2>/dev/null | grep -i "^$2:" | head -n 1 | sed 's/^[^:]*:[[:space:]]*//'
}
