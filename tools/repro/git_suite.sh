#!/bin/bash
# SPDX-License-Identifier: MIT
# Run scripts of git's own test suite under one allocator, one script at a time per job,
# and keep each script's TAP so runs can be compared test by test (tools/repro/tap_cmp.py).
#
#   git_suite.sh GITSRC OUTDIR PRELOAD|- JOBS SCRIPT...
#
# GITSRC is a built git tree (`make`, no install); PRELOAD a libhakmem.so (or "-" for none).
# Why TEST_NO_MALLOC_CHECK=1: git's test-lib.sh otherwise sets LD_PRELOAD to glibc's
# libc_malloc_debug.so.0 around every test and unsets it after, so the allocator under test
# would silently be replaced (it reaches no git process run by a test body).
# Why --verbose-log: under a harness a test's stderr goes to /dev/null; the log keeps it, so a
# "hakmem: ..." line from any git process can be found afterwards.
# Each script runs under `timeout 600` (the whole process group), so a hang is counted.
# Scripts that start a daemon (git daemon, http) take its port from the test number: two runs
# side by side must not run the same one at the same time, or the second skips itself.
set -u
src=$1 out=$2 pre=$3 jobs=$4; shift 4
mkdir -p "$out/tap"
export TEST_NO_MALLOC_CHECK=1 TEST_OUTPUT_DIRECTORY=$out
if [ "$pre" != - ]; then export LD_PRELOAD=$pre; else unset LD_PRELOAD; fi

one() {
	local n=${1%.sh} s e rc
	s=$(date +%s.%N)
	/usr/bin/time -f "$n %e %U %S %M %R" -a -o "$out/cpu.txt" \
		timeout -k 10 600 /bin/sh "$1" --verbose-log >"$out/tap/$n.tap" 2>"$out/tap/$n.err"
	rc=$?
	e=$(date +%s.%N)
	echo "$n $rc $(echo "$e - $s" | bc)" >>"$out/rc.txt"
}
export -f one; export out

cd "$src/t" || exit 1
printf '%s\n' "$@" | xargs -n1 -P"$jobs" bash -c 'one "$0"'
grep -h '^hakmem' "$out"/test-results/*.out "$out"/tap/*.err 2>/dev/null | sort | uniq -c
