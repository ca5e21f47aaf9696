#!/bin/bash
# SPDX-License-Identifier: MIT
#
# stress.sh: the threaded selftests run again and again, each run a new
# process, under several configurations.
#
#   tools/stress.sh [-n RUNS] [-f FORKRUNS] [-t THREADS] [-o PREFIX] [CONFIG...]   bounded (make check)
#   tools/stress.sh -d DURATION [-o PREFIX] [CONFIG...]                long mode (make stress)
#
# CONFIG: configs/ names (default: defconfig perf_defconfig debug_defconfig),
# each built into build/stress-<name> (the library and its core and
# sanitize selftests; -o PREFIX: into PREFIX-<name> instead, with <name>
# without its _defconfig, so `make check` passes build/check and the runs
# use its variants' trees, already built with the same configuration and
# flags, instead of building each configuration a second time).
#
# Bounded mode: for every CONFIG, RUNS (default 100) runs of
#   larson_sim 3 100000        4 threads, 3 rounds of fresh threads,
#                              1.2 million checked block replacements
#   threads_prodcons 10000 4   4- and 8-thread producer/consumer shapes,
#                              4 rounds each, 160000 blocks freed
#                              cross-thread and checked
# and FORKRUNS (default 5) runs of the fork scenarios at a short slice:
#   fork_signal 200            200 forks from a signal handler that
#                              interrupted malloc (signals from a second
#                              process, single-threaded allocating process)
#   fork_stdio 1               1 s of fork racing getline, fflush(NULL)
#                              and malloc threads
# With -t "16 64" (a list of thread counts, 2..64), the bounded mode runs
# instead, for every count T, RUNS runs of each of
#   larson_sim 12 100000/T T   T threads, 12 rounds of fresh threads
#                              (1.2 million replacements, 8000 slots;
#                              12 rounds so 64 heaps pass their warm-up)
#   threads_prodcons 10000 4 T 1 producer -> T-1 consumers and T/2 -> T/2
#   threads_churn 2000 T       2000 short threads, T at a time in the
#                              wide phases
# so a run at 64 threads on 2 cores stays about a second.
# Every repetition is its own process: a fresh allocator (first-use init,
# empty registry, first heap attach) and fresh threads, so start-up races
# get 100 chances per configuration, and a crash or hang ends one run and
# is counted, not the whole stress. A run fails on a non-zero exit, a
# signal or more than 120 s (a hang is a failure, never a skip; the fork
# scenarios also detect a hang themselves after 30 s without progress);
# its output is kept in build/stress-<name>/.
#
# Long mode: until DURATION (seconds, or with an s/m/h suffix) has passed,
# round-robin over the configurations and the full-size programs
# (larson_sim and threads_prodcons with their default sizes, the -t
# programs above at 16 and 64 threads, selftests/sanitize at scale 4, and
# the fork scenarios at full size: fork_signal 10000 and fork_stdio 20,
# each allowed 900 s); -j JOBS runs (default 2) at a time.
#
# Ends with "N passed, N failed" (N = runs).

set -u
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRCTREE/build
unset MAKEFLAGS MFLAGS MAKELEVEL O ARCH V C T KBUILD_OUTPUT HAKMEM_SELFTEST_QUICK

runs=100
forkruns=5
duration=
jobs=2
threads=
prefix=$BUILD/stress
while getopts "n:f:d:j:t:o:" o; do
	case $o in
	n) runs=$OPTARG ;;
	f) forkruns=$OPTARG ;;
	d) duration=$OPTARG ;;
	j) jobs=$OPTARG ;;
	t) threads=${OPTARG//,/ } ;;
	o) prefix=$OPTARG ;;
	*) sed -n '4,8p' "$0"; exit 2 ;;
	esac
done
for t in $threads; do
	case $t in
	''|*[!0-9]*) echo "stress: -t needs thread counts (2..64), got '$t'"; exit 2 ;;
	esac
	if [ "$t" -lt 2 ] || [ "$t" -gt 64 ]; then
		echo "stress: -t needs thread counts (2..64), got '$t'"; exit 2
	fi
done
shift $((OPTIND - 1))
[ $# -eq 0 ] && set -- defconfig perf_defconfig debug_defconfig

if [ -n "$duration" ]; then
	case $duration in
	*h) duration=$(( ${duration%h} * 3600 )) ;;
	*m) duration=$(( ${duration%m} * 60 )) ;;
	*s) duration=${duration%s} ;;
	esac
fi

passed=0
failed=0

