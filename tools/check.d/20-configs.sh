# SPDX-License-Identifier: MIT
# Every configs/*defconfig as its own variant (build with sparse, hermetic
# headers, selftests in quick mode), then defconfig once more with
# ARCH=generic and once with clang; the second tier runs the folders the
# first leaves out in the same trees (below).

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

# Selftest folders by tier (check.sh: "check" stays under 20 minutes on a
# quiet 2-core machine, "more" runs the rest of what CI runs, in the same
# trees). The real programs of preload/ (about 100 s of test time a variant)
# run in defconfig in the first tier, in debug and hardened in the second;
# minimal runs the core and arch folders first (its boxes are off), the
# generic-arch and clang builds arch and sanitize (the atomics and a
# threaded smoke run of every entry point), the rest of theirs second.
all_dirs=$(cd "$SRCTREE/selftests" && for d in */Makefile; do echo "${d%/Makefile}"; done)
dirs_but() {
	local d
	for d in $all_dirs; do
		case " $* " in *" $d "*) ;; *) echo "$d" ;; esac
	done | tr '\n' ' '
}
no_preload="T=$(dirs_but preload)"
core_first="arch core"
smoke_first="arch sanitize"

for cfg in "$SRCTREE"/configs/defconfig "$SRCTREE"/configs/*_defconfig; do
	[ -f "$cfg" ] || continue
	name=${cfg##*/}
	label=${name%_defconfig}
	if tier more; then
		case $label in
		# defconfig: the long mode of the folders that have one
		# (the first tier runs them quick; the stress steps repeat
		# the long programs under three configs)
		defconfig) more_selftests "$label" "$name" "T=core bigcache fuzz" ;;
		debug|hardened) HAKMEM_SELFTEST_QUICK=1 more_selftests "$label" "$name" "T=preload" ;;
		minimal) HAKMEM_SELFTEST_QUICK=1 more_selftests "$label" "$name" \
			"T=$(dirs_but preload $core_first)" ;;
		esac
		continue
	fi
	case $label in
	defconfig) HAKMEM_SELFTEST_QUICK=1 variant "$label" "$name" ;;
	minimal) HAKMEM_SELFTEST_QUICK=1 variant "$label" "$name" "T=$core_first" ;;
	# perf runs defconfig's code with -O3 and the prewarm box
	*) HAKMEM_SELFTEST_QUICK=1 variant "$label" "$name" "$no_preload" ;;
	esac
	# in the background (its own trees, mostly one process at a time),
	# next to the next variant's build
	bgstep "$label:savedefconfig" savedefconfig_roundtrip "$name"
done

if tier more; then
	HAKMEM_SELFTEST_QUICK=1 more_selftests generic defconfig ARCH=generic \
		"T=$(dirs_but preload $smoke_first)"
	HAKMEM_SELFTEST_QUICK=1 more_selftests clang defconfig CC=clang \
		"T=$(dirs_but preload $smoke_first)"
	return 0
fi

HAKMEM_SELFTEST_QUICK=1 variant generic defconfig ARCH=generic "T=$smoke_first"

# clang (installed by tools/deps.sh): a user's `make CC=clang` got a
# library whose every malloc past 1 KiB crashed (an asm operand clang
# printed without %fs:), and gcc's build could not show it.
HAKMEM_SELFTEST_QUICK=1 variant clang defconfig CC=clang "T=$smoke_first"
