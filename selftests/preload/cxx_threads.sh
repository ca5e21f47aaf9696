#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (13-21 s of make check's defconfig run: started first, not last)
#
# A multi-threaded C++ program under LD_PRELOAD=$HAKMEM_LIB: cxx_threads.cc
# (std::thread, std::map, std::unordered_map, std::vector, std::string,
# shared_ptr graphs passed between threads, exceptions), built here with
# g++, must print the same with and without hakmem, three runs each, and
# the preloaded program must really run on hakmem.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 4

preload_cxx

prog=$workdir/cxx_threads
"$cxx" -std=c++17 -O2 -g -Wall -Wextra -Werror -pthread -o "$prog" \
	"$dir/cxx_threads.cc" 2>"$workdir/build.err"
tap_ok $? "cxx_threads.cc builds with g++ -std=c++17 -O2 -Wall -Wextra -Werror"
if [ ! -x "$prog" ]; then
	sed 's/^/# /' "$workdir/build.err" | head -n 10
	for i in 2 3 4; do
		tap_ok 1 "cxx_threads did not build"
	done
	tap_finish
fi

rc1=0
rc2=0
for i in 1 2 3; do
	"$prog" >"$workdir/plain.$i" 2>&1 || rc1=$?
	with_hakmem "$prog" >"$workdir/hak.$i" 2>&1 || rc2=$?
done
same_status "C++ threads, containers, shared_ptr and exceptions run under hakmem (3 runs)" "$rc1" "$rc2"
if cmp -s "$workdir/plain.1" "$workdir/hak.1" && cmp -s "$workdir/hak.1" "$workdir/hak.2" &&
   cmp -s "$workdir/hak.1" "$workdir/hak.3" && cmp -s "$workdir/plain.1" "$workdir/plain.2" &&
   cmp -s "$workdir/plain.1" "$workdir/plain.3"; then
	tap_ok 0 "C++ program output identical with and without hakmem, every run"
else
	tap_ok 1 "C++ program output identical with and without hakmem, every run"
	tap_diff "$workdir/plain.1" "$workdir/hak.1"
fi
stats_check cxx_threads "$prog"
tap_finish
