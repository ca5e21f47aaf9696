#!/bin/bash
# SPDX-License-Identifier: MIT
#
# l25_syscalls.sh: proof by strace that mid-size churn is syscall-free in
# steady state. Runs "l25_rss loop N" (a 20,000-pair warm-up, then N
# malloc/free pairs of pool sizes, every page touched) under
# `strace -f -c` for N = 1,000 and N = 200,000: the mmap and munmap
# counts must be the same, so the extra 199,000 pairs made none.
# Skipped when strace is missing or cannot trace (no ptrace).

set -u
prog="$O/selftests/l25_pool/l25_rss"

echo "TAP version 13"
if ! command -v strace >/dev/null 2>&1; then
	echo "1..0 # SKIP strace not installed"
	exit 4
fi
if ! strace -f -qq -e trace=none true >/dev/null 2>&1; then
	echo "1..0 # SKIP strace cannot trace here"
	exit 4
fi
echo "1..2"

# count N: "mmap munmap madvise" calls of one run
count() {
	local out
	out=$(strace -f -c -e trace=mmap,munmap,madvise "$prog" loop "$1" 2>&1 >/dev/null)
	for sc in mmap munmap madvise; do
		echo "$out" | awk -v s="$sc" '$NF == s { print ($4 ~ /^[0-9]+$/) ? $4 : $3; f = 1 }
			END { if (!f) print 0 }'
	done | tr '\n' ' '
}

read -r m1 u1 a1 <<<"$(count 1000)"
read -r m2 u2 a2 <<<"$(count 200000)"
echo "# N=1000:   mmap $m1, munmap $u1, madvise $a1"
echo "# N=200000: mmap $m2, munmap $u2, madvise $a2"
# Mappings are the cost that matters and must match exactly. munmap counts
# may differ by the trims of 2 MiB-aligned mappings: whether the head of an
# over-sized mapping needs trimming depends on where ASLR put it, so each
# mapping makes one or two munmap calls (a run-to-run difference, not a
# per-operation one).
du=$((u2 > u1 ? u2 - u1 : u1 - u2))
if [ "$m1" = "$m2" ] && [ "$du" -le "$m1" ]; then
	echo "ok 1 199,000 more mid-size pairs made no mmap/munmap"
else
	echo "not ok 1 199,000 more mid-size pairs made mmap/munmap calls"
fi
if [ "$m2" -lt 100 ]; then
	echo "ok 2 the whole run maps few times ($m2 mmap)"
else
	echo "not ok 2 the whole run maps too often ($m2 mmap)"
fi
