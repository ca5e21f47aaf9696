#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (13-21 s of make check's defconfig run: started first, not last)
#
# gcc under LD_PRELOAD=$HAKMEM_LIB: compiling a generated C file (a
# hundred-odd functions, switch tables, string literals) at -O2 -g must
# give byte-identical assembly and object files with and without hakmem
# (the driver, cc1 and as all run preloaded), and the preloaded compiler
# must really run on hakmem.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 4

cc=$(command -v gcc) || tap_skip_rest "gcc is not installed"

# Generate the source: deterministic, a few thousand lines.
src=$workdir/gen.c
{
	echo '#include <stdio.h>'
	echo '#include <string.h>'
	echo 'struct node { struct node *next; long v; char name[24]; };'
	i=0
	while [ $i -lt 120 ]; do
		cat <<C
static const char *names_${i}[] = { "alpha$i", "beta$i", "gamma$i", "delta$i" };
long f_$i(struct node *n, long x)
{
	long acc = $i;
	for (; n; n = n->next) {
		switch ((n->v + x) & 7) {
		case 0: acc += n->v * $((i + 3)); break;
		case 1: acc ^= (long)strlen(n->name) << ($i % 13); break;
		case 2: acc -= x / ($i + 1); break;
		case 3: acc += names_${i}[n->v & 3][0]; break;
		case 4: snprintf(n->name, sizeof(n->name), "%s-%ld", names_${i}[x & 3], acc); break;
		default: acc = acc * 31 + $i; break;
		}
	}
	return acc;
}
C
		i=$((i + 1))
	done
	echo 'long (*const table[])(struct node *, long) = {'
	i=0
	while [ $i -lt 120 ]; do
		echo "	f_$i,"
		i=$((i + 1))
	done
	echo '};'
} >"$src"

flags="-O2 -g -frandom-seed=hakmem -fno-ident -Wall"
# Both compilations run in the same directory with the same command line,
# so the debug info (comp_dir, producer) matches; outputs are moved aside.
# $flags is a list of options: split on purpose
# shellcheck disable=SC2086
compile() {
	(cd "$workdir" && "$@" "$cc" $flags -S gen.c -o gen.s &&
		"$@" "$cc" $flags -c gen.c -o gen.o)
}
mkdir -p "$workdir/p" "$workdir/h"
compile env >"$workdir/plain.log" 2>&1
rc1=$?
mv "$workdir/gen.s" "$workdir/gen.o" "$workdir/p/" 2>/dev/null
compile with_hakmem >"$workdir/hak.log" 2>&1
rc2=$?
mv "$workdir/gen.s" "$workdir/gen.o" "$workdir/h/" 2>/dev/null
same_status "gcc -O2 -S and -c of a $(wc -l <"$src")-line file run under hakmem" "$rc1" "$rc2"
same_files "gcc assembly output identical with and without hakmem" \
	"$workdir/p/gen.s" "$workdir/h/gen.s"
same_files "gcc object file identical with and without hakmem" \
	"$workdir/p/gen.o" "$workdir/h/gen.o"
stats_check gcc "$cc" --version
tap_finish
