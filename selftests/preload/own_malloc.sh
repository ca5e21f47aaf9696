#!/bin/sh
# SPDX-License-Identifier: MIT
#
# A program with its own malloc family under LD_PRELOAD=$HAKMEM_LIB:
# own_malloc.c exports malloc, free, realloc and the aligned calls from the
# executable, which the dynamic linker binds ahead of the preload (Firefox
# does this with mozjemalloc), but no reallocarray. hakmem's reallocarray
# must then reach the program's realloc, as glibc's does: the block it
# returns is freed by the program's free, and the program's blocks come to
# it. Before the fix, reallocarray served a hakmem block and the program's
# allocator aborted on it (Firefox under X: SIGSEGV in XFree at start).
# The same program without its allocator (-DPLAIN) must run on hakmem's.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 6

preload_cc

prog=$workdir/own_malloc
"$cc" -O2 -Wall -Wextra -Werror -o "$prog" "$dir/own_malloc.c" 2>"$workdir/build.err" &&
	"$cc" -O2 -Wall -Wextra -Werror -DPLAIN -o "$prog.plain" "$dir/own_malloc.c" 2>>"$workdir/build.err"
built_or_skip $? "own_malloc.c builds (with and without its own allocator)" "$prog.plain" own_malloc.c

# passes PROG MODE WHAT: exit 0, "ok", no line from hakmem or the program's
# allocator, and the same as without hakmem.
passes() {
	"$1" "$2" >"$workdir/plain" 2>&1
	with_hakmem "$1" "$2" >"$workdir/out" 2>"$workdir/err"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^ok$' "$workdir/out" && [ ! -s "$workdir/err" ] &&
	   cmp -s "$workdir/plain" "$workdir/out"; then
		tap_ok 0 "$3"
	else
		tap_ok 1 "$3"
		tap_diag "exit $rc; stdout/stderr:"
		head -n 3 "$workdir/out" "$workdir/err" | sed 's/^/# /'
	fi
}

passes "$prog" grow "program's own malloc: reallocarray(NULL) and its growth go to the program's realloc, its free takes the block"
passes "$prog" overflow "program's own malloc: reallocarray overflow is NULL + ENOMEM, the block intact, realloc not called"
passes "$prog.plain" grow "hakmem's malloc: reallocarray allocates, grows and frees"
passes "$prog.plain" overflow "hakmem's malloc: reallocarray overflow is NULL + ENOMEM, the block intact"
stats_check "own_malloc -DPLAIN" "$prog.plain" grow
tap_finish
