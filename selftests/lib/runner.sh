#!/bin/bash
# SPDX-License-Identifier: MIT
#
# runner.sh: run selftest programs and scripts, kselftest style.
#
#   runner.sh TEST...     (each an executable, or a .sh run with bash)
#
# Prints TAP 13: one point per test program, whose own output is indented
# with "# ". Ends with one line "N passed, N failed", N counting the test
# points of all programs. A program fails as a whole (one extra failure)
# when it exits non-zero without a "not ok" line, prints fewer points than
# its plan, dies from a signal, or runs past $HAKMEM_TEST_TIMEOUT seconds
# (default 300). Exit 4 is a whole-program skip. Exit status: 0 if
# nothing failed.
#
# $HAKMEM_TEST_JOBS programs run at once (default: twice the CPU count):
# most programs are one thread, and many sleep through purge delays (the
# core folder of defconfig: about 100 s of test time for 46 s of CPU), so one
# program per CPU leaves the CPUs idle much of the time. Each program's
# line gives its wall and CPU seconds. Output stays in the order of the
# arguments. A test
# whose assertions need the machine to itself lists its name (as printed,
# e.g. core/purge) in $HAKMEM_TEST_SERIAL or carries the line
# "runner: serial" in its first 20 lines; it runs after the others, alone.
# A test that takes much longer than the others carries "runner: long" in
# its first 20 lines (or is named in $HAKMEM_TEST_LONG): the long ones
# start first, so that none of them starts last and runs alone at the end
# while the other CPUs sit idle.
#
# Scripts get HAKMEM_LIB, O and SRCTREE from the environment (the Makefile
# sets them).
#
# $HAKMEM_TEST_WRAPPER, when set, is a command that runs each program
# (split on spaces), e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu" for a
# cross build (tools/cross-check.sh). Scripts are skipped then: they run
# host tools and programs under LD_PRELOAD, which the wrapper cannot reach.
# A test named (as printed, e.g. core/purge) in $HAKMEM_TEST_SKIP is
# skipped (exit 4, "# SKIP"); $HAKMEM_TEST_SKIP_WHY says why.

set -u
ulimit -c 0 2>/dev/null

timeout_s=${HAKMEM_TEST_TIMEOUT:-300}
jobs=${HAKMEM_TEST_JOBS:-$(( 2 * $(nproc 2>/dev/null || echo 1) ))}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
passed=0
failed=0
skipped=0
work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-runner.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

name_of() {
	local t=$1
	t=${t#"${O:-/nonexistent}"/selftests/}
	t=${t#"${SRCTREE:-/nonexistent}"/selftests/}
	echo "$t"
}

# The source of a program (for its "runner: serial" mark) or the script.
source_of() {
	local name=$1 t=$2 s
	case $t in *.sh) echo "$t"; return ;; esac
	for s in "${SRCTREE:-/nonexistent}/selftests/$name.c" \
		 "${SRCTREE:-/nonexistent}/selftests/$name.cc"; do
		[ -e "$s" ] && { echo "$s"; return; }
	done
}

# has_mark NAME PATH MARK LISTVAR: the test carries "runner: MARK" or is
# named in the list
has_mark() {
	local name=$1 t=$2 s
	case " $4 " in *" $name "*) return 0 ;; esac
	s=$(source_of "$name" "$t")
	[ -n "$s" ] && head -n 20 "$s" | grep -q "runner: $3"
}

is_serial() {
	has_mark "$1" "$2" serial "${HAKMEM_TEST_SERIAL:-}"
}

is_long() {
	has_mark "$1" "$2" long "${HAKMEM_TEST_LONG:-}"
}

# tenths FILE: the user + system time of the waited-for children in the
# output of the builtin "times" (its second line), in tenths of a second.
# "times" must run in the test's shell itself, not in a $(...) subshell,
# which has no children of its own.
tenths() {
	awk 'NR == 2 { split($0, f, /[ms ]+/)
		printf "%d\n", (f[1] * 60 + f[2] + f[3] * 60 + f[4]) * 10 }' "$1"
}

