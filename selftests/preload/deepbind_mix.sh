#!/bin/sh
# SPDX-License-Identifier: MIT
#
# A plugin loaded with RTLD_DEEPBIND under LD_PRELOAD=$HAKMEM_LIB, as PHP 8.2
# loads its extensions (pdo.so, phar.so, tokenizer.so crash at startup under
# any preloaded allocator: reliability.md, "Seventeenth run"). The plugin's
# own malloc and free bind to the C library's, the program's to hakmem: two
# allocators in one process that the program did not ask for. Each block
# kept to its own family must run (the clean twin); a block from the
# plugin's malloc handed to the program's free, realloc or
# malloc_usable_size must end in the fail-fast report and SIGABRT, never a
# silent free into the wrong heap. The other direction (a hakmem block to
# the plugin's free) reaches glibc's free, which is glibc's to catch.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 13

preload_cc

prog=$workdir/deepbind_mix
"$cc" -O2 -Wall -Wextra -Werror -shared -fPIC -o "$workdir/deepbind_plug.so" \
	"$dir/deepbind_plug.c" 2>"$workdir/build.err" &&
"$cc" -O2 -Wall -Wextra -Werror -o "$prog" "$dir/deepbind_mix.c" -ldl 2>>"$workdir/build.err"
built_or_skip $? "deepbind_mix.c and deepbind_plug.c build" "$prog" deepbind_mix.c

# the situation under test: the plugin's malloc from libc, the program's from hakmem
env LD_DEBUG=bindings LD_PRELOAD="$HAKMEM_LIB" "$prog" clean 100 >/dev/null 2>"$workdir/bind.err"
lib=$(basename "$HAKMEM_LIB")
if grep -q "deepbind_plug.so .*to .*libc.so.6 .*symbol \`malloc'" "$workdir/bind.err" &&
   grep -q "deepbind_mix .*to .*$lib .*symbol \`malloc'" "$workdir/bind.err"; then
	tap_ok 0 "the plugin's malloc binds to libc.so.6, the program's to $lib"
else
	tap_ok 1 "the plugin's malloc binds to libc.so.6, the program's to $lib"
	grep -E "symbol \`malloc'" "$workdir/bind.err" | head -n 3 | sed 's/^/# /'
fi

for n in 100 100000 10000000; do
	foreign_aborts "a deepbound plugin" "$prog" free "$n" "invalid free of 0x[0-9a-f]*: not allocated by hakmem"
	foreign_aborts "a deepbound plugin" "$prog" realloc "$n" "realloc of a pointer not allocated by hakmem"
	foreign_aborts "a deepbound plugin" "$prog" usable "$n" "usable size of a pointer not allocated by hakmem"
done

clean_twin "clean twin: each block back to its own family, the plugin's strdup to hakmem, exit 0" "$prog" clean 100
"$prog" clean 100 >"$workdir/out" 2>&1
tap_ok $? "clean twin without hakmem exits 0"
tap_finish
