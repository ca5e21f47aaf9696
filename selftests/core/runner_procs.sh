#!/bin/bash
# SPDX-License-Identifier: MIT
#
# runner_procs: the selftest runner (selftests/lib/runner.sh) runs few
# commands of its own per program. On this VM a fork or exec costs 2-5 ms
# of CPU in page faults, and make check runs some 1,100 programs: the
# runner's 20-odd commands per program (date, awk, grep, sed, tail, cat,
# wc, dirname, head) were about 0.2 s of CPU each, 260 s of make check's
# (Documentation/building-variants.md, "Time"). Each external command the
# runner may call is shadowed on PATH by a shim that logs its name; the
# runner runs 2 and then 12 trivial programs, and the difference over 10
# is its count per program (the fixed cost, mktemp, nproc and rm, drops
# out). It must be at most 4 (timeout and one awk now). Its output must
# still count every point.

src=${SRCTREE:-$(cd "$(dirname "$0")/../.." && pwd)}
runner=$src/selftests/lib/runner.sh
echo "TAP version 13"
echo "1..3"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/progs"
for c in awk date grep sed tail head cat wc dirname basename timeout mktemp rm nproc \
	 tr cut sort seq env sleep; do
	real=$(command -v "$c" 2>/dev/null) || continue
	case $real in /*) ;; *) continue ;; esac	# a builtin only
	printf '#!/bin/sh\necho %s >>"%s"\nexec %s "$@"\n' "$c" "$tmp/log" "$real" >"$tmp/bin/$c"
done
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	printf '#!/bin/sh\necho "1..2"\necho "ok 1 a"\necho "ok 2 b"\n' >"$tmp/progs/p$i"
done
chmod +x "$tmp"/bin/* "$tmp"/progs/*

# run N: the runner on the first N programs; sets $cmds and $last
run() {
	local n=$1 i args=()
	for ((i = 1; i <= n; i++)); do args+=("$tmp/progs/p$i"); done
	: >"$tmp/log"
	PATH=$tmp/bin:$PATH HAKMEM_TEST_JOBS=2 HAKMEM_TEST_SERIAL='' HAKMEM_TEST_LONG='' \
		HAKMEM_TEST_SKIP='' HAKMEM_TEST_WRAPPER='' bash "$runner" "${args[@]}" >"$tmp/out.$n" 2>&1
	cmds=$(wc -l <"$tmp/log")
	last=$(tail -n 1 "$tmp/out.$n")
}
run 2; c2=$cmds; l2=$last
run 12; c12=$cmds; l12=$last
per=$(( (c12 - c2 + 9) / 10 ))
echo "# commands: $c2 for 2 programs, $c12 for 12: $per a program (rounded up)"
echo "# by name, 12 programs: $(sort "$tmp/log" | uniq -c | tr -s ' \n' ' ')"
[ "$l2" = "4 passed, 0 failed" ] && echo "ok 1 2 programs: 4 points counted" ||
	echo "not ok 1 2 programs: 4 points counted (got '$l2')"
[ "$l12" = "24 passed, 0 failed" ] && echo "ok 2 12 programs: 24 points counted" ||
	echo "not ok 2 12 programs: 24 points counted (got '$l12')"
if [ "$per" -le 4 ]; then
	echo "ok 3 the runner runs at most 4 commands of its own a program ($per)"
else
	echo "not ok 3 the runner runs at most 4 commands of its own a program ($per)"
	exit 1
fi
