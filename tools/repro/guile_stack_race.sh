#!/bin/bash
# SPDX-License-Identifier: MIT
# guile_stack_race.sh [RUNS [TIMEOUT_S]]: run guile_stack_race.scm RUNS times
# (default 8) under $LD_PRELOAD (empty: glibc) and print one outcome a run:
# ok (the right sum), SIGSEGV, HUNG (still running after TIMEOUT_S seconds,
# default 25: a correct run takes about 1 s of CPU), with "madvise" when
# Guile printed "madvise failed". With gdb installed, a hung run's threads
# are listed first: "window" counts the threads stopped just after
# GC_call_with_alloc_lock returned into vm_expand_stack (a libguile frame).
# Guile's collector knobs (GC_FREE_SPACE_DIVISOR...) pass through.
runs=${1:-8}; limit=${2:-25}
here=$(cd "$(dirname "$0")" && pwd)
command -v guile-3.0 >/dev/null || { echo "no guile-3.0"; exit 4; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pre=$LD_PRELOAD; unset LD_PRELOAD
GUILE_AUTO_COMPILE=0 guile-3.0 -c "(use-modules (system base compile))
  (compile-file \"$here/guile_stack_race.scm\" #:output-file \"$tmp/race.go\")" >/dev/null || exit 1
expect="race 3208761"
for ((r = 1; r <= runs; r++)); do
	LD_PRELOAD=$pre GUILE_AUTO_COMPILE=0 guile-3.0 -c "(load-compiled \"$tmp/race.go\")" \
		>"$tmp/out" 2>"$tmp/err" &
	pid=$!
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	madv=$(grep -q 'madvise failed' "$tmp/err" && echo " madvise")
	if kill -0 $pid 2>/dev/null; then
		win=
		if command -v gdb >/dev/null; then
			win=" window=$(timeout 60 gdb -p $pid -batch -ex 'thread apply all bt 10' 2>/dev/null |
				grep -A1 'in GC_call_with_alloc_lock' | grep -c 'from .*libguile')"
		fi
		kill -9 $pid; wait $pid 2>/dev/null
		echo "run $r HUNG$win$madv"
		continue
	fi
	{ wait $pid; } 2>/dev/null; rc=$?
	if [ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = "$expect" ]; then
		echo "run $r ok$madv"
	elif [ $rc -eq 139 ]; then
		echo "run $r SIGSEGV$madv"
	else
		echo "run $r rc=$rc$madv $(head -c 100 "$tmp/out")"
	fi
done
