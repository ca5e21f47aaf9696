#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Commit charge (Documentation/reliability.md, "Strict overcommit"):
# commit_charge.c reports what it would be charged against the commit
# limit under vm.overcommit_memory=2 (its private writable mappings,
# MAP_NORESERVE or not) when idle, with 100 MB of mixed sizes live in 4
# threads, and after freeing them and malloc_trim. Run without and with
# hakmem: idle and after must be within 8 MiB of the plain run (the
# page map and the registry, 4 GiB and 64 MiB of address space, are
# charged only for the granules written), the peak at most 2.5 times it
# (hakmem maps superslabs and L2.5 regions ahead: measured 1.75 times).
# Before the registry and the map were made read-only, idle was 4.07 GiB
# over. The machine's own setting is never touched: the figures are what
# mode 2 would charge, whatever mode runs.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 4

preload_cc

prog=$workdir/commit_charge
"$cc" -O2 -Wall -Wextra -Werror -pthread -o "$prog" "$dir/commit_charge.c" 2>"$workdir/build.err"
tap_ok $? "commit_charge.c builds"
[ -x "$prog" ] || sed 's/^/# /' "$workdir/build.err" | head -n 10

"$prog" >"$workdir/plain" 2>&1
with_hakmem "$prog" >"$workdir/hak" 2>&1

# val FILE KEY: the KiB figure on the line "KEY n"
val() {
	sed -n "s/^$2 \([0-9]*\)\$/\1/p" "$1"
}

for k in idle peak after; do
	p=$(val "$workdir/plain" $k)
	h=$(val "$workdir/hak" $k)
	if [ -z "$p" ] || [ -z "$h" ]; then
		tap_ok 1 "$k: both runs report a charge"
		head -n 3 "$workdir/plain" "$workdir/hak" | sed 's/^/# /'
		continue
	fi
	if [ $k = peak ]; then
		bar=$((p * 5 / 2))
		what="at most 2.5 times the plain run's"
	else
		bar=$((p + 8192))
		what="within 8 MiB of the plain run's"
	fi
	[ "$h" -le "$bar" ]
	tap_ok $? "$k: charge $h KiB with hakmem, $p KiB without: $what"
done
tap_finish
