#!/bin/sh
# esr-stress on PostgreSQL with two processes sharing the store, on a
# contended bank workload: optimistic keeps every rule (--check fails the run
# otherwise) while retrying conflicts; unchecked loses updates.
# Usage: stress_pg.sh ESR_STRESS (ESR_PG_ENV names the server's settings).
set -eu
stress=$1
conninfo=$(sed -n 's/^ESR_PG_CONNINFO=//p' "${ESR_PG_ENV:-/nonexistent}" 2>/dev/null || true)
if [ -z "$conninfo" ]; then
	if [ "${ESR_PG_REQUIRED:-0}" = 1 ]; then
		echo "FAIL: no PostgreSQL server (ESR_PG_REQUIRED=1)" >&2
		exit 1
	fi
	echo "SKIP: no PostgreSQL server" >&2
	exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$stress" --store="postgres:$conninfo" --processes=2 --workers=2 --aggregates=32 \
	--commands=12000 --check --json="$out" --quiet
# The JSON is one document; pick each run's fields with sed (no jq needed).
runs=$(tr -d '\n ' <"$out" | sed 's/},{"strategy"/}\n{"strategy"/g')
echo "$runs" | grep -q '"processes":2' || { echo "FAIL: the JSON does not say 2 processes" >&2; exit 1; }
opt=$(echo "$runs" | grep '"strategy":"optimistic"')
unc=$(echo "$runs" | grep '"strategy":"unchecked"')
field() { echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" | head -n 1; }
[ "$(field "$opt" invariant_violations)" = 0 ] || { echo "FAIL: optimistic broke a rule" >&2; exit 1; }
[ "$(field "$opt" conflicts)" -gt 0 ] || { echo "FAIL: optimistic saw no conflicts" >&2; exit 1; }
[ "$(field "$opt" retries)" -gt 0 ] || { echo "FAIL: optimistic retried nothing" >&2; exit 1; }
[ "$(field "$unc" invariant_violations)" -gt 0 ] ||
	{ echo "FAIL: unchecked with two processes lost no update (it should)" >&2; exit 1; }
echo "stress_pg: optimistic: 0 violations, $(field "$opt" conflicts) conflicts;" \
	"unchecked: $(field "$unc" invariant_violations) violations"

# Resent commands (--duplicates), some by a writer in the other process,
# take effect once under both strategies: --check fails on any applied twice.
"$stress" --store="postgres:$conninfo" --processes=2 --workers=2 --aggregates=32 \
	--commands=6000 --duplicates=0.2 --check --json="$out" --quiet
runs=$(tr -d '\n ' <"$out" | sed 's/},{"strategy"/}\n{"strategy"/g')
for s in optimistic unchecked; do
	run=$(echo "$runs" | grep "\"strategy\":\"$s\"")
	[ "$(field "$run" duplicates_applied)" = 0 ] ||
		{ echo "FAIL: $s: a resent command took effect twice" >&2; exit 1; }
	[ "$(field "$run" duplicates_sent)" -gt 0 ] || { echo "FAIL: $s: nothing resent" >&2; exit 1; }
done
echo "stress_pg: --duplicates=0.2 with two processes: nothing applied twice"
