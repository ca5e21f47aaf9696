#!/bin/sh
# SPDX-License-Identifier: MIT
#
# A program with a conservative garbage collector under LD_PRELOAD: Boehm
# GC (Guile 3.0's) scans every loaded object's writable segments as roots
# and lets about a third of their size be allocated between collections,
# so hakmem's writable segments must stay small. With the registry as
# 64 MiB of .bss, Guile's heap grew by about 25 MB (its compiler: peak
# 61 MB against glibc's 36; the loop below 38 MB against 12). Checked:
# libhakmem.so's writable segments are under 1 MiB, and the peak RSS of a
# Guile loop that allocates 16 MB of short-lived lists stays within half
# again glibc's plus 2 MiB (skipped without guile-3.0).

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 3

preload_cc

prog=$workdir/gc_roots
"$cc" -O2 -Wall -Wextra -Werror -o "$prog" "$dir/gc_roots.c" 2>"$workdir/build.err"
built_or_skip $? "gc_roots.c builds" "$prog" gc_roots.c

w=$(with_hakmem "$prog" segs)
case $w in
''|none|*[!0-9]*) tap_ok 1 "libhakmem.so's writable segments: not found ($w)" ;;
*) [ "$w" -lt 1048576 ]
   tap_ok $? "libhakmem.so's writable segments, a collector's roots, are under 1 MiB ($w bytes)" ;;
esac

guile=$(command -v guile-3.0 2>/dev/null || command -v guile 2>/dev/null)
[ -n "$guile" ] || tap_skip_rest "guile is not installed"
loop='(let loop ((i 0) (n 0)) (if (< i 100) (loop (+ i 1) (+ n (length (iota 100000)))) (display n)))'
g=$(GUILE_AUTO_COMPILE=0 "$prog" rss "$guile" --no-auto-compile -c "$loop")
h=$(GUILE_AUTO_COMPILE=0 with_hakmem "$prog" rss "$guile" --no-auto-compile -c "$loop")
if [ -z "$g" ] || [ -z "$h" ]; then
	tap_ok 1 "guile ran (glibc '$g' KiB, hakmem '$h' KiB)"
else
	[ "$h" -le $((g * 3 / 2 + 2048)) ]
	tap_ok $? "Guile's peak RSS under hakmem follows glibc's ($h KiB against $g)"
fi
tap_finish
