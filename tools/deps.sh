#!/bin/sh
# SPDX-License-Identifier: MIT
#
# deps.sh: make sure the Debian packages hakmem needs are installed.
# As root, installs the missing ones with apt-get; otherwise prints the
# exact command and fails. The Makefile calls it when a tool is missing;
# tools/check.sh calls it first.
#
#   tools/deps.sh          install what is missing (root) or explain
#   tools/deps.sh --list   print the package list
#   tools/deps.sh --check  exit 0 iff everything is installed
#
# The one list of packages: add new needs here.
PACKAGES="
	build-essential
	python3
	python3-kconfiglib
	sparse
	pkg-config
	git
	xz-utils
	time
	strace
	valgrind
	clang
	libclang-rt-14-dev
	gnuplot-nox
	golang-go
	libjemalloc2
"

set -eu

missing() {
	for p in $PACKAGES; do
		s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case $s in
		*" installed") ;;
		*) echo "$p" ;;
		esac
	done
}

case ${1:-} in
--list)
	echo $PACKAGES
	exit 0 ;;
--check)
	[ -z "$(missing)" ]
	exit ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; install the equivalents of:" >&2
	echo "  " $PACKAGES >&2
	exit 1
fi

todo=$(missing)
[ -z "$todo" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing Debian packages:" $todo >&2
	echo "deps.sh: as root, run:  apt-get install -y" $todo >&2
	exit 1
fi

echo "deps.sh: installing" $todo
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $todo