build() {
	local cfg=$1 dir=$prefix-${1%_defconfig}
	local mk=(make -C "$SRCTREE" --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" O="$dir")
	if ! { "${mk[@]}" -s "$cfg" && "${mk[@]}" -s all selftests-build T="core sanitize"; } \
		>"$dir.build.log" 2>&1; then
		tail -n 30 "$dir.build.log"
		echo "stress: build of $cfg failed"
		return 1
	fi
}

# run CFG LABEL PROG ARGS...: one run, counted; output kept on failure.
# RUN_TIMEOUT (seconds, default 120) bounds it.
run() {
	local cfg=$1 label=$2 prog=$3; shift 3
	local dir=$prefix-${cfg%_defconfig} rc out
	out=$(mktemp)
	(cd "$dir/selftests/${prog%/*}" && exec timeout -k 10 "${RUN_TIMEOUT:-120}" "./${prog#*/}" "$@") \
		>"$out" 2>&1 </dev/null
	rc=$?
	if [ $rc -eq 0 ]; then
		rm -f "$out"
		return 0
	fi
	mv "$out" "$dir/fail-$label.log"
	echo "FAIL $cfg $prog $* ($label): exit $rc, log ${dir#"$SRCTREE"/}/fail-$label.log"
	grep -E '^not ok|^Bail|^#' "$dir/fail-$label.log" | head -n 10 | sed 's/^/  | /'
	return 1
}

mkdir -p "$BUILD"
for cfg in "$@"; do
	build "$cfg" || { failed=$((failed + 1)); exit 1; }
done

# The programs of one bounded repetition at T threads (-t).
wide_progs() {
	echo "core/larson_sim 12 $((100000 / $1)) $1"
	echo "core/threads_prodcons 10000 4 $1"
	echo "core/threads_churn 2000 $1"
}

if [ -z "$duration" ] && [ -n "$threads" ]; then
	for cfg in "$@"; do
		for t in $threads; do
			start=$(date +%s)
			p=0 f=0
			mapfile -t wp < <(wide_progs "$t")
			for i in $(seq 1 "$runs"); do
				for pa in "${wp[@]}"; do
					# shellcheck disable=SC2086 # program and its arguments
					if run "$cfg" "t$t-$(basename "${pa%% *}")-$i" $pa; then
						p=$((p + 1)); else f=$((f + 1)); fi
				done
			done
			echo "$cfg, $t threads: larson_sim, threads_prodcons, threads_churn x $runs:" \
				"$p runs passed, $f failed in $(( $(date +%s) - start ))s"
			passed=$((passed + p))
			failed=$((failed + f))
		done
	done
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi

if [ -z "$duration" ]; then
	for cfg in "$@"; do
		start=$(date +%s)
		p=0 f=0
		for i in $(seq 1 "$runs"); do
			if run "$cfg" "larson-$i" core/larson_sim 3 100000; then
				p=$((p + 1)); else f=$((f + 1)); fi
			if run "$cfg" "prodcons-$i" core/threads_prodcons 10000 4; then
				p=$((p + 1)); else f=$((f + 1)); fi
		done
		for i in $(seq 1 "$forkruns"); do
			if run "$cfg" "fork-signal-$i" core/fork_signal 200; then
				p=$((p + 1)); else f=$((f + 1)); fi
			if run "$cfg" "fork-stdio-$i" core/fork_stdio 1; then
				p=$((p + 1)); else f=$((f + 1)); fi
		done
		echo "$cfg: larson_sim x $runs, threads_prodcons x $runs," \
			"fork_signal 200 x $forkruns, fork_stdio 1 x $forkruns: $p runs passed," \
			"$f failed in $(( $(date +%s) - start ))s"
		passed=$((passed + p))
		failed=$((failed + f))
	done
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi

# Long mode
progs=("core/larson_sim" "core/threads_prodcons" "sanitize/san_prodcons 4"
       "sanitize/san_larson 4" "sanitize/san_api 4" "core/fork_signal 10000"
       "core/fork_stdio 20")
for t in 16 64; do
	mapfile -t -O "${#progs[@]}" progs < <(wide_progs "$t")
done
end=$(( $(date +%s) + duration ))
echo "stress: until $(date -d "@$end" '+%F %T'), configs: $*, $jobs runs at a time"
resdir=$(mktemp -d)
n=0
while [ "$(date +%s)" -lt "$end" ]; do
	for cfg in "$@"; do
		for pa in "${progs[@]}"; do
			[ "$(date +%s)" -lt "$end" ] || break 3
			n=$((n + 1))
			t=120
			case $pa in core/fork_*) t=900 ;; esac
			# shellcheck disable=SC2086
			( if RUN_TIMEOUT=$t run "$cfg" "long-$n" $pa; then touch "$resdir/p.$n"; else touch "$resdir/f.$n"; fi ) &
			while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
				wait -n
			done
		done
	done
	p=$(find "$resdir" -name 'p.*' | wc -l)
	f=$(find "$resdir" -name 'f.*' | wc -l)
	echo "stress: $(date '+%T') $p runs passed, $f failed"
done
wait
passed=$(find "$resdir" -name 'p.*' | wc -l)
failed=$(find "$resdir" -name 'f.*' | wc -l)
rm -rf "$resdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
