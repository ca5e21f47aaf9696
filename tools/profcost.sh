#!/bin/bash
# SPDX-License-Identifier: MIT
#
# profcost.sh: what the heap profiler costs when it is active, on every
# row of the bench suite: whole-program instructions (valgrind callgrind)
# with HAKMEM_PROF=1 at the default rate against HAKMEM_PROF unset, same
# library. Sizes are reduced from tools/bench/run.sh's so a row takes a few
# seconds under callgrind; the time-bounded rows get a limit they never
# reach, so both runs do the same work, and with the clock-driven purge
# pushed past the run (HAKMEM_PURGE_DELAY_MS=3600000, both modes): with
# it, when a decay pass falls moves the counts of the rows that free big
# blocks by a few percent from run to run, hiding the profiler's share.
# larson is time-bounded by design:
# its row compares instructions per operation inside its lanes
# (--toggle-collect=lane_thread: the lanes' mallocs and frees, the
# profiler's samples among them).
#
#   tools/profcost.sh [--timed N] [--only ROW[,ROW..]] [LIBHAKMEM.so]
#
#   LIBHAKMEM.so  default build/profcost/libhakmem.so (defconfig, built here)
#   --timed N     instead: N interleaved timed runs of each row at
#                 run.sh's sizes, off and on alternating; prints the median
#                 CPU time per operation of each (perf stat's task-clock,
#                 all threads, over the RESULT line's ops: on a loaded
#                 machine CPU time moves less than wall-clock throughput)
#                 and the ratio, and the median ops/s for reference
#   --only LIST   only these rows (prefixes ok)
#   --reps N      callgrind runs per row and mode (default 1), the median
#                 taken: the rows that free big blocks and the threaded ones
#                 vary by a few percent between runs (purge and decay
#                 follow the clock, threads interleave differently)
#
# Environment: PROFCOST_ENV (extra NAME=VALUE words for the active runs,
# e.g. HAKMEM_PROF_SAMPLE=65536).
set -u -o pipefail
export LC_ALL=C
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRCTREE/build/profcost
BIN=$SRCTREE/build/bench
timed=0
reps=1
only=""
lib=""
while [ $# -gt 0 ]; do
	case $1 in
	--timed) timed=${2:?--timed needs a count}; shift ;;
	--only) only=${2:?--only needs a list}; shift ;;
	--reps) reps=${2:?--reps needs a count}; shift ;;
	-*) echo "profcost.sh: unknown option $1" >&2; exit 2 ;;
	*) lib=$1 ;;
	esac
	shift
done
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES O ARCH V C T KBUILD_OUTPUT
unset HAKMEM_PROF HAKMEM_PROF_SAMPLE HAKMEM_PROF_LEAKS HAKMEM_PROF_SIGNAL
mkdir -p "$OUT" "$BIN"
if [ -z "$lib" ]; then
	make -C "$SRCTREE" -s O="$OUT/build" defconfig >/dev/null &&
		make -C "$SRCTREE" -s -j"$(nproc)" O="$OUT/build" all >/dev/null || exit 1
	lib=$OUT/build/libhakmem.so
fi
lib=$(realpath "$lib")
for p in "$SRCTREE"/tools/bench/*.c; do
	b=$BIN/$(basename "$p" .c)
	[ "$b" -nt "$p" ] && [ "$b" -nt "$SRCTREE/tools/bench/bench.h" ] && continue
	${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -pthread -o "$b" "$p" || exit 1
done

# name|callgrind arguments|timed arguments (run.sh's, 2 threads where threaded)
rows=(
	"random-mixed-128|random-mixed 128 1000000 4096 42|random-mixed 128 15000000 4096 42"
	"random-mixed-1024|random-mixed 1024 1000000 4096 42|random-mixed 1024 10000000 4096 42"
	"mid-size|size-mix mid-size 1 50000 1024 262144 256 42 1000|size-mix mid-size 1 1000000 1024 262144 256 42 0.75"
	"large-block|size-mix large-block 1 2000 65536 16777216 16 42 1000|size-mix large-block 1 20000 65536 16777216 16 42 0.75"
	"producer-consumer|producer-consumer 2 100000 8 512 42|producer-consumer 2 1500000 8 512 42"
	"thread-churn|thread-churn 2 800 64 42|thread-churn 2 8000 64 42"
	"larson|larson 2 8 1000 5000 100 4141 2|larson 0.75 8 1000 5000 100 4141 2"
	"realloc-chain|realloc-chain 1 200000 8 1048576 42 1000|realloc-chain 1 2500000 8 1048576 42 0.75"
	"footprint|footprint 2 5 200000 42|footprint 2 5 200000 42"
	"cache-scratch|cache-scratch 2 100 8 40000|cache-scratch 2 1000 8 40000"
)

selected() {
	local o
	[ -z "$only" ] && return 0
	for o in ${only//,/ }; do
		[[ $1 == "$o"* ]] && return 0
	done
	return 1
}

# callgrind Ir of the whole program; "Ir ops" on stdout
cg() {	# on|off args...
	local mode=$1 f=$OUT/cg.$$ ir ops tog=()
	shift
	[ "$1" = larson ] && tog=(--toggle-collect=lane_thread)
	local prog=$BIN/$1
	shift
	(cd "$OUT" && export HAKMEM_PURGE_DELAY_MS=3600000 && if [ "$mode" = on ]; then
		# shellcheck disable=SC2086 # PROFCOST_ENV is a list of words
		env LD_PRELOAD="$lib" HAKMEM_PROF=1 HAKMEM_PROF_OUT="$OUT/prof" ${PROFCOST_ENV:-} \
			valgrind --tool=callgrind "${tog[@]}" --callgrind-out-file="$f" "$prog" "$@"
	else
		env LD_PRELOAD="$lib" valgrind --tool=callgrind "${tog[@]}" --callgrind-out-file="$f" "$prog" "$@"
	fi) >"$f.stdout" 2>"$f.log" || { cat "$f.log" >&2; return 1; }
	ir=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$f.log" | tail -n1)
	ops=$(sed -n 's/^RESULT .* ops=\([0-9]*\) .*/\1/p' "$f.stdout" | head -n1)
	rm -f "$f" "$f".* "$OUT"/prof.*
	echo "$ir ${ops:-1}"
}

