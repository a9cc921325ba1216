#!/bin/sh
# Installs what building and testing esr needs, on Debian 12 (bookworm) or
# later, starting from nothing but apt, plus any packages named as arguments.
# Installs only what is missing; uses sudo when not run as root.
set -eu

# gcc brings the sanitizer runtimes (libasan, libubsan, libtsan) with it.
packages="gcc libc6-dev make cmake pkg-config libck-dev libcmocka-dev libjansson-dev libmicrohttpd-dev"
# The PostgreSQL store builds against libpq; its tests start a throwaway
# server from Debian's postgresql (scripts/pg-server.sh).
packages="$packages libpq-dev postgresql"
# The HTTP service example (examples/bank_service) and its tests, which
# drive it with curl as a client would and with wrk as a load would.
packages="$packages curl wrk"
# Extra packages a caller needs (CI's fuzzing: clang libclang-rt-14-dev).
packages="$packages $*"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "install-deps: need root or sudo to install:$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
