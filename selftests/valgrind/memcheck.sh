#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (one of the longest selftests: the runner starts it first)
#
# memcheck.sh: with the valgrind box built in, memcheck sees hakmem's
# blocks. vg_target (this folder) runs under
#   valgrind --soname-synonyms=somalloc=nouserintercepts --leak-check=full
# (the option keeps valgrind from replacing hakmem's malloc with its own),
# once linked statically with libhakmem.a and once built plainly with
# libhakmem.so preloaded. Clean: no error, every block freed. Planted leak:
# "definitely lost" with the allocating stack (a small and a large block).
# Use-after-free: "Invalid read" at the reading line, naming the free'd
# block. And the blocks memcheck reports were allocated by hakmem, not by
# valgrind's own malloc.

dir=$(dirname "$0")
[ -f "$dir/../preload/preload_lib.sh" ] || dir="$SRCTREE/selftests/valgrind"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/../preload/preload_lib.sh"

preload_setup
command -v valgrind >/dev/null 2>&1 || tap_skip_all "valgrind is not installed"
target=$O/selftests/valgrind/vg_target
[ -x "$target" ] || tap_skip_all "$target is not built"
tap_plan 11

# vg LOG CMD...: run CMD under memcheck (LD_PRELOAD=$preload if set)
vg() {
	log=$1
	shift
	env ${preload:+LD_PRELOAD="$preload"} valgrind --soname-synonyms=somalloc=nouserintercepts --leak-check=full \
		--log-file="$workdir/$log" "$@" >"$workdir/$log.out" 2>&1
}

# grep_ok DESCRIPTION LOG PATTERN...: every pattern (grep -E) is in LOG
grep_ok() {
	desc=$1
	log=$workdir/$2
	shift 2
	for pat in "$@"; do
		if ! grep -Eq -- "$pat" "$log"; then
			tap_ok 1 "$desc"
			tap_diag "no match for: $pat"
			grep -v '^==[0-9]*== *$' "$log" | head -n 25 | sed 's/^/# /'
			return
		fi
	done
	tap_ok 0 "$desc"
}

# leak_ok DESCRIPTION LOG BYTES [KINDS]: BYTES lost (KINDS, an ERE: "definitely" unless
# given), allocated in leak()
leak_ok() {
	if awk -v bytes="$3" -v kinds="${4:-definitely}" '
		$0 ~ ("(" kinds ") lost in loss record") { hit = index($0, " " bytes " bytes in 1 blocks") > 0; next }
		hit && /by 0x[0-9A-F]*: leak \(vg_target.c:/ { found = 1 }
		/^==[0-9]*== *$/ { hit = 0 }
		END { exit !found }' "$workdir/$2"; then
		tap_ok 0 "$1"
	else
		tap_ok 1 "$1"
		grep -A6 "definitely lost in loss" "$workdir/$2" | head -n 20 | sed 's/^/# /'
		grep -A6 "$3 bytes in" "$workdir/$2" | head -n 20 | sed 's/^/# /'
	fi
}

# run_set TAG CMD...: the three scenarios of one build of vg_target
run_set() {
	tag=$1
	shift
	vg "$tag.clean" "$@"
	grep_ok "$tag: clean workload under memcheck: 0 errors, all blocks freed, TAP passes" \
		"$tag.clean" 'ERROR SUMMARY: 0 errors' 'All heap blocks were freed'
	if grep -q '^not ok' "$workdir/$tag.clean.out" || ! grep -q '^ok 6' "$workdir/$tag.clean.out"; then
		tap_diag "vg_target output:"
		sed 's/^/# /' "$workdir/$tag.clean.out" | head -n 10
	fi
	vg "$tag.leak" "$@" leak
	leak_ok "$tag: planted 100-byte leak is definitely lost (112 usable bytes), stack names leak()" \
		"$tag.leak" "112"
	# Under valgrind blocks sit near 80 MB, and a 1.2 MB block is a wide
	# target: a word of hakmem's (a byte count, a stamp) that falls inside
	# it makes memcheck call it "possibly lost" (an interior pointer), in
	# about 2 of 3 box-matrix runs on 2026-12-03; it is reported, with its
	# stack, either way, which is what the valgrind box promises.
	leak_ok "$tag: planted 1200 KiB leak is reported lost (definitely, or possibly: a stray interior word), stack names leak()" \
		"$tag.leak" "1,228,800" "definitely|possibly"
	vg "$tag.uaf" "$@" uaf
	grep_ok "$tag: use-after-free is an invalid read at the reading line, in a free'd 224-byte block" \
		"$tag.uaf" 'Invalid read of size 1' 'at 0x[0-9A-F]*: use_after_free \(vg_target.c:' \
		"is 0 bytes inside a block of size 224 free'd" 'ERROR SUMMARY: 1 errors'
	# hakmem, not valgrind's replacement malloc, made the blocks
	if grep -q 'hak_vg_alloc\|hak_vg_big\|libhakmem' "$workdir/$tag.leak" &&
	   ! grep -q 'vgpreload_memcheck' "$workdir/$tag.leak" "$workdir/$tag.uaf"; then
		tap_ok 0 "$tag: the reported blocks were allocated by hakmem (hakmem frames, no valgrind malloc)"
	else
		tap_ok 1 "$tag: the reported blocks were allocated by hakmem (hakmem frames, no valgrind malloc)"
	fi
}

run_set static "$target"

# The box matrix (tools/boxmatrix.sh sets HAKMEM_SELFTEST_MATRIX) checks
# how this box meets the others: the static set shows it. The preloaded
# set and the default-options check depend on valgrind and the dynamic
# linker, not on the other boxes; the variants with the box run them (four
# memcheck runs, about 35 s, saved in each matrix combination).
if [ -n "${HAKMEM_SELFTEST_MATRIX:-}" ]; then
	for _ in 1 2 3 4 5 6; do
		tap_skip "box matrix: the preloaded run is left to the variants"
	done
	tap_finish
fi

# The same program built plainly, hakmem preloaded: the usual way to use it.
plain=$workdir/vg_target_plain
if gcc -O2 -g -pthread -I"$SRCTREE/selftests/lib" -o "$plain" \
	"$SRCTREE/selftests/valgrind/vg_target.c" 2>"$workdir/gcc.err"; then
	preload=$HAKMEM_LIB run_set preload "$plain"
else
	sed 's/^/# /' "$workdir/gcc.err" | head -n 5
	for _ in 1 2 3 4 5; do
		tap_ok 1 "preload: build vg_target.c with gcc"
	done
fi

# Without the soname option valgrind replaces the preloaded malloc with its
# own (the box page says to pass it): checked so the page stays true.
LD_PRELOAD=$HAKMEM_LIB valgrind --leak-check=full --log-file="$workdir/default.log" \
	"$plain" leak >/dev/null 2>&1
grep -q 'vgpreload_memcheck' "$workdir/default.log"
tap_ok $? "without --soname-synonyms=somalloc=nouserintercepts valgrind uses its own malloc (as documented)"
vg_ver=$(valgrind --version 2>/dev/null)
tap_diag "$vg_ver"
tap_finish
