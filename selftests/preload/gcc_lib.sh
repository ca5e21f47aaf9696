#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (13-21 s of make check's defconfig run: started first, not last)
#
# gcc -O2 building hakmem's own lib/*.c under LD_PRELOAD=$HAKMEM_LIB: each
# source is compiled with the tree's flags and include paths against the
# generated autoconf.h of $O, once plainly and once with hakmem preloaded
# (driver, cc1 and as), and every object file must be byte-identical. The
# preloaded compiler must really run on hakmem.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 3

cc=$(command -v gcc 2>/dev/null)
if [ -z "$cc" ] || [ ! -f "$O/include/generated/autoconf.h" ] || [ ! -d "$SRCTREE/lib" ]; then
	tap_skip_rest "gcc, \$O/include/generated/autoconf.h or \$SRCTREE/lib missing"
fi

arch=generic
grep -q '^CONFIG_ARCH_X86_64=y' "$O/.config" 2>/dev/null && arch=x86_64
[ "$(uname -m)" = x86_64 ] && [ -d "$SRCTREE/arch/x86_64/include" ] && arch=x86_64
flags="-std=gnu11 -D_GNU_SOURCE -O2 -g -fPIC -fvisibility=hidden
	-ftls-model=initial-exec -Wall -Wextra -Werror -frandom-seed=hakmem
	-I$O/include -I$SRCTREE/include -I$SRCTREE/arch/$arch/include
	-I$SRCTREE/lib -I$SRCTREE -include $SRCTREE/include/hak/kconfig.h"

# build TAG CMD-PREFIX...: every lib/*.c into $workdir/TAG/, two at a time.
# Same working directory and command line both times, so the debug info
# matches; only the output file differs.
build() {
	tag=$1
	shift
	mkdir -p "$workdir/$tag" || return 1
	# $flags is a list of options: split on purpose
	# shellcheck disable=SC2086
	(cd "$workdir" && for f in "$SRCTREE"/lib/*.c; do
		echo "$f -o $tag/$(basename "$f" .c).o"
	done | xargs -P 2 -n 3 "$@" "$cc" $flags -c)
}
build plain env >"$workdir/plain.log" 2>&1
rc1=$?
build hak env LD_PRELOAD="$HAKMEM_LIB" >"$workdir/hak.log" 2>&1
rc2=$?
n=$(find "$workdir/plain" -name '*.o' | wc -l)
same_status "gcc -O2 of hakmem's $n lib/*.c sources runs under hakmem" "$rc1" "$rc2"
bad=0
for o in "$workdir"/plain/*.o; do
	if ! cmp -s "$o" "$workdir/hak/$(basename "$o")"; then
		bad=$((bad + 1))
		tap_diag "differs: $(basename "$o")"
	fi
done
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ] && [ "$(find "$workdir/hak" -name '*.o' | wc -l)" -eq "$n" ]
tap_ok $? "all $n objects identical with and without hakmem"
stats_check gcc "$cc" --version
tap_finish