# median of column $2 of file $1
median() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g |
		awk '{ a[NR] = $1 } END { printf "%.1f\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# one timed run: "cpu-ns-per-op ops-per-sec" appended to $1
timed_run() {	# file on|off args...
	local f=$1 mode=$2 prog=$BIN/$3 ms ops ops_s
	shift 3
	# shellcheck disable=SC2086 # PROFCOST_ENV is a list of words
	(cd "$OUT" && if [ "$mode" = on ]; then
		env LD_PRELOAD="$lib" HAKMEM_PROF=1 HAKMEM_PROF_OUT="$OUT/prof" ${PROFCOST_ENV:-} \
			perf stat -x, -e task-clock -o "$OUT/perf.txt" "$prog" "$@"
	else
		env LD_PRELOAD="$lib" perf stat -x, -e task-clock -o "$OUT/perf.txt" "$prog" "$@"
	fi) >"$OUT/run.txt" 2>/dev/null
	rm -f "$OUT"/prof.*
	ms=$(awk -F, '$3 == "task-clock" || $3 ~ /^task-clock/ { print $1; exit }' "$OUT/perf.txt")
	ops=$(sed -n 's/^RESULT .* ops=\([0-9]*\) .*/\1/p' "$OUT/run.txt" | head -n1)
	ops_s=$(sed -n 's/^RESULT .* ops_per_sec=\([0-9]*\) .*/\1/p' "$OUT/run.txt" | head -n1)
	[ -n "$ms" ] && [ -n "$ops" ] && [ "$ops" -gt 0 ] || return 0
	echo "$ms $ops $ops_s" | awk '{ printf "%.3f %s\n", $1 * 1e6 / $2, $3 }' >>"$f"
}

if [ "$timed" -gt 0 ]; then
	command -v perf >/dev/null || { echo "profcost.sh: --timed needs perf (linux-perf)" >&2; exit 1; }
	printf '%-20s %12s %12s %9s %14s %14s\n' row "off ns/op" "on ns/op" "on/off" "off ops/s" "on ops/s"
	for r in "${rows[@]}"; do
		IFS='|' read -r name _ targs <<<"$r"
		selected "$name" || continue
		: >"$OUT/t.off"; : >"$OUT/t.on"
		for ((i = 0; i < timed; i++)); do
			# shellcheck disable=SC2086
			timed_run "$OUT/t.off" off $targs
			# shellcheck disable=SC2086
			timed_run "$OUT/t.on" on $targs
		done
		off=$(median "$OUT/t.off" 1); on=$(median "$OUT/t.on" 1)
		printf '%-20s %12s %12s %+8.1f%% %14s %14s\n' "$name" "$off" "$on" \
			"$(echo "$on $off" | awk '{ print ($1 / $2 - 1) * 100 }')" \
			"$(median "$OUT/t.off" 2)" "$(median "$OUT/t.on" 2)"
	done
	exit 0
fi

printf '%-20s %14s %14s %9s\n' row "off Ir" "on Ir" "on/off"
for r in "${rows[@]}"; do
	IFS='|' read -r name cargs _ <<<"$r"
	selected "$name" || continue
	: >"$OUT/r.off"; : >"$OUT/r.on"
	for ((i = 0; i < reps; i++)); do
		# shellcheck disable=SC2086
		cg off $cargs >>"$OUT/r.off" || exit 1
		# shellcheck disable=SC2086
		cg on $cargs >>"$OUT/r.on" || exit 1
	done
	if [ "$name" = larson ]; then	# the median of Ir per op
		awk '{ print $1 / $2, 1 }' "$OUT/r.off" >"$OUT/r.tmp" && mv "$OUT/r.tmp" "$OUT/r.off"
		awk '{ print $1 / $2, 1 }' "$OUT/r.on" >"$OUT/r.tmp" && mv "$OUT/r.tmp" "$OUT/r.on"
	fi
	off=$(median "$OUT/r.off" 1); on=$(median "$OUT/r.on" 1)
	if [ "$name" = larson ]; then	# per operation
		printf '%-20s %14.1f %14.1f %+8.2f%%  (Ir per op in the lanes)\n' "$name" \
			"$off" "$on" "$(echo "$on $off" | awk '{ print ($1 / $2 - 1) * 100 }')"
	else
		printf '%-20s %14.0f %14.0f %+8.2f%%\n' "$name" "$off" "$on" \
			"$(echo "$on $off" | awk '{ print ($1 / $2 - 1) * 100 }')"
	fi
done
