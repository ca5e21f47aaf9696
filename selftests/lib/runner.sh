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
# Scripts get HAKMEM_LIB, O and SRCTREE from the environment (the Makefile
# sets them).

set -u
ulimit -c 0 2>/dev/null

timeout_s=${HAKMEM_TEST_TIMEOUT:-300}
passed=0
failed=0
skipped=0
n=0

name_of() {
	local t=$1
	t=${t#"${O:-/nonexistent}"/selftests/}
	t=${t#"${SRCTREE:-/nonexistent}"/selftests/}
	echo "$t"
}

echo "TAP version 13"
echo "1..$#"

for t in "$@"; do
	n=$((n + 1))
	name=$(name_of "$t")
	echo "# selftests: $name"
	if [ ! -e "$t" ]; then
		echo "not ok $n selftests: $name # missing $t"
		failed=$((failed + 1))
		continue
	fi
	out=$(mktemp)
	start=$(date +%s)
	dir=$(dirname "$t")
	if [ "${t%.sh}" != "$t" ] && [ ! -x "$t" ]; then
		(cd "$dir" && exec timeout -k 10 "$timeout_s" bash "$t") >"$out" 2>&1 </dev/null
	else
		(cd "$dir" && exec timeout -k 10 "$timeout_s" "$t") >"$out" 2>&1 </dev/null
	fi
	rc=$?
	secs=$(( $(date +%s) - start ))
	sed 's/^/# /' "$out"

	# Count top-level points; "not ok ... # TODO" is not a failure.
	ok=$(grep -cE '^ok [0-9]+' "$out")
	notok=$(grep -E '^not ok [0-9]+' "$out" | grep -cvE '#[[:space:]]*TODO')
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out" | tail -n 1)
	npoints=$(grep -cE '^(not )?ok [0-9]+' "$out")
	rm -f "$out"

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

	passed=$((passed + ok))
	failed=$((failed + notok))
	if [ -n "$why" ]; then
		failed=$((failed + 1))
		echo "not ok $n selftests: $name # $why"
	elif [ "$rc" -eq 4 ]; then
		skipped=$((skipped + 1))
		echo "ok $n selftests: $name # SKIP"
	elif [ "$rc" -ne 0 ] || [ "$notok" -gt 0 ]; then
		echo "not ok $n selftests: $name # $notok failed (exit $rc, ${secs}s)"
	else
		echo "ok $n selftests: $name # ${secs}s"
	fi
done

[ "$skipped" -gt 0 ] && echo "# $skipped program(s) skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
