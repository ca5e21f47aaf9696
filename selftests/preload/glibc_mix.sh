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

for n in $sizes; do
	foreign_aborts glibc "$prog" free "$n" "invalid free of 0x[0-9a-f]*: not allocated by hakmem"
	foreign_aborts glibc "$prog" realloc "$n" "realloc of a pointer not allocated by hakmem"
	foreign_aborts glibc "$prog" usable "$n" "usable size of a pointer not allocated by hakmem"
done
foreign_aborts glibc "$prog" calloc 100000 "not allocated by hakmem"

for n in 100 10000000; do
	clean_twin "clean twin ($n bytes): each allocator frees its own blocks, exit 0" "$prog" clean "$n"
done
tap_finish
