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
# The runner's own work per program is bash builtins and one awk (about 5
# processes a program, not the 55 it took before 2026-12-06): on this VM a
# fork or exec costs 2-5 ms of CPU in page faults, and make check runs some
# 1,000 programs (ck35, Documentation/building-variants.md "Time").
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

# name_of PATH: sets $name (the test as printed, e.g. core/purge)
name_of() {
	name=$1
	name=${name#"${O:-/nonexistent}"/selftests/}
	name=${name#"${SRCTREE:-/nonexistent}"/selftests/}
}

# has_mark NAME PATH MARK LISTVAR: the test carries "runner: MARK" in the
# first 20 lines of its source (the program's .c/.cc, or the script), or
# is named in the list
has_mark() {
	local name=$1 t=$2 s="" c line i
	case " $4 " in *" $name "*) return 0 ;; esac
	case $t in
	*.sh) s=$t ;;
	*)	for c in "${SRCTREE:-/nonexistent}/selftests/$name.c" \
			 "${SRCTREE:-/nonexistent}/selftests/$name.cc"; do
			[ -e "$c" ] && { s=$c; break; }
		done ;;
	esac
	[ -n "$s" ] && [ -r "$s" ] || return 1
	i=0
	while [ $i -lt 20 ] && IFS= read -r line; do
		case $line in *"runner: $3"*) return 0 ;; esac
		i=$((i + 1))
	done <"$s"
	return 1
}

is_serial() {
	has_mark "$1" "$2" serial "${HAKMEM_TEST_SERIAL:-}"
}

is_long() {
	has_mark "$1" "$2" long "${HAKMEM_TEST_LONG:-}"
}

# ms FIELD: a "times" field (1m2.345s) in milliseconds, in $ms
ms() {
	local f=$1 m s frac
	m=${f%%m*}
	s=${f#*m}
	s=${s%s}
	frac=${s##*[.,]}
	s=${s%%[.,]*}
	ms=$(( (10#$m * 60 + 10#$s) * 1000 + 10#$frac ))
}

# child_tenths: the user + system time of this shell's waited-for children
# (the second line of the builtin "times"), in tenths of a second, in
# $tenths. "times" runs in the test's shell itself, which is the parent.
child_tenths() {
	local u s
	times >"$work/$n.times"
	{ read -r _; read -r u s; } <"$work/$n.times"
	ms "$u"; tenths=$ms
	ms "$s"; tenths=$(( (tenths + ms) / 100 ))
}

# Runs test number $1 ($2 the path); writes its TAP block to $work/$1.out
# and "ok notok skipped" to $work/$1.res.
run_one() {
	local n=$1 t=$2 name out start dir rc secs cpu0 cpu ok notok plan npoints why tenths ms
	name_of "$t"
	out=$work/$n.log
	{
	echo "# selftests: $name"
	if [ ! -e "$t" ]; then
		echo "not ok $n selftests: $name # missing $t"
		echo "0 1 0" >"$work/$n.res"
		return
	fi
	start=$EPOCHSECONDS
	child_tenths
	cpu0=$tenths
	case $t in */*) dir=${t%/*} ;; *) dir=. ;; esac
	[ -n "$dir" ] || dir=/
	if [ "${t%.sh}" != "$t" ] && [ -n "${HAKMEM_TEST_WRAPPER:-}" ]; then
		echo "# SKIP: a script, not run under HAKMEM_TEST_WRAPPER" >"$out"
		rc=4
	elif case " ${HAKMEM_TEST_SKIP:-} " in *" $name "*) true ;; *) false ;; esac; then
		echo "# SKIP: in HAKMEM_TEST_SKIP${HAKMEM_TEST_SKIP_WHY:+ (${HAKMEM_TEST_SKIP_WHY})}" >"$out"
		rc=4
	elif [ "${t%.sh}" != "$t" ] && [ ! -x "$t" ]; then
		(cd "$dir" && exec timeout -k 10 "$timeout_s" bash "$t") >"$out" 2>&1 </dev/null
		rc=$?
	else
		# shellcheck disable=SC2086 # the wrapper is a command line
		(cd "$dir" && exec timeout -k 10 "$timeout_s" ${HAKMEM_TEST_WRAPPER:-} "$t") >"$out" 2>&1 </dev/null
		rc=$?
	fi
	secs=$(( EPOCHSECONDS - start ))
	child_tenths
	cpu=$(( tenths - cpu0 ))
	cpu=$((cpu / 10)).$((cpu % 10))

	# One awk: the output indented with "# ", and the counts of its
	# top-level points ("not ok ... # TODO" is not a failure) and its
	# last plan, to $work/$n.cnt.
	awk -v cnt="$work/$n.cnt" '
		{ print "# " $0 }
		/^ok [0-9]/ { ok++; np++ }
		/^not ok [0-9]/ { np++; if ($0 !~ /#[[:space:]]*TODO/) notok++ }
		/^1\.\.[0-9]/ { plan = substr($0, 4); sub(/[^0-9].*/, "", plan) }
		END { print ok + 0, notok + 0, np + 0, (plan == "" ? "-" : plan) > cnt }
	' "$out"
	read -r ok notok npoints plan <"$work/$n.cnt" || { ok=0 notok=0 npoints=0 plan=-; }
	[ "$plan" = - ] && plan=

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
	local r_ok r_notok r_skip lines
	while [ "$next" -le ${#tests[@]} ] && [ -e "$work/$next.res" ]; do
		# (wait -n may have reaped it already)
		[ -n "${pid[$next]:-}" ] && wait "${pid[$next]}" 2>/dev/null
		mapfile -t lines <"$work/$next.out"
		[ ${#lines[@]} -gt 0 ] && printf '%s\n' "${lines[@]}"
		read -r r_ok r_notok r_skip <"$work/$next.res"
		passed=$((passed + r_ok))
		failed=$((failed + r_notok))
		skipped=$((skipped + r_skip))
		next=$((next + 1))
	done
}
# running: the number of programs running, in $nrunning (the builtin
# "jobs" into a file, not a pipe: no process)
running() {
	local r
	jobs -pr >"$work/jobs"
	mapfile -t r <"$work/jobs"
	nrunning=${#r[@]}
}
for ((i = 1; i <= ${#tests[@]}; i++)); do
	t=${tests[$((i - 1))]}
	name_of "$t"
	if [ "$jobs" -gt 1 ] && is_serial "$name" "$t"; then
		serial+=("$i")
	elif [ "$jobs" -gt 1 ] && is_long "$name" "$t"; then
		long+=("$i")
	else
		short+=("$i")
	fi
done
for i in "${long[@]+"${long[@]}"}" "${short[@]+"${short[@]}"}"; do
	t=${tests[$((i - 1))]}
	running
	while [ "$nrunning" -ge "$jobs" ]; do
		wait -n 2>/dev/null
		collect
		running
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
# A program whose run_one died before its result (killed from outside,
# e.g. by the OOM killer) stopped collect there: that program and every
# one after it went uncounted, and the run passed (rv36). It fails.
for ((i = next; i <= ${#tests[@]}; i++)); do
	[ -e "$work/$i.res" ] && continue
	name_of "${tests[$((i - 1))]}"
	echo "not ok $i selftests: $name # no result: its runner was killed" >"$work/$i.out"
	echo "0 1 0" >"$work/$i.res"
done
collect

[ "$skipped" -gt 0 ] && echo "# $skipped program(s) skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
