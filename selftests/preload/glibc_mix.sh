#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Mixing allocators under LD_PRELOAD=$HAKMEM_LIB: glibc_mix.c takes blocks
# from glibc's own malloc and calloc (found with dlsym in libc.so.6) and
# passes them to free, realloc and malloc_usable_size, which hakmem
# serves. Each must end in the fail-fast report ("not allocated by
# hakmem", one line naming the address) and SIGABRT, never a silent
# fallback to glibc and never a write into glibc's block; at three sizes
# (glibc's small bins, its heap top and its mmap'd blocks). The clean
# twin, each allocator getting its own blocks back, must exit 0.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
sizes="100 100000 10000000"
tap_plan 13

preload_cc

prog=$workdir/glibc_mix
"$cc" -O2 -Wall -Wextra -Werror -o "$prog" "$dir/glibc_mix.c" -ldl 2>"$workdir/build.err"
tap_ok $? "glibc_mix.c builds"
[ -x "$prog" ] || sed 's/^/# /' "$workdir/build.err" | head -n 10

# aborts OP SIZE WHAT: the preloaded run dies by SIGABRT (status 134) with
# exactly one hakmem line naming WHAT, and never reaches "reached".
aborts() {
	with_hakmem "$prog" "$1" "$2" >"$workdir/out" 2>"$workdir/err"
	rc=$?
	lines=$(grep -c '^hakmem: ' "$workdir/err")
	if [ "$rc" -eq 134 ] && [ "$lines" -eq 1 ] && grep -q "$3" "$workdir/err" &&
	   ! grep -q reached "$workdir/out"; then
		tap_ok 0 "glibc's $2-byte block to $1: fail-fast abort ($3)"
	else
		tap_ok 1 "glibc's $2-byte block to $1: fail-fast abort ($3)"
		tap_diag "exit $rc, $lines hakmem lines; stdout/stderr:"
		head -n 3 "$workdir/out" "$workdir/err" | sed 's/^/# /'
	fi
}

for n in $sizes; do
	aborts free "$n" "invalid free of 0x[0-9a-f]*: not allocated by hakmem"
	aborts realloc "$n" "realloc of a pointer not allocated by hakmem"
	aborts usable "$n" "usable size of a pointer not allocated by hakmem"
done
aborts calloc 100000 "not allocated by hakmem"

for n in 100 10000000; do
	with_hakmem "$prog" clean "$n" >"$workdir/out" 2>"$workdir/err"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^clean$' "$workdir/out" && ! grep -q hakmem "$workdir/err"; then
		tap_ok 0 "clean twin ($n bytes): each allocator frees its own blocks, exit 0"
	else
		tap_ok 1 "clean twin ($n bytes): each allocator frees its own blocks, exit 0"
		tap_diag "exit $rc"
		head -n 3 "$workdir/err" | sed 's/^/# /'
	fi
done
tap_finish
