#!/bin/sh
# Every global symbol libesr defines carries the project's prefix: esr_ for
# the public API, esr__ for what the library's own files share. The shared
# library exports the public names only (the rest are hidden).
#   sh scripts/check-symbols.sh path/to/libesr.a [path/to/libesr.so]
# Names the compiler makes (a leading "__", sanitizer bookkeeping) are
# reserved to it and skipped. Exits 1 and lists the offenders.
set -eu
static=$1
shared=${2:-}
bad=0

# nm -g --defined-only: "address type name" for each defined global.
names=$(nm -g --defined-only "$static" | awk 'NF == 3 { print $3 }' | grep -v '^__' | sort -u)
[ -n "$names" ] || { echo "check-symbols: no symbols in $static" >&2; exit 1; }
stray=$(printf '%s\n' "$names" | grep -v '^esr_' || true)
if [ -n "$stray" ]; then
	echo "check-symbols: $static defines global names without the esr_/esr__ prefix:" >&2
	printf '  %s\n' $stray >&2
	bad=1
fi
if [ -n "$shared" ]; then
	leaked=$(nm -D --defined-only "$shared" | awk 'NF == 3 { print $3 }' | grep -v '^__' |
		grep -v '^esr_[a-z0-9]' | grep -v '^_init$\|^_fini$\|^_edata$\|^_end$\|^__bss_start$' || true)
	if [ -n "$leaked" ]; then
		echo "check-symbols: $shared exports names that are not public (esr_...):" >&2
		printf '  %s\n' $leaked >&2
		bad=1
	fi
fi
[ "$bad" = 0 ] && echo "check-symbols: $(printf '%s\n' "$names" | wc -l) global names, all prefixed"
exit "$bad"
