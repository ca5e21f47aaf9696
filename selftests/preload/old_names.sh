#!/bin/sh
# SPDX-License-Identifier: MIT
#
# glibc's less used allocation names under LD_PRELOAD=$HAKMEM_LIB
# (old_names.c): mallopt, __libc_mallopt and __libc_mallinfo, which a
# program can call, and cfree, which a program linked before glibc 2.26
# calls through its old version. Each must be hakmem's: before rv31 the
# dynamic linker found glibc's, and cfree of a hakmem block went to
# glibc's free ("free(): invalid pointer", or worse when the words before
# the block looked like a chunk). mallopt must answer as glibc's does.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 8

preload_cc

prog=$workdir/old_names
"$cc" -O2 -Wall -Wextra -Werror -o "$prog" "$dir/old_names.c" -ldl 2>"$workdir/build.err"
built_or_skip $? "old_names.c builds" "$prog" old_names.c

lib=$(basename "$HAKMEM_LIB")
with_hakmem "$prog" names >"$workdir/names" 2>&1
n=$(grep -c " $lib\$" "$workdir/names")
tap_ok "$([ "$n" -eq 4 ] && echo 0 || echo 1)" \
	"mallopt, __libc_mallopt, __libc_mallinfo and old cfree are $lib's ($n of 4)"
[ "$n" -eq 4 ] || sed 's/^/# /' "$workdir/names"

same_run "mallopt" "mallopt: glibc's answers" "$prog" mallopt

for n in 100 100000 10000000; do
	clean_twin "old cfree of a $n-byte block: hakmem's free, exit 0" "$prog" cfree "$n"
done

# the same block freed twice with old cfree: hakmem's one-line report
foreign_aborts "an old binary" "$prog" cfree-twice 64 "double free"
tap_finish
