#!/bin/bash
# SPDX-License-Identifier: MIT
#
# runner_counts: the selftest runner (selftests/lib/runner.sh) counts every
# kind of failure, and its exit status says so. Each case runs the runner
# on a passing program, the case, and a passing program again, and checks
# its last line and exit status: "not ok" with exit 0, no output, fewer
# points than the plan, a signal, a timeout, a non-zero exit after only
# "ok" lines, a skip (exit 4: no failure), and a program whose run_one
# subshell is killed from outside (the OOM killer's way), which before
# rv36 dropped that program and every later one and passed the run.
# The eight runs go at once: about 2 s of wall time, 1.5 s of CPU.

src=${SRCTREE:-$(cd "$(dirname "$0")/../.." && pwd)}
runner=$src/selftests/lib/runner.sh
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

good='echo "1..1"; echo "ok 1 fine"'
cases=(
	"not ok, exit 0|echo 1..1; echo 'not ok 1 bad'|2 passed, 1 failed|1"
	"no output, exit 0|:|2 passed, 1 failed|1"
	"fewer points than planned|echo 1..2; echo 'ok 1 a'|3 passed, 1 failed|1"
	"killed by a signal|echo 1..1; echo 'ok 1 a'; kill -SEGV \$\$|3 passed, 1 failed|1"
	"timed out|echo 1..1; exec sleep 30|2 passed, 1 failed|1"
	"exit 3 after ok|echo 1..1; echo 'ok 1 a'; exit 3|3 passed, 1 failed|1"
	"skipped (exit 4)|echo '1..0 # SKIP no'; exit 4|2 passed, 0 failed|0"
	"run_one killed from outside|echo 1..1; read -r _ _ _ pp _ </proc/\$PPID/stat; kill -9 \$pp; sleep 0.5; echo 'ok 1 a'|2 passed, 1 failed|1"
)
echo "TAP version 13"
echo "1..${#cases[@]}"
# each case in a directory of its own, all at once (the timeout case
# waits 1 s, the runner's forks are slow on a loaded machine)
n=0
for c in "${cases[@]}"; do
	n=$((n + 1))
	mkdir "$tmp/$n"
	printf '%s\n' "$good" >"$tmp/$n/a.sh"
	printf '%s\n' "$good" >"$tmp/$n/c.sh"
	printf '%s\n' "$(cut -d'|' -f2 <<<"$c")" >"$tmp/$n/b.sh"
	(
		HAKMEM_TEST_JOBS=2 HAKMEM_TEST_TIMEOUT=1 HAKMEM_TEST_SERIAL='' HAKMEM_TEST_LONG='' \
			HAKMEM_TEST_SKIP='' HAKMEM_TEST_WRAPPER='' \
			bash "$runner" "$tmp/$n/a.sh" "$tmp/$n/b.sh" "$tmp/$n/c.sh" >"$tmp/$n/out" 2>/dev/null
		echo $? >"$tmp/$n/rc"
	) &
done
wait
n=0
for c in "${cases[@]}"; do
	IFS='|' read -r what _ want wantrc <<<"$c"
	n=$((n + 1))
	rc=$(cat "$tmp/$n/rc" 2>/dev/null || echo missing)
	[ "$rc" != 0 ] && [ "$rc" != missing ] && rc=1
	last=$(tail -n 1 "$tmp/$n/out")
	if [ "$last" = "$want" ] && [ "$rc" = "$wantrc" ]; then
		echo "ok $n $what: '$want', exit $wantrc"
	else
		echo "not ok $n $what: '$want', exit $wantrc (got '$last', exit $rc)"
		sed 's/^/# /' "$tmp/$n/out"
	fi
done
