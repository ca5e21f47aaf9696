#!/bin/sh
# SPDX-License-Identifier: MIT
#
# C++'s global operator new and delete under LD_PRELOAD=$HAKMEM_LIB, which
# defines all twenty of them (lib/interpose.c). cxx_new.cc checks what a
# program may rely on (new(0), the aligned forms, the new-handler loop,
# std::bad_alloc, nothrow) and that each block is hakmem's; the dynamic
# linker must bind the operators to hakmem. The same program linked to
# libjemalloc.so.2, which defines the operators too and whose operator
# delete calls free() through its PLT, is h2load's case (reliability.md,
# "Nineteenth run"): before hakmem defined them, a std::string that
# libstdc++ grew ended in "invalid free". It must now run on hakmem alone.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 7

preload_cxx
flags="-std=c++17 -O2 -Wall -Wextra -Werror -fno-builtin -fsized-deallocation"

prog=$workdir/cxx_new
# shellcheck disable=SC2086
"$cxx" $flags -o "$prog" "$dir/cxx_new.cc" 2>"$workdir/build.err"
built_or_skip $? "cxx_new.cc builds with g++ $flags" "$prog" cxx_new.cc

"$prog" >"$workdir/plain.out" 2>&1
tap_ok $? "cxx_new without hakmem (libstdc++'s operators) passes"
with_hakmem "$prog" hakmem >"$workdir/hak.out" 2>&1
rc=$?
tap_ok $rc "cxx_new under hakmem: new(0), alignment, new-handler, bad_alloc, nothrow, hakmem's blocks"
[ $rc -eq 0 ] || grep -v '^ok' "$workdir/hak.out" | head -n 5 | sed 's/^/# /'

env LD_DEBUG=bindings LD_PRELOAD="$HAKMEM_LIB" "$prog" >/dev/null 2>"$workdir/bind.err"
lib=$(basename "$HAKMEM_LIB")
bound_to _Znwm "$lib" && bound_to _ZdlPv "$lib"
rc=$?
tap_ok $rc "operator new and delete bind to $lib"
[ $rc -eq 0 ] || grep -E "symbol \`(_Znwm|_ZdlPv)'" "$workdir/bind.err" | head -n 3 | sed 's/^/# /'

jelib=
for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
	[ -f "$d/libjemalloc.so.2" ] && jelib=$d/libjemalloc.so.2 && break
done
[ -n "$jelib" ] || tap_skip_rest "libjemalloc.so.2 is not installed"

jeprog=$workdir/cxx_new_je
# shellcheck disable=SC2086
"$cxx" $flags -o "$jeprog" "$dir/cxx_new.cc" "$jelib" 2>"$workdir/build.err"
built_or_skip $? "cxx_new.cc linked to $jelib builds" "$jeprog" cxx_new_je

"$jeprog" >"$workdir/je.out" 2>&1
tap_ok $? "linked to jemalloc, without hakmem (jemalloc's operators) passes"

env LD_DEBUG=bindings LD_PRELOAD="$HAKMEM_LIB" "$jeprog" hakmem >"$workdir/hakje.out" 2>"$workdir/bind.err"
rc=$?
if [ $rc -eq 0 ] && ! grep -q '^hakmem: ' "$workdir/bind.err" &&
   bound_to _Znwm "$lib" && bound_to _ZdlPv "$lib" && ! bound_to _ZdlPv libjemalloc.so.2; then
	tap_ok 0 "linked to jemalloc, under hakmem: every operator binds to $lib, the program passes"
else
	tap_ok 1 "linked to jemalloc, under hakmem: every operator binds to $lib, the program passes"
	tap_diag "exit $rc"
	{ grep '^hakmem: ' "$workdir/bind.err"; grep -v '^ok' "$workdir/hakje.out"; } | head -n 4 | sed 's/^/# /'
fi
tap_finish
