#!/bin/bash
# SPDX-License-Identifier: MIT
#
# boxcost.sh: what each box costs, box on vs off (everything else as in
# defconfig), measured in one run:
#   - instructions per malloc+free pair on tools/bench random-mixed
#     (valgrind --tool=callgrind, the loop's own cost subtracted), sizes
#     8..128 and 8..1024;
#   - resident bytes per live block of 16, 64 and 1024 bytes
#     (tools/boxcost-mem.c).
# Writes a table under the "<!-- cost table" marker of each box's page in
# Documentation/boxes/ (with --update-docs) and prints them all.
#
#   tools/boxcost.sh [--update-docs] [BOX_SYMBOL...]
set -u -o pipefail
export LC_ALL=C
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRCTREE/build/boxcost
JOBS=$(nproc 2>/dev/null || echo 2)
OPS=200000
update=
syms=()
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES O ARCH V C T KBUILD_OUTPUT
for a in "$@"; do
	case $a in
	--update-docs) update=1 ;;
	*) syms+=("$a") ;;
	esac
done
command -v valgrind >/dev/null || "$SRCTREE/tools/deps.sh" || exit 1

# box symbol -> its folder (the Kconfig that defines it)
box_dir() {
	grep -ls "^config $1\$" "$SRCTREE"/boxes/*/Kconfig | head -n1 | xargs -r dirname
}
if [ ${#syms[@]} -eq 0 ]; then
	for k in "$SRCTREE"/boxes/*/Kconfig; do
		s=$(sed -n 's/^config \(HAK_[A-Z0-9_]*\)$/\1/p' "$k" | head -n1)
		[ -n "$s" ] && syms+=("$s")
	done
fi

mkdir -p "$OUT"
make -C "$SRCTREE/tools/bench" -s >/dev/null 2>&1 || true
bench=$SRCTREE/build/bench/random-mixed
if [ ! -x "$bench" ]; then
	mkdir -p "$SRCTREE/build/bench"
	${CC:-cc} -O2 -o "$bench" "$SRCTREE/tools/bench/random-mixed.c" || exit 1
fi
mem=$OUT/boxcost-mem
${CC:-cc} -O2 -o "$mem" "$SRCTREE/tools/boxcost-mem.c" || exit 1

# Ir inside bench_loop of random-mixed under $1 (preload, may be empty).
cg() {
	local f=$OUT/cg.out
	env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --toggle-collect=bench_loop \
		--callgrind-out-file="$f" "$bench" "$2" $OPS 4096 42 ${3:+"$3"} \
		>/dev/null 2>"$f.log" || { cat "$f.log" >&2; return 1; }
	sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$f.log" | tail -n1
	rm -f "$f" "$f.log"
}

noop128=$(cg "" 128 noop) || exit 1
noop1024=$(cg "" 1024 noop) || exit 1

measure() {	# so -> "ir128 ir1024 b16 b64 b1024"
	local so=$1 a b r=()
	a=$(cg "$so" 128) && b=$(cg "$so" 1024) || return 1
	r+=("$(awk -v a="$a" -v b="$noop128" -v n=$OPS 'BEGIN { printf "%.1f", (a - b) / n }')")
	r+=("$(awk -v a="$b" -v b="$noop1024" -v n=$OPS 'BEGIN { printf "%.1f", (a - b) / n }')")
	for s in 16 64 1024; do
		r+=("$(LD_PRELOAD=$so "$mem" $s 200000 | sed -n 's/bytes_per_block=//p')")
	done
	echo "${r[*]}"
}

for sym in "${syms[@]}"; do
	dir=$(box_dir "$sym")
	[ -n "$dir" ] || { echo "no box defines $sym" >&2; continue; }
	declare -A res=()
	for state in n y; do
		o=$OUT/${sym}-$state
		rm -rf "$o"
		if ! { make -C "$SRCTREE" -s -j"$JOBS" O="$o" defconfig &&
		       make -C "$SRCTREE" -s -j"$JOBS" O="$o" setconfig SET="$sym=$state" &&
		       make -C "$SRCTREE" -s -j"$JOBS" O="$o" all; } >"$o.log" 2>&1; then
			echo "$sym=$state: build failed (see $o.log)" >&2
			continue 2
		fi
		res[$state]=$(measure "$o/libhakmem.so") || { echo "$sym=$state: measurement failed" >&2; continue 2; }
	done
	read -r off128 off1024 offb16 offb64 offb1k <<<"${res[n]}"
	read -r on128 on1024 onb16 onb64 onb1k <<<"${res[y]}"
	table=$(cat <<EOT
| defconfig + | instructions per malloc+free pair, 8..128 B | 8..1024 B | resident bytes per 16 B block | 64 B block | 1024 B block |
|---|---|---|---|---|---|
| ${sym#HAK_} off | $off128 | $off1024 | $offb16 | $offb64 | $offb1k |
| ${sym#HAK_} on | $on128 | $on1024 | $onb16 | $onb64 | $onb1k |

_Measured by \`tools/boxcost.sh\` on $(date -u +%Y-%m-%d), $(uname -m), $(nproc) CPUs: callgrind over $OPS random-mixed pairs (loop cost subtracted); VmRSS growth over 200,000 live blocks._
EOT
)
	echo "== $sym ($dir)"
	echo "$table"
	if [ -n "$update" ]; then
		page=$SRCTREE/Documentation/boxes/$(basename "$dir").md
		if [ -f "$page" ] && grep -q '<!-- cost table' "$page"; then
			/usr/bin/python3 - "$page" "$table" <<'PY'
import sys
page, table = sys.argv[1], sys.argv[2]
lines = open(page).read().split('\n')
out, i = [], 0
while i < len(lines):
    l = lines[i]
    out.append(l)
    i += 1
    if l.startswith('<!-- cost table'):
        # drop the previous table: following blank, '|' and '_' lines
        while i < len(lines) and (lines[i] == '' or lines[i].startswith('|') or lines[i].startswith('_')):
            i += 1
        out.extend([''] + table.split('\n') + [''])
open(page, 'w').write('\n'.join(out))
PY
		else
			echo "($page has no cost-table marker)" >&2
		fi
	fi
done
