#!/bin/sh
# scripts/thread-cpu.sh PID: each thread's CPU use of process PID, once a
# second until it exits, in clock ticks per second (100 = one whole core on
# the usual 100 Hz tick), threads under 4 ticks left out. How the split
# between workers and submitter in docs/architecture.md was taken, e.g.:
#   esr-stress --workload=counter --aggregates=10000 --commands=8000000 \
#       --workers=2 --strategy=unchecked &
#   scripts/thread-cpu.sh "$(pgrep -n esr-stress)"
# (esr-stress runs each strategy in a child process: take the newest.)
pid=${1:?usage: scripts/thread-cpu.sh PID}
prev=""
while kill -0 "$pid" 2>/dev/null; do
	now=$(for t in /proc/"$pid"/task/*; do
		# utime + stime, counted after the name: a name may hold spaces
		awk -v t="${t##*/}" '{ sub(/.*\) /, ""); print t, $12 + $13 }' "$t/stat" 2>/dev/null
	done)
	if [ -n "$prev" ]; then
		printf '%s\n%s\n' "$prev" "$now" | awk '
			($1 in seen) { d = $2 - seen[$1]; if (d >= 4) line = line " " $1 ":" d; next }
			{ seen[$1] = $2 }
			END { print substr(line, 2) }'
	fi
	prev=$now
	sleep 1
done
