#!/bin/sh
# tests/cli/bench_cli.sh ESR_STRESS BENCH_DIR: the bench programs run a small plan
# and pass their own checks; a bad plan file gets exit 2 and one line. The CAF
# and Erlang peers are run when they were built.
set -u
stress=$1
dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# A program's JSON line must say check ok and count every command.
ok() { # name commands
	grep -q '"check":"ok"' "$tmp/out" || fail "$1: check not ok: $(cat "$tmp/out" "$tmp/err")"
	grep -q "\"commands\":$2," "$tmp/out" || fail "$1: commands not $2: $(cat "$tmp/out")"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "$1: not one line of output"
}

for wl in counter bank; do
	"$stress" --workload=$wl --aggregates=64 --skew=0.99 --commands=5000 \
		--dump-plan="$tmp/$wl.plan" || fail "dump $wl"
done

# The mutex program: both workloads, 1 and 2 threads, more commands than the
# plan holds (the plan repeats).
for wl in counter bank; do
	for t in 1 2; do
		"$dir/bench_mutex" --plan "$tmp/$wl.plan" --commands 12000 --workers $t \
			>"$tmp/out" 2>"$tmp/err" || fail "bench_mutex $wl $t exited $?"
		ok "bench_mutex $wl $t" 12000
	done
done

# Bad plan files and command lines: exit 2, one line naming the problem.
head -c 100 "$tmp/bank.plan" >"$tmp/short.plan"
printf 'NOTAPLAN%072d' 0 >"$tmp/magic.plan"
bad() { # what file...
	what=$1
	shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "$what: exit $rc, expected 2"
	[ "$(wc -l <"$tmp/err")" -ge 1 ] || fail "$what: no message"
	[ ! -s "$tmp/out" ] || fail "$what: wrote to stdout"
}
bad "truncated plan" "$dir/bench_mutex" --plan "$tmp/short.plan" --commands 10 --workers 1
grep -q "truncated" "$tmp/err" || fail "truncated plan: message does not say so: $(cat "$tmp/err")"
bad "bad magic" "$dir/bench_mutex" --plan "$tmp/magic.plan" --commands 10 --workers 1
grep -q "magic" "$tmp/err" || fail "bad magic: message does not say so: $(cat "$tmp/err")"
bad "missing plan" "$dir/bench_mutex" --plan "$tmp/none.plan" --commands 10 --workers 1
bad "no commands" "$dir/bench_mutex" --plan "$tmp/bank.plan" --commands 0 --workers 1

# Idle memory: a figure per aggregate, for both event settings.
for e in 0 1; do
	"$dir/bench_idle" --aggregates 2000 --workers 2 --events $e >"$tmp/out" 2>"$tmp/err" ||
		fail "bench_idle --events $e exited $?"
	grep -q '"bytes_per_aggregate":' "$tmp/out" || fail "bench_idle: no figure: $(cat "$tmp/out")"
done
bad "bench_idle --events 2" "$dir/bench_idle" --aggregates 10 --events 2

# The peers, when built: both modes, both workloads.
if [ -x "$dir/bench_caf" ]; then
	for wl in counter bank; do
		for mode in ff rr; do
			"$dir/bench_caf" --plan "$tmp/$wl.plan" --commands 12000 --workers 2 --mode $mode \
				>"$tmp/out" 2>"$tmp/err" || fail "bench_caf $wl $mode exited $?"
			ok "bench_caf $wl $mode" 12000
		done
	done
	bad "bench_caf truncated plan" "$dir/bench_caf" --plan "$tmp/short.plan" --commands 10 \
		--workers 1 --mode ff
	# The scheduler policy: both run and are named in the line; others are refused.
	for pol in stealing sharing; do
		"$dir/bench_caf" --plan "$tmp/counter.plan" --commands 12000 --workers 2 --mode rr \
			--window 64 --policy $pol >"$tmp/out" 2>"$tmp/err" ||
			fail "bench_caf --policy $pol exited $?"
		ok "bench_caf --policy $pol" 12000
		grep -q "\"policy\":\"$pol\",\"window\":64," "$tmp/out" ||
			fail "bench_caf --policy $pol: not named: $(cat "$tmp/out")"
	done
	bad "bench_caf --policy bad" "$dir/bench_caf" --plan "$tmp/counter.plan" --commands 10 \
		--workers 1 --mode ff --policy fifo
else
	echo "bench_cli: bench_caf not built, skipped"
fi
peer=$(dirname "$0")/../../bench/erlang/esr_peer
if [ -f "$dir/esr_peer.beam" ] && command -v erl >/dev/null 2>&1; then
	for wl in counter bank; do
		for mode in ff rr; do
			ESR_PEER_EBIN=$dir sh "$peer" --plan "$tmp/$wl.plan" --commands 12000 \
				--workers 2 --mode $mode >"$tmp/out" 2>"$tmp/err" ||
				fail "erlang peer $wl $mode exited $?"
			ok "erlang peer $wl $mode" 12000
		done
	done
	ESR_PEER_EBIN=$dir bad "erlang truncated plan" sh "$peer" --plan "$tmp/short.plan" \
		--commands 10 --workers 1 --mode ff
else
	echo "bench_cli: Erlang peer not built, skipped"
fi

[ "$failures" -eq 0 ] || exit 1
echo "bench_cli: all checks passed"
