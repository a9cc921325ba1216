#!/bin/sh
# tests/cli/stress_cli.sh ESR_STRESS: esr-stress as a user meets it: --help, a
# one-line error and exit 2 for each bad value, no progress line when output
# is not a terminal, JSON on standard output, --check on both settings.
set -u
bin=$1
strategy_env=
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# --help: exit 0, every flag documented.
"$bin" --help >"$tmp/help" 2>&1 || fail "--help exited $?"
for flag in strategy workers writers aggregates skew commands duration seed \
	max-retries batch window rate mailbox-capacity workload store json dump-plan quiet \
	check help snapshot-every projection; do
	grep -q -- "--$flag" "$tmp/help" || fail "--help does not document --$flag"
done

# Bad values: exit 2 and one line on stderr naming the flag.
bad() {
	flag=$1
	shift
	env ${strategy_env:+ESR_STRATEGY="$strategy_env"} "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "$*: exit $rc, expected 2"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$*: stderr is not one line: $(cat "$tmp/err")"
	grep -q -- "$flag" "$tmp/err" || fail "$*: stderr does not name $flag: $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] || fail "$*: wrote to stdout"
}
bad --workers --workers=-2
bad --workers --workers=0
bad --commands --commands=-5
bad --aggregates --aggregates=0
bad --skew --skew=6
bad --skew --skew=-1
bad --strategy --strategy=pessimistic
bad --workload --workload=orders
bad --writers --writers=abc
bad --duration --commands=10 --duration=1
strategy_env=bogus bad ESR_STRATEGY
strategy_env=
bad --bogus --bogus
bad --rate --rate=0
bad --rate --rate=fast
bad --dump-plan --dump-plan=

small="--aggregates=64 --commands=3000 --workers=2"

# Not a terminal: the table on stdout, nothing on stderr (no progress line).
# shellcheck disable=SC2086
"$bin" $small >"$tmp/out" 2>"$tmp/err" || fail "plain run exited $?"
[ ! -s "$tmp/err" ] || fail "plain run wrote to stderr: $(cat "$tmp/err")"
grep -q "optimistic" "$tmp/out" && grep -q "unchecked" "$tmp/out" ||
	fail "the table lacks a strategy column"
grep -q "vs raw" "$tmp/out" || fail "the table lacks vs raw"

# --json - --quiet: only JSON on stdout.
# shellcheck disable=SC2086
"$bin" $small --strategy=optimistic --json=- --quiet >"$tmp/out" 2>"$tmp/err" ||
	fail "--json - exited $?"
[ "$(head -c 1 "$tmp/out")" = "{" ] || fail "--json - did not start with {"
grep -q '"runs"' "$tmp/out" && grep -q '"raw_cps"' "$tmp/out" ||
	fail "--json - lacks runs or baseline"
[ ! -s "$tmp/err" ] || fail "--quiet wrote to stderr"

# An unwritable JSON path: the run completes, the failure is reported, exit 3.
# shellcheck disable=SC2086
"$bin" $small --quiet --json="$tmp/no/such/dir/x.json" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 3 ] || fail "unwritable --json: exit $rc, expected 3"
grep -q "no/such/dir" "$tmp/err" || fail "unwritable --json: no message"

# --dump-plan: the sequence on disk, 48 + 16 bytes a command, and no run.
"$bin" --workload=bank --aggregates=64 --commands=1000 --dump-plan="$tmp/p.plan" \
	>"$tmp/out" 2>"$tmp/err" || fail "--dump-plan exited $?"
[ "$(wc -c <"$tmp/p.plan")" -eq $((48 + 16 * 1000)) ] || fail "--dump-plan: wrong size"
[ "$(head -c 12 "$tmp/p.plan")" = "ESRPLAN1bank" ] || fail "--dump-plan: wrong header"
[ ! -s "$tmp/out" ] || fail "--dump-plan ran something: $(cat "$tmp/out")"
"$bin" --commands=10 --dump-plan="$tmp/no/such/dir/p" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 3 ] || fail "unwritable --dump-plan: exit $rc, expected 3"
grep -q "no/such/dir" "$tmp/err" || fail "unwritable --dump-plan: no message"

# --rate: an open loop cannot finish faster than it offers (2000 commands at
# 20000/s take at least 0.1 s), nor run above the rate.
"$bin" --aggregates=64 --commands=2000 --workers=2 --rate=20000 --strategy=unchecked \
	--quiet --json=- >"$tmp/out" || fail "--rate exited $?"
grep -q '"rate": 20000' "$tmp/out" || fail "--rate: the JSON does not say the rate"
awk '/"seconds":/ { gsub(/,/, "", $2); if ($2 + 0 > 0.09) ok = 1 }
     /"throughput_cps":/ { gsub(/,/, "", $2); if ($2 + 0 > 21000) over = 1 }
     END { exit !(ok && !over) }' "$tmp/out" ||
	fail "--rate=20000: ran faster than offered: $(grep -E '"seconds"|throughput' "$tmp/out")"
