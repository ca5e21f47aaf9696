# SPDX-License-Identifier: MIT
# Every configs/*defconfig as its own variant (build with sparse, hermetic
# headers, selftests; quick mode but for defconfig), then defconfig once
# more with ARCH=generic.

savedefconfig_roundtrip() {
	# configs/X -> .config -> savedefconfig -> .config again: same result
	local name=$1 d=$BUILD/check-roundtrip-$1
	rm -rf "$d" && mkdir -p "$d" || return 1
	hakmake -s O="$d/a" "$name" >/dev/null &&
	hakmake -s O="$d/a" savedefconfig >/dev/null &&
	mkdir -p "$d/b" && cp "$d/a/defconfig" "$d/b/.config" &&
	hakmake -s O="$d/b" olddefconfig >/dev/null || return 1
	if ! diff -u <(grep -v '^#' "$d/a/.config") <(grep -v '^#' "$d/b/.config"); then
		echo "$name: savedefconfig does not round-trip"
		return 1
	fi
	if ! diff -q <(grep -v '^#' "$SRCTREE/configs/$name" | grep -v '^$') \
		     <(grep -v '^#' "$d/a/defconfig" | grep -v '^$') >/dev/null; then
		echo "note: configs/$name is not minimal; 'make $name savedefconfig' gives:"
		cat "$d/a/defconfig"
	fi
}

# Every selftests folder but preload (real programs under LD_PRELOAD, about
# 40 s a variant): minimal, perf and the generic-arch build run without it,
# to keep make check near 20 minutes; defconfig, debug and hardened run it.
no_preload="T=$(cd "$SRCTREE/selftests" && for d in */Makefile; do
	d=${d%/Makefile}; [ "$d" != preload ] && echo "$d"; done | tr '\n' ' ')"

for cfg in "$SRCTREE"/configs/defconfig "$SRCTREE"/configs/*_defconfig; do
	[ -f "$cfg" ] || continue
	name=${cfg##*/}
	label=${name%_defconfig}
	# defconfig runs the long selftests; the other variants the quick
	# mode (the stress step repeats the long ones under three configs)
	case $label in
	defconfig) variant "$label" "$name" ;;
	# perf runs defconfig's code with -O3 and the prewarm box: the real
	# programs of preload/ (40 s) run in defconfig, debug and hardened
	minimal|perf) HAKMEM_SELFTEST_QUICK=1 variant "$label" "$name" "$no_preload" ;;
	*) HAKMEM_SELFTEST_QUICK=1 variant "$label" "$name" ;;
	esac
	# in the background (its own trees, mostly one process at a time),
	# next to the next variant's build
	bgstep "$label:savedefconfig" savedefconfig_roundtrip "$name"
done

HAKMEM_SELFTEST_QUICK=1 variant generic defconfig ARCH=generic "$no_preload"

# clang (installed by tools/deps.sh): a user's `make CC=clang` got a
# library whose every malloc past 1 KiB crashed (an asm operand clang
# printed without %fs:), and gcc's build could not show it.
HAKMEM_SELFTEST_QUICK=1 variant clang defconfig CC=clang "$no_preload"
