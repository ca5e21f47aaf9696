#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fuzz.sh: libFuzzer on the hak_* API (selftests/fuzz/fuzz_api.c).
#
#   tools/fuzz.sh [-t SECONDS] [-j JOBS] [-r RUNS]   (-t also takes 30m, 2h)
#
# Builds hakmem with clang, CONFIG_HAK_INTERPOSE=n (AddressSanitizer keeps
# its own malloc) and -fsanitize=address,fuzzer-no-link into build/fuzz,
# links the harness with -fsanitize=fuzzer,address, and fuzzes for SECONDS
# (default 90) or RUNS inputs, starting from the seed corpus in
# selftests/fuzz/corpus (copied: the working corpus is build/fuzz/corpus,
# so the source tree is never written). -j JOBS > 1 runs that many fuzzing
# processes (libFuzzer -jobs/-workers) for long runs (make fuzz).
#
# A crash, a pattern mismatch (the harness aborts), a timeout (10 s per
# input) or a report fails the run; the input is saved under
# build/fuzz/artifacts/. To turn it into a regression test, copy it to
# selftests/fuzz/corpus/ (the fuzz_api selftest replays that folder in
# every configuration). Prints the number of executions; ends with
# "N passed, N failed".

set -u
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRCTREE/build
D=$BUILD/fuzz
unset MAKEFLAGS MFLAGS MAKELEVEL O ARCH V C T KBUILD_OUTPUT
secs=90
jobs=1
runs=-1
while getopts "t:j:r:" o; do
	case $o in
	t) secs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	r) runs=$OPTARG ;;
	*) sed -n '4,6p' "$0"; exit 2 ;;
	esac
done

case $secs in
*h) secs=$(( ${secs%h} * 3600 )) ;;
*m) secs=$(( ${secs%m} * 60 )) ;;
*s) secs=${secs%s} ;;
esac

command -v clang >/dev/null 2>&1 || "$SRCTREE/tools/deps.sh" || exit 1
CLANG=clang
arch=$(uname -m)	# as the Makefile picks it
[ -d "$SRCTREE/arch/$arch/include/asm" ] || arch=generic

mkdir -p "$D"
san=(-fsanitize=address -fno-omit-frame-pointer -g)
mk=(make -C "$SRCTREE" --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" O="$D" CC="$CLANG")
echo "fuzz: building hakmem (clang, ASan, INTERPOSE=n) in ${D#"$SRCTREE"/}"
if ! { [ -f "$D/.config" ] || "${mk[@]}" -s defconfig; } ||
   ! "${mk[@]}" -s setconfig SET="HAK_INTERPOSE=n" >/dev/null ||
   ! "${mk[@]}" -s KCFLAGS="${san[*]} -fsanitize=fuzzer-no-link" "$D/libhakmem.a" ||
   ! $CLANG -std=gnu11 -O1 "${san[@]}" -fsanitize=fuzzer -DHAK_FUZZER -Wall -Wextra -Werror \
	-D_GNU_SOURCE -I"$D/include" -I"$SRCTREE/include" -I"$SRCTREE/arch/$arch/include" \
	-I"$SRCTREE/lib" -I"$SRCTREE" -I"$SRCTREE/selftests/lib" \
	-include "$SRCTREE/include/hak/kconfig.h" \
	-o "$D/fuzz_api" "$SRCTREE/selftests/fuzz/fuzz_api.c" "$D/libhakmem.a" -lpthread; then
	echo "fuzz: build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

rm -rf "$D/corpus" "$D/artifacts" "$D"/fuzz-*.log
mkdir -p "$D/corpus" "$D/artifacts"
cp "$SRCTREE"/selftests/fuzz/corpus/* "$D/corpus/"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:allocator_may_return_null=1"
opts=(-max_total_time="$secs" -runs="$runs" -max_len=1024 -timeout=10 -rss_limit_mb=4096
      -artifact_prefix="$D/artifacts/" -print_final_stats=1)
echo "fuzz: ${secs}s$([ "$runs" -ge 0 ] && echo ", at most $runs inputs"), $jobs job(s), seeds: $(find "$D/corpus" -type f | wc -l)"
cd "$D" || exit 1
if [ "$jobs" -gt 1 ]; then
	./fuzz_api "${opts[@]}" -jobs="$jobs" -workers="$jobs" corpus >"$D/fuzz.log" 2>&1
	rc=$?	# the jobs' logs (fuzz-N.log) are echoed into fuzz.log as they end
else
	./fuzz_api "${opts[@]}" corpus >"$D/fuzz.log" 2>&1
	rc=$?
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$D/fuzz.log" | awk '{s += $1} END {print s + 0}')
grep -E '^#[0-9]+ *(DONE|INITED)|cov:' "$D/fuzz.log" | tail -n 2
echo "fuzz: $execs executions, corpus now $(find "$D/corpus" -type f | wc -l) inputs (log: ${D#"$SRCTREE"/}/fuzz.log)"
if [ $rc -ne 0 ] || [ -n "$(find "$D/artifacts" -type f)" ]; then
	grep -E -A 25 'ERROR: |fuzz_api: |SUMMARY|deadly signal|timeout' "$D/fuzz.log" | head -n 60
	echo "fuzz: FAILED (exit $rc); reproducers: $(find "$D/artifacts" -type f | tr '\n' ' ')"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
