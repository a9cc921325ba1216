#!/bin/sh
# docs/architecture.md's file table is the map of the source: every file the
# build compiles (given as arguments, relative to the source root) and every
# header of the library and esr-stress must have a row, and every row must
# name a file that exists.
#   sh scripts/check-architecture.sh SOURCE_ROOT FILE...
# Exits 1 and lists what is missing or stale.
set -eu
root=$1
shift
doc=$root/docs/architecture.md
[ -r "$doc" ] || { echo "check-architecture: cannot read $doc" >&2; exit 1; }

# The rows of the table under "## Every file": "| `path` | what it is |".
rows=$(awk '/^## /{on = ($0 == "## Every file")} on' "$doc" |
	sed -n 's/^| `\([^` ]*\)` |.*/\1/p')
headers=$(cd "$root" && find include/esr core store subscription runtime tools/stress \
	-name '*.h' | sort)
bad=0
for f in "$@" $headers; do
	if ! printf '%s\n' "$rows" | grep -qxF "$f"; then
		echo "check-architecture: $f has no row in docs/architecture.md" >&2
		bad=1
	fi
done
for f in $rows; do
	if [ ! -e "$root/$f" ]; then
		echo "check-architecture: docs/architecture.md names $f, which does not exist" >&2
		bad=1
	fi
done
[ "$bad" = 0 ] && echo "check-architecture: $(printf '%s\n' "$rows" | wc -l) files mapped"
exit "$bad"
