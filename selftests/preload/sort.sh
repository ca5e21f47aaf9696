#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (one of the longest selftests: the runner starts it first)
#
# sort under LD_PRELOAD=$HAKMEM_LIB: sorting a generated 50 MB file (about
# 2 million lines; GNU sort runs several threads and large buffers) by the
# whole line and numerically by a key must give the same bytes with and
# without hakmem, and the preloaded sort must really run on hakmem (its
# malloc and free bind to libhakmem.so: sort closes stderr before exit, so
# HAKMEM_STATS output cannot be used).
# SORT_MB overrides the input size (a multiple of 5 MB is generated once
# and repeated, each copy with its own line prefix).

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 4

s=$(command -v sort 2>/dev/null)
if [ -z "$s" ] || ! command -v awk >/dev/null 2>&1; then
	tap_skip_rest "sort or awk is not installed"
fi

mb=${SORT_MB:-50}
# Deterministic pseudo-random lines: a word, a number, a padded tail.
copies=$(((mb + 4) / 5))
awk -v bytes=$((5 * 1024 * 1024)) 'BEGIN {
	x = 12345; n = 0
	while (n < bytes) {
		x = (x * 1103515245 + 12345) % 2147483648
		w = sprintf("%c%c%c%c", 97 + x % 26, 97 + int(x / 26) % 26,
			    97 + int(x / 676) % 26, 97 + int(x / 17576) % 26)
		line = sprintf("%s %d %s", w, int(x / 7) % 1000003, substr("qwertyuiopasdfghjklzxcvbnm", 1, x % 27))
		print line
		n += length(line) + 1
	}
}' >"$workdir/part.txt"
i=0
while [ $i -lt $copies ]; do
	sed "s/^/$i/" "$workdir/part.txt"
	i=$((i + 1))
done >"$workdir/in.txt"
rm -f "$workdir/part.txt"
tap_diag "input: $(wc -l <"$workdir/in.txt") lines, $(wc -c <"$workdir/in.txt") bytes"

run_sorts() {
	"$@" "$s" "$workdir/in.txt" >"$workdir/$tag.1" &&
		"$@" "$s" -t ' ' -k2,2n -k1,1 "$workdir/in.txt" >"$workdir/$tag.2"
}
tag=plain
run_sorts env 2>"$workdir/plain.err"
rc1=$?
tag=hak
run_sorts with_hakmem 2>"$workdir/hak.err"
rc2=$?
same_status "sort (whole line, numeric key) of ${mb} MB runs under hakmem" "$rc1" "$rc2"
same_files "sort output identical with and without hakmem" "$workdir/plain.1" "$workdir/hak.1"
same_files "sort -k2,2n -k1,1 output identical with and without hakmem" \
	"$workdir/plain.2" "$workdir/hak.2"
# GNU sort closes stderr before exit, so HAKMEM_STATS=1 output is lost
# (EBADF); prove hakmem is in use through the dynamic linker instead.
binding_check sort "$s" "$dir/preload_lib.sh"
tap_finish
