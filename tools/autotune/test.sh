#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test.sh: autotune on synthetic workloads whose right answer is known
# (tools/check.d/75-autotune.sh runs the short version in `make check`).
#
#   tools/autotune/test.sh [--full] [--repeat N]
#
# 1. wl-midsize (mid-size churn) from minimal_defconfig, BigCache held off:
#    autotune must turn the L2.5 pool on (it is >10x faster here).
# 2. wl-dirty under the RSS objective, with the workload made to crash when
#    HAKMEM_DIRTY_MAX=0 (its WL_CRASH_IF hook): autotune must pick a dirty
#    limit below the default 16 MiB and not 0, and report 0 as disqualified
#    (SIGSEGV).
# --full searches every dimension from every shipped defconfig (minutes);
# it adds 3. wl-midsize with nothing held: a mid-size box must end up on
# (the L2.5 pool, or BigCache with a cache bound above 0).
# Everything goes to build/autotune-test/ (the variants to build/autotune/,
# shared with real runs). Prints TAP and ends with "N passed, N failed".

# The body is one brace group: bash parses it whole before running it, so
# editing this file while a test runs cannot derail that run.
{
set -u
export LC_ALL=C
SRCTREE=$(cd "$(dirname "$0")/../.." && pwd)
TOUT=$SRCTREE/build/autotune-test
full=0
repeat=1
while [ $# -gt 0 ]; do
	case $1 in
	--full) full=1 ;;
	--repeat) repeat=$2; shift ;;
	*) echo "usage: $0 [--full] [--repeat N]" >&2; exit 2 ;;
	esac
	shift
done
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES O WORKLOAD OBJECTIVE BUDGET METRIC \
	METRIC_DIR OUT ROUNDS START DIMS FIX TIMEOUT DEFCONFIG_OUT

mkdir -p "$TOUT"
for w in wl-midsize wl-dirty; do
	${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -Werror -o "$TOUT/$w" "$SRCTREE/tools/autotune/$w.c" ||
		{ echo "Bail out! cannot build $w"; exit 1; }
done

pass=0 fail=0 n=0
ok() {	# cond description
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"; pass=$((pass + 1))
	else
		echo "not ok $n - $2"; fail=$((fail + 1))
	fi
}

# autotune LABEL BUDGET ARGS... : runs it into $TOUT/LABEL, checks the budget
run() {
	local label=$1 budget=$2 start rc el
	shift 2
	rm -rf "${TOUT:?}/$label"
	start=$(date +%s.%N)
	"$SRCTREE/tools/autotune.sh" --budget "$budget" --out "$TOUT/$label" \
		--defconfig-out "$TOUT/$label/autotune_defconfig" "$@" \
		>"$TOUT/$label.stdout" 2>"$TOUT/$label.log"
	rc=$?
	el=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	ok $rc "$label: autotune exits 0 (log: ${TOUT#"$SRCTREE"/}/$label.log)"
	[ $rc = 0 ] || tail -n 15 "$TOUT/$label.log" | sed 's/^/# /'
	# The budget holds (1 s of slack for Python's start-up and exit).
	awk -v e="$el" -v b="$budget" 'BEGIN { exit !(e <= b + 1) }'
	ok $? "$label: finished in ${el}s, budget ${budget}s"
	[ -s "$TOUT/$label/report.md" ] && grep -q '^| candidate' "$TOUT/$label/report.md"
	ok $? "$label: report.md with the candidate tables"
}

# The value of a variable in the chosen defconfig (as a .config would read).
conf_has() { grep -qx "$2" "$TOUT/$1/autotune_defconfig"; }
env_of() { sed -n 's/^AUTOTUNE_ENV=//p' "$TOUT/$1.stdout"; }

if [ $full = 1 ]; then
	mid_ops=2000 dirty_mib=16 b1=420 b2=300 b3=480
else
	mid_ops=1000 dirty_mib=8 b1=90 b2=30
fi

for ((i = 1; i <= repeat; i++)); do
	sfx=""; [ "$repeat" -gt 1 ] && sfx="-$i"

	# 1. mid-size: the L2.5 pool
	if [ $full = 1 ]; then
		run midsize$sfx $b1 --fix HAK_BIGCACHE=n -- "$TOUT/wl-midsize" $mid_ops
	else
		run midsize$sfx $b1 --start minimal_defconfig --dims HAK_L25_POOL \
			--fix HAK_BIGCACHE=n --no-confirm -- "$TOUT/wl-midsize" $mid_ops
	fi
	conf_has midsize$sfx CONFIG_HAK_L25_POOL=y
	ok $? "midsize$sfx: the chosen variant has the L2.5 pool ($(sed -n 's/^AUTOTUNE_VARIANT=//p' "$TOUT/midsize$sfx.stdout"))"

	# 2. dirty limit under the RSS objective; DIRTY_MAX=0 crashes
	if [ $full = 1 ]; then
		run dirty$sfx $b2 --objective rss \
			-- env WL_CRASH_IF=HAKMEM_DIRTY_MAX=0 "$TOUT/wl-dirty" $dirty_mib
	else
		run dirty$sfx $b2 --objective rss --start minimal_defconfig --runtime-only \
			--dims HAKMEM_DIRTY_MAX --no-confirm \
			-- env WL_CRASH_IF=HAKMEM_DIRTY_MAX=0 "$TOUT/wl-dirty" $dirty_mib
	fi
	e=$(env_of dirty$sfx)
	d=$(sed -n 's/.*HAKMEM_DIRTY_MAX=\([^ ]*\).*/\1/p' <<<"$e")
	case $d in
	0|'') r=1 ;;
	*) r=$(awk -v v="$d" 'BEGIN { n = v + 0; u = substr(v, length(v));
		if (u == "k") n *= 1024; else if (u == "m") n *= 1048576; else if (u == "g") n *= 1073741824;
		exit !(n > 0 && n < 16 * 1048576) }'; echo $?) ;;
	esac
	ok "$r" "dirty$sfx: a dirty limit below the default, not the crashing 0 (env: ${e:-none})"
	grep -q '^- .*HAKMEM_DIRTY_MAX=0: SIGSEGV' "$TOUT/dirty$sfx/report.md"
	ok $? "dirty$sfx: the crashing candidate (HAKMEM_DIRTY_MAX=0) is reported as SIGSEGV"

	# 3. mid-size with every box free
	if [ $full = 1 ]; then
		run midsize-free$sfx "$b3" -- "$TOUT/wl-midsize" $mid_ops
		e=$(env_of midsize-free$sfx)
		{ conf_has midsize-free$sfx CONFIG_HAK_L25_POOL=y ||
		  { conf_has midsize-free$sfx CONFIG_HAK_BIGCACHE=y &&
		    ! grep -q 'HAKMEM_BIGCACHE_MAX=0\b' <<<"$e"; }; }
		ok $? "midsize-free$sfx: a mid-size box is on ($(sed -n 's/^AUTOTUNE_VARIANT=//p' "$TOUT/midsize-free$sfx.stdout"))"
	fi
done

echo "1..$n"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
exit
}
