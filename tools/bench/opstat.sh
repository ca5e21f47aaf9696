#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# What one benchmark run costs per operation, for a loaded machine where
# wall-time ratios are noise: CPU time (task-clock, user, system), page
# faults, context switches, and the system calls that show lock waits
# (futex: a pthread mutex that had to wait makes one) and address-space
# changes (mmap, munmap, mremap, madvise: each takes the mm's lock for
# writing and, with two threads running, flushes the other CPU's TLB).
#
#   tools/bench/opstat.sh LIB.so|- PROG ARGS...
#
# LIB.so is preloaded ("-": none, the system malloc). PROG is a program of
# tools/bench (build/bench/<prog>) that prints a RESULT line with ops=.
# The system call counts need the syscalls tracepoints (root, or
# perf_event_paranoid <= 1 with tracefs readable); without them those
# columns are left out. Example, the suite's realloc-chain at 2 threads:
#
#   tools/bench/opstat.sh build/bench-perf/libhakmem.so \
#       build/bench/realloc-chain 2 2500000 8 1048576 42
{
set -u -o pipefail

if [ $# -lt 2 ]; then
	awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print } /^\{/ { exit }' "$0" >&2
	exit 2
fi
lib=$1
shift
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

events=task-clock,user_time,system_time,page-faults,context-switches
sys=syscalls:sys_enter_futex,syscalls:sys_enter_mmap,syscalls:sys_enter_munmap
sys=$sys,syscalls:sys_enter_mremap,syscalls:sys_enter_madvise
if perf stat -x, -e "$sys" -o /dev/null true 2>/dev/null; then
	events=$events,$sys
fi

pre=()
[ "$lib" != - ] && pre=(env "LD_PRELOAD=$lib")
if ! perf stat -x, -e "$events" -o "$tmp/stat" "${pre[@]}" "$@" >"$tmp/out" 2>&1; then
	cat "$tmp/out" >&2
	exit 1
fi
ops=$(grep -o ' ops=[0-9]*' "$tmp/out" | head -n 1 | cut -d= -f2)
if [ -z "$ops" ] || [ "$ops" = 0 ]; then
	echo "opstat: no ops= in the program's output" >&2
	cat "$tmp/out" >&2
	exit 1
fi
rate=$(grep -o 'ops_per_sec=[0-9]*' "$tmp/out" | head -n 1 | cut -d= -f2)
rss=$(grep -o 'rss_peak_kb=[0-9]*' "$tmp/out" | head -n 1 | cut -d= -f2)

# perf -x, lines: value,unit,event,...; task-clock is in ms, the *_time
# events in ns.
awk -F, -v ops="$ops" -v rate="${rate:-0}" -v rss="${rss:-0}" '
$3 == "task-clock" { tc = $1 * 1e6 }
$3 == "user_time" { ut = $1 }
$3 == "system_time" { st = $1 }
$3 == "page-faults" { pf = $1 }
$3 == "context-switches" { cs = $1 }
$3 ~ /^syscalls:sys_enter_/ { n = $3; sub(/^syscalls:sys_enter_/, "", n); sc[n] = $1; have = 1 }
END {
	printf "ops=%d ops/s=%d task_ns/op=%.1f user_ns/op=%.1f sys_ns/op=%.1f", ops, rate, tc / ops, ut / ops, st / ops
	printf " faults/kop=%.3f cs=%d", pf * 1000 / ops, cs
	if (have)
		printf " futex=%d mmap=%d munmap=%d mremap=%d madvise=%d", sc["futex"], sc["mmap"], sc["munmap"], sc["mremap"], sc["madvise"]
	printf " rss_peak_kb=%d\n", rss
}' "$tmp/stat"
exit 0
}
