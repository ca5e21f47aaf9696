#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The heap profiler's figures, read back with `go tool pprof` (golang-go,
# installed by tools/deps.sh; a missing pprof is a failure, not a skip).
# hp_sites keeps 64 MiB live at site_keep64, 16 MiB at site_keep16 and
# churns 256 MiB through site_churn; its sites are compiled without frame
# pointers. For each mode (plain, threads, fork) the inuse_space of each
# site must be within 15% of the truth and the churned site about 0 live;
# alloc_space must see the 256 MiB churn within 15%. The fork child's own
# profile (dumped by hak_prof_dump and written again at its exit) holds
# its 32 MiB site_child. The twins (16 MiB live each) reach malloc
# through one helper at the same stack pointer: each must get its own
# 16 MiB (the walk cache must not hand one twin's stack to the other).
# Also: the folded-stack format and the leak report name the sites.
set -u
n=0
fails=0
ok() {	# cond-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fails=$((fails + 1)); fi
}

O=${O:-$(cd "$(dirname "$0")/../.." && pwd)}
prog=$O/selftests/heapprof/hp_sites
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PPROF_TMPDIR=$tmp HOME=${HOME:-$tmp}
MiB=1048576

echo "TAP version 13"
echo "1..27"

if ! go tool pprof -h >/dev/null 2>&1; then
	echo "# go tool pprof is missing: run tools/deps.sh (golang-go)"
	for i in $(seq 1 27); do ok 1 "go tool pprof available"; done
	exit 1
fi

# flat bytes of function $3 in profile $1 for sample index $2 (0 if absent)
flat() {
	go tool pprof -top -unit=B -nodefraction=0 -nodecount=1000 -sample_index="$2" "$prog" "$1" 2>/dev/null |
		awk -v f="$3" '$NF == f { v = $1; sub(/B$/, "", v); print v; found = 1; exit }
			END { if (!found) print 0 }'
}

# cumulative bytes of function $3 in profile $1 for sample index $2 (0 if absent)
cum() {
	go tool pprof -top -cum -unit=B -nodefraction=0 -nodecount=1000 -sample_index="$2" "$prog" "$1" 2>/dev/null |
		awk -v f="$3" '$NF == f { v = $4; sub(/B$/, "", v); print v; found = 1; exit }
			END { if (!found) print 0 }'
}

# |got - want| <= 15% of want. A site's bytes are estimated from ~1,000
# samples (16 MiB at one per 16 KiB), each weighted by its block's size:
# six runs of 16 MiB gave 15.5..17.7 MB (16.8 MB asked), so 10% was about
# three standard deviations and failed about once in a few hundred checks
# (18.55 MB once); a broken profiler is off by far more than 15%.
near() {
	awk -v g="$1" -v w="$2" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * 0.15) }'
}

for mode in plain threads fork; do
	out=$tmp/$mode.pb.gz
	HAKMEM_PROF=1 HAKMEM_PROF_SAMPLE=16384 HAKMEM_PROF_OUT=$tmp/exit-$mode \
		"$prog" "$mode" "$out" >"$tmp/$mode.log" 2>&1
	ok $? "$mode: hp_sites ran (HAKMEM_PROF=1)"
	k64=$(flat "$out" inuse_space site_keep64)
	k16=$(flat "$out" inuse_space site_keep16)
	ch=$(flat "$out" inuse_space site_churn)
	cha=$(flat "$out" alloc_space site_churn)
	near "$k64" $((64 * MiB)); ok $? "$mode: inuse_space site_keep64 $k64 B ~ 64 MiB"
	near "$k16" $((16 * MiB)); ok $? "$mode: inuse_space site_keep16 $k16 B ~ 16 MiB"
	[ "$ch" -lt $((MiB / 2)) ]; ok $? "$mode: inuse_space site_churn $ch B ~ 0"
	near "$cha" $((256 * MiB)); ok $? "$mode: alloc_space site_churn $cha B ~ 256 MiB"
	ta=$(cum "$out" inuse_space twin_a)
	tb=$(cum "$out" inuse_space twin_b)
	near "$ta" $((16 * MiB)) && near "$tb" $((16 * MiB))
	ok $? "$mode: inuse_space twin_a $ta B, twin_b $tb B, ~ 16 MiB each"
	if [ "$mode" = fork ]; then
		kc=$(flat "$out.child" inuse_space site_child)
		near "$kc" $((32 * MiB)); ok $? "fork: the child's profile has site_child $kc B ~ 32 MiB"
		cnt=$(ls "$tmp"/exit-fork.*.pb.gz 2>/dev/null | wc -l)
		[ "$cnt" -eq 2 ]; ok $? "fork: parent and child each wrote an exit profile ($cnt files)"
	fi
done

# A dump asked for by HAKMEM_PROF_SIGNAL (the churn that follows writes it).
HAKMEM_PROF=1 HAKMEM_PROF_SAMPLE=16384 HAKMEM_PROF_SIGNAL=10 HP_RAISE=10 \
	HAKMEM_PROF_OUT=$tmp/sig "$prog" plain "$tmp/sig-dump.pb.gz" >/dev/null 2>&1
ok $? "signal: hp_sites ran with HAKMEM_PROF_SIGNAL=10"
s=$(ls "$tmp"/sig.*.1.pb.gz 2>/dev/null | head -n1)
k64=$(flat "${s:-/dev/null}" inuse_space site_keep64)
near "$k64" $((64 * MiB)); ok $? "signal: the signalled dump ${s##*/} holds site_keep64 ($k64 B)"

# Folded stacks and the leak report (names from the dynamic symbol
# tables: hp_sites has few, so check for the frames libc exports).
HAKMEM_PROF=1 HAKMEM_PROF_SAMPLE=16384 HAKMEM_PROF_FORMAT=collapsed HAKMEM_PROF_LEAKS=1 \
	HAKMEM_PROF_OUT=$tmp/folded "$prog" plain "$tmp/c.folded" >/dev/null 2>"$tmp/leaks.log"
ok $? "collapsed: hp_sites ran"
f=$(ls "$tmp"/folded.*.folded 2>/dev/null | head -n1)
[ -n "$f" ] && awk 'NF < 2 || $NF !~ /^[0-9]+$/ { bad = 1 } END { exit bad || NR == 0 }' "$f"
ok $? "collapsed: every line is 'frames bytes'"
[ -n "$f" ] && grep -q '__libc_start_main' "$f"
ok $? "collapsed: frames are named from the dynamic symbols"
total=$(awk '{ s += $NF } END { print s + 0 }' "${f:-/dev/null}")
[ "$total" -gt $((80 * MiB)) ]
ok $? "collapsed: live total $total B holds the 80 MiB kept"
grep -q '^hakmem: live [0-9]* bytes in [0-9]* objects at ' "$tmp/leaks.log"
ok $? "leaks: the report lists live stacks"
[ "$fails" -eq 0 ]
