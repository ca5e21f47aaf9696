#!/bin/sh
# SPDX-License-Identifier: MIT
#
# jemalloc's own API next to hakmem under LD_PRELOAD=$HAKMEM_LIB, as in
# BIND 9.18's named, which Debian links to libjemalloc.so.2 and whose libisc
# calls mallocx, rallocx, sallocx and sdallocx. hakmem exports none of
# these, so they bind to jemalloc while malloc, realloc and free bind to
# hakmem: two allocators in one process. Each pair kept to its own
# allocator must run (the clean twin, two threads, contents checked); a
# block from mallocx handed to free, realloc or malloc_usable_size must end
# in the fail-fast report and SIGABRT, never a silent free into the wrong
# heap, at jemalloc's small, large and huge sizes. Skipped where
# libjemalloc.so.2 is not installed.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
jelib=
for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
	[ -f "$d/libjemalloc.so.2" ] && jelib=$d/libjemalloc.so.2 && break
done
[ -n "$jelib" ] || tap_skip_all "libjemalloc.so.2 is not installed"
tap_plan 14

preload_cc

prog=$workdir/jemalloc_mix
"$cc" -O2 -Wall -Wextra -Werror -pthread -o "$prog" "$dir/jemalloc_mix.c" "$jelib" 2>"$workdir/build.err"
tap_ok $? "jemalloc_mix.c builds against $jelib"
if [ ! -x "$prog" ]; then
	sed 's/^/# /' "$workdir/build.err" | head -n 10
	tap_skip_rest "jemalloc_mix.c did not build"
fi

# the situation under test: mallocx from jemalloc, malloc from hakmem
env LD_DEBUG=bindings LD_PRELOAD="$HAKMEM_LIB" "$prog" clean 100 >/dev/null 2>"$workdir/bind.err"
lib=$(basename "$HAKMEM_LIB")
if bound_to mallocx libjemalloc.so.2 && bound_to malloc "$lib"; then
	tap_ok 0 "mallocx binds to libjemalloc.so.2, malloc to $lib"
else
	tap_ok 1 "mallocx binds to libjemalloc.so.2, malloc to $lib"
	grep -E "symbol \`(mallocx|malloc)'" "$workdir/bind.err" | head -n 3 | sed 's/^/# /'
fi

for n in 100 100000 10000000; do
	foreign_aborts jemalloc "$prog" free "$n" "invalid free of 0x[0-9a-f]*: not allocated by hakmem"
	foreign_aborts jemalloc "$prog" realloc "$n" "realloc of a pointer not allocated by hakmem"
	foreign_aborts jemalloc "$prog" usable "$n" "usable size of a pointer not allocated by hakmem"
done

for n in 100 100000; do
	clean_twin "clean twin ($n bytes, 2 threads): each allocator gets its own blocks, exit 0" "$prog" clean "$n"
done
"$prog" clean 100 >"$workdir/out" 2>&1
tap_ok $? "clean twin without hakmem (jemalloc alone) exits 0"
tap_finish
