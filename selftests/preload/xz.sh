#!/bin/sh
# SPDX-License-Identifier: MIT
#
# xz -T2 under LD_PRELOAD=$HAKMEM_LIB: a generated ~30 MB file (text lines
# and pseudo-random bytes, so some blocks compress and some do not) is
# compressed with two threads and decompressed again, with and without
# hakmem. The compressed files must be byte-identical both ways, each must
# decompress (by the other run's xz too) to the original, and the preloaded
# xz must really run on hakmem. XZ_MB overrides the size.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 5

x=$(command -v xz 2>/dev/null)
if [ -z "$x" ] || ! command -v awk >/dev/null 2>&1; then
	tap_skip_rest "xz or awk is not installed"
fi

mb=${XZ_MB:-30}
# 1 MB of lines, 256 KiB of noise, repeated with a counter: deterministic.
awk -v mb="$mb" 'BEGIN {
	x = 7
	for (c = 0; c < mb; c++) {
		n = 0
		while (n < 786432) {
			x = (x * 1103515245 + 12345) % 2147483648
			line = sprintf("%d record %d value %d %s", c, n, x % 100003,
				       substr("lorem ipsum dolor sit amet consectetur", 1, x % 38))
			print line
			n += length(line) + 1
		}
		s = ""
		for (i = 0; i < 4096; i++) {
			x = (x * 1103515245 + 12345) % 2147483648
			s = s sprintf("%08x", x)
		}
		for (i = 0; i < 8; i++)
			print s
	}
}' >"$workdir/in"
tap_diag "input: $(wc -c <"$workdir/in") bytes"

# -T2 with a fixed block size gives the same stream run after run.
xzflags="-T2 --block-size=4MiB -0 -c"
# shellcheck disable=SC2086
"$x" $xzflags "$workdir/in" >"$workdir/plain.xz" 2>"$workdir/plain.err"
rc1=$?
# shellcheck disable=SC2086
with_hakmem "$x" $xzflags "$workdir/in" >"$workdir/hak.xz" 2>"$workdir/hak.err"
rc2=$?
same_status "xz -T2 compression of ${mb} MB runs under hakmem" "$rc1" "$rc2"
same_files "xz -T2 output identical with and without hakmem" \
	"$workdir/plain.xz" "$workdir/hak.xz"

with_hakmem "$x" -T2 -d -c "$workdir/hak.xz" >"$workdir/hak.out" 2>>"$workdir/hak.err"
rc=$?
cmp -s "$workdir/in" "$workdir/hak.out"
same=$?
[ "$rc" -eq 0 ] && [ "$same" -eq 0 ]
tap_ok $? "xz -T2 -d under hakmem restores the original (round trip)"
"$x" -T2 -d -c "$workdir/hak.xz" >"$workdir/plain.out" 2>>"$workdir/plain.err" &&
	cmp -s "$workdir/in" "$workdir/plain.out"
tap_ok $? "the stream hakmem's xz wrote decompresses to the original without hakmem"
rm -f "$workdir/plain.out" "$workdir/hak.out"
stats_check "xz -T2" "$x" -T2 -c "$dir/preload_lib.sh"
tap_finish