# ... and times every command, where a closed loop times one in 16.
[ "$(grep -c '"timed": 2000,' "$tmp/out")" -eq 1 ] ||
	fail "--rate: not every command timed: $(grep '"timed"' "$tmp/out")"
"$bin" --aggregates=64 --commands=2000 --workers=2 --strategy=unchecked --quiet --json=- \
	>"$tmp/out" || fail "a closed loop exited $?"
[ "$(grep -c '"timed": 125,' "$tmp/out")" -eq 1 ] ||
	fail "a closed loop: not one command in 16 timed: $(grep '"timed"' "$tmp/out")"

# --store=file:DIR: both strategies on the durable store, fsyncs reported,
# and nothing left behind in DIR.
"$bin" --store=file:"$tmp/fs" --aggregates=64 --commands=3000 --workers=2 --check --quiet \
	--json=- >"$tmp/out" || fail "--store=file exited $?"
grep -q '"fsyncs": [1-9]' "$tmp/out" || fail "--store=file: no fsyncs in the JSON"
grep -q '"events_per_fsync"' "$tmp/out" || fail "--store=file: no events_per_fsync"
[ -z "$(ls -A "$tmp/fs")" ] || fail "--store=file left files behind: $(ls -A "$tmp/fs")"

# --check: every workload, one writer and three, passes (unchecked with three
# writers breaks rules, but that is a finding, not a failure).
for wl in bank inventory counter; do
	for writers in 1 3; do
		# shellcheck disable=SC2086
		"$bin" $small --check --quiet --workload=$wl --writers=$writers ||
			fail "--check --workload=$wl --writers=$writers exited $?"
	done
done

# --duration with several writers: writers stopped by time submit different
# counts, and the checker must still explain every event (it once bounded
# command numbers by the total and reported thousands of false violations).
for writers in 2 3; do
	"$bin" --duration=1 --writers=$writers --aggregates=8 --workers=2 --strategy=optimistic \
		--check --quiet || fail "--duration=1 --writers=$writers --check exited $?"
done

# --projection: a read model kept while the commands run equals a fresh
# replay under both strategies, and three writers (which break rules under
# unchecked) make no difference to that.
"$bin" --aggregates=64 --commands=5000 --workers=2 --writers=3 --projection --check \
	--json=- >"$tmp/out" 2>"$tmp/err" || fail "--projection exited $?"
[ "$(grep -c '"equals_replay": true' "$tmp/out")" -eq 2 ] ||
	fail "--projection: the read model is not a replay's in both runs: $(cat "$tmp/err")"
grep -q 'projection (optimistic): .* read model equals a fresh replay; 0 aggregates' \
	"$tmp/err" || fail "--projection: no line for optimistic: $(cat "$tmp/err")"
bad --projection --projection --processes=2 --store=postgres:

# --duplicates: resent commands (in flight, after completion, by the next
# writer) take effect once under both strategies, even unchecked with three
# writers; the JSON counts what was sent and detected.
"$bin" --workload=bank --aggregates=32 --commands=6000 --workers=2 --writers=3 \
	--duplicates=0.3 --check --quiet --json=- >"$tmp/out" || fail "--duplicates exited $?"
[ "$(grep -c '"duplicates_applied": 0' "$tmp/out")" -eq 2 ] ||
	fail "--duplicates: a resend took effect twice: $(cat "$tmp/out")"
grep -q '"duplicates_sent": 0,' "$tmp/out" && fail "--duplicates: nothing was resent"
grep -q '"duplicates_detected": 0,' "$tmp/out" && fail "--duplicates: no duplicate detected"
"$bin" --store=file:"$tmp/fs" --workload=bank --aggregates=32 --commands=3000 --workers=2 \
	--writers=2 --duplicates=0.3 --check --quiet --json=- >"$tmp/out" ||
	fail "--duplicates --store=file exited $?"
[ "$(grep -c '"duplicates_applied": 0' "$tmp/out")" -eq 2 ] ||
	fail "--duplicates --store=file: a resend took effect twice: $(cat "$tmp/out")"
bad --duplicates --duplicates=x
bad --duplicates --duplicates=1.5

# --snapshot-every: the activation table, with fewer events replayed with
# snapshots than without for the largest aggregates.
"$bin" --aggregates=16 --commands=500 --workers=2 --snapshot-every=1000 >"$tmp/out" ||
	fail "--snapshot-every exited $?"
grep -q '^100000 .* 100000 -> 0$' "$tmp/out" ||
	fail "--snapshot-every: no activation row for 100000 events: $(tail -5 "$tmp/out")"
"$bin" --aggregates=16 --commands=500 --workers=2 --snapshot-every=1000 \
	--store=file:"$tmp/fs" --quiet || fail "--snapshot-every on the file store exited $?"
[ -z "$(ls -A "$tmp/fs")" ] || fail "--snapshot-every left files behind: $(ls -A "$tmp/fs")"
bad --snapshot-every --snapshot-every=x

[ "$failures" -eq 0 ] || exit 1
echo "stress_cli: all checks passed"
