#!/bin/sh
# Runs esr-stress over writers 1..4 at skew 0 and 0.99 (bank workload, both
# strategies), then plots throughput and invariant violations against writers with
# gnuplot into docs/img/strategies.png. The data lands beside it as
# strategies.dat, so the figure can be checked against the numbers.
#
# usage: scripts/plot-strategies.sh [BUILD_DIR] [extra esr-stress flags...]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build/default}
[ $# -gt 0 ] && shift
stress=$build/tools/stress/esr-stress
out=docs/img
[ -x "$stress" ] || { echo "plot-strategies: build first: $stress is missing" >&2; exit 1; }
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "plot-strategies: installing gnuplot-nox" >&2
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One line per run: skew writers strategy throughput violations divergent.
# The JSON is esr-stress's own, one key per line; awk reads it.
: >"$tmp/data"
for skew in 0 0.99; do
	for writers in 1 2 3 4; do
		"$stress" --workload=bank --skew=$skew --writers=$writers --quiet --json=- "$@" |
			awk -v skew=$skew -v writers=$writers '
				/"strategy":/ { gsub(/[",]/, "", $2); s = $2 }
				/"throughput_cps":/ { gsub(/,/, "", $2); t = $2 }
				/"invariant_violations":/ { gsub(/,/, "", $2); v = $2 }
				/"divergent_aggregates":/ { gsub(/,/, "", $2); d = $2 }
				/"violations":/ { print skew, writers, s, t, v, d }' >>"$tmp/data"
	done
done
{
	echo "# skew writers strategy throughput_cps invariant_violations divergent_aggregates"
	echo "# esr-stress --workload=bank --skew=SKEW --writers=W $*"
	cat "$tmp/data"
} >"$out/strategies.dat"

gnuplot <<GP
set terminal pngcairo size 1200,480 font "sans,11"
set output "$out/strategies.png"
set multiplot layout 1,2 title "esr-stress, bank workload, both strategies ($(nproc) cores)"
set xlabel "writers (runtimes sharing one store)"
set xtics 1
set key top right
set grid
set ylabel "commands/s"
set yrange [0:*]
set title "throughput"
plot "< grep ' optimistic ' $out/strategies.dat | awk '\$1==0'" using 2:4 with linespoints lw 2 title "optimistic, skew 0", \
     "< grep ' optimistic ' $out/strategies.dat | awk '\$1==0.99'" using 2:4 with linespoints lw 2 title "optimistic, skew 0.99", \
     "< grep ' unchecked ' $out/strategies.dat | awk '\$1==0'" using 2:4 with linespoints lw 2 dt 2 title "unchecked, skew 0", \
     "< grep ' unchecked ' $out/strategies.dat | awk '\$1==0.99'" using 2:4 with linespoints lw 2 dt 2 title "unchecked, skew 0.99"
set ylabel "aggregates"
set title "invariant violations (aggregates whose rule broke)"
set key top left
plot "< grep ' optimistic ' $out/strategies.dat | awk '\$1==0'" using 2:5 with linespoints lw 2 title "optimistic, skew 0", \
     "< grep ' optimistic ' $out/strategies.dat | awk '\$1==0.99'" using 2:5 with linespoints lw 2 title "optimistic, skew 0.99", \
     "< grep ' unchecked ' $out/strategies.dat | awk '\$1==0'" using 2:5 with linespoints lw 2 dt 2 title "unchecked, skew 0", \
     "< grep ' unchecked ' $out/strategies.dat | awk '\$1==0.99'" using 2:5 with linespoints lw 2 dt 2 title "unchecked, skew 0.99"
unset multiplot
GP
echo "plot-strategies: wrote $out/strategies.png and $out/strategies.dat"