# Runs test number $1 ($2 the path); writes its TAP block to $work/$1.out
# and "ok notok skipped" to $work/$1.res.
run_one() {
	local n=$1 t=$2 name out start dir rc secs cpu0 cpu ok notok plan npoints why
	name=$(name_of "$t")
	out=$work/$n.log
	{
	echo "# selftests: $name"
	if [ ! -e "$t" ]; then
		echo "not ok $n selftests: $name # missing $t"
		echo "0 1 0" >"$work/$n.res"
		return
	fi
	start=$(date +%s)
	times >"$work/$n.times"
	cpu0=$(tenths "$work/$n.times")
	dir=$(dirname "$t")
	if [ "${t%.sh}" != "$t" ] && [ -n "${HAKMEM_TEST_WRAPPER:-}" ]; then
		echo "# SKIP: a script, not run under HAKMEM_TEST_WRAPPER" >"$out"
		(exit 4)
	elif case " ${HAKMEM_TEST_SKIP:-} " in *" $name "*) true ;; *) false ;; esac; then
		echo "# SKIP: in HAKMEM_TEST_SKIP${HAKMEM_TEST_SKIP_WHY:+ (${HAKMEM_TEST_SKIP_WHY})}" >"$out"
		(exit 4)
	elif [ "${t%.sh}" != "$t" ] && [ ! -x "$t" ]; then
		(cd "$dir" && exec timeout -k 10 "$timeout_s" bash "$t") >"$out" 2>&1 </dev/null
	else
		# shellcheck disable=SC2086 # the wrapper is a command line
		(cd "$dir" && exec timeout -k 10 "$timeout_s" ${HAKMEM_TEST_WRAPPER:-} "$t") >"$out" 2>&1 </dev/null
	fi
	rc=$?
	secs=$(( $(date +%s) - start ))
	times >"$work/$n.times"
	cpu=$(( $(tenths "$work/$n.times") - cpu0 ))
	cpu=$((cpu / 10)).$((cpu % 10))
	sed 's/^/# /' "$out"

	# Count top-level points; "not ok ... # TODO" is not a failure.
	ok=$(grep -cE '^ok [0-9]+' "$out")
	notok=$(grep -E '^not ok [0-9]+' "$out" | grep -cvE '#[[:space:]]*TODO')
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out" | tail -n 1)
	npoints=$(grep -cE '^(not )?ok [0-9]+' "$out")

	why=
	case $rc in
	0)	if [ -z "$plan" ]; then why="no TAP plan"
		elif [ "$plan" != "$npoints" ]; then why="planned $plan, ran $npoints"
		fi ;;
	4)	;;
	124)	why="timed out after ${timeout_s}s" ;;
	137)	why="killed after timeout" ;;
	*)	if [ "$rc" -gt 128 ]; then
			why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
		elif [ "$notok" -eq 0 ]; then
			why="exit status $rc"
		fi ;;
	esac

	if [ -n "$why" ]; then
		notok=$((notok + 1))
		echo "not ok $n selftests: $name # $why"
		echo "$ok $notok 0" >"$work/$n.res"
	elif [ "$rc" -eq 4 ]; then
		echo "ok $n selftests: $name # SKIP"
		echo "$ok $notok 1" >"$work/$n.res"
	elif [ "$rc" -ne 0 ] || [ "$notok" -gt 0 ]; then
		echo "not ok $n selftests: $name # $notok failed (exit $rc, ${secs}s, cpu ${cpu}s)"
		echo "$ok $notok 0" >"$work/$n.res"
	else
		echo "ok $n selftests: $name # ${secs}s, cpu ${cpu}s"
		echo "$ok $notok 0" >"$work/$n.res"
	fi
	} >"$work/$n.out"
}

echo "TAP version 13"
echo "1..$#"

# Parallel tests first (the long ones before the others), the serial ones
# after them, alone; every block is printed in argument order as soon as
# all before it are done.
tests=("$@")
serial=()
long=()
short=()
declare -A pid=()
next=1	# the next block to print
collect() {
	local r
	while [ "$next" -le ${#tests[@]} ] && [ -e "$work/$next.res" ]; do
		# (wait -n may have reaped it already)
		[ -n "${pid[$next]:-}" ] && wait "${pid[$next]}" 2>/dev/null
		cat "$work/$next.out"
		read -r r_ok r_notok r_skip <"$work/$next.res"
		passed=$((passed + r_ok))
		failed=$((failed + r_notok))
		skipped=$((skipped + r_skip))
		next=$((next + 1))
	done
}
running() {
	jobs -pr | wc -l
}
for ((i = 1; i <= ${#tests[@]}; i++)); do
	t=${tests[$((i - 1))]}
	if [ "$jobs" -gt 1 ] && is_serial "$(name_of "$t")" "$t"; then
		serial+=("$i")
	elif [ "$jobs" -gt 1 ] && is_long "$(name_of "$t")" "$t"; then
		long+=("$i")
	else
		short+=("$i")
	fi
done
for i in "${long[@]+"${long[@]}"}" "${short[@]+"${short[@]}"}"; do
	t=${tests[$((i - 1))]}
	while [ "$(running)" -ge "$jobs" ]; do
		wait -n 2>/dev/null
		collect
	done
	run_one "$i" "$t" &
	pid[$i]=$!
	collect
done
wait
collect
for i in "${serial[@]+"${serial[@]}"}"; do
	run_one "$i" "${tests[$((i - 1))]}"
done
collect
wait

[ "$skipped" -gt 0 ] && echo "# $skipped program(s) skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
