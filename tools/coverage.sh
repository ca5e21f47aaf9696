#!/bin/bash
# SPDX-License-Identifier: MIT
#
# coverage.sh: which lines, branches and functions of lib/ and boxes/ the
# selftests execute.
#
#   tools/coverage.sh [--report-only] [VARIANT...]
#
# Each variant is built with gcov instrumentation (make COVERAGE=1, see
# the Makefile) into build/coverage/<variant>, and its selftests run in
# quick mode
# (HAKMEM_SELFTEST_QUICK=1). gcovr then merges the counts of every variant
# line by line (a line counts as run if any variant ran it) and writes, in
# build/coverage/:
#
#   lines.txt      per file: lines, run, %, the line numbers never run
#   branches.txt   per file: branches, taken, %
#   functions.txt  functions of lib/ and boxes/ that no variant ever ran
#   summary.txt    per-file line and branch %, and the 10 files with the
#                  most lines never run
#
# Variants (default: all of them):
#   def     defconfig
#   hard    hardened_defconfig
#   debug   debug_defconfig (fail-fast, headers, valgrind hooks)
#   boxes   defconfig + hugepage and TLS prewarm (the boxes no shipped
#           config turns on)
#   fi      defconfig + CONFIG_HAK_FAULT_INJECT (what make check's
#           faultinject step runs; preload/ left out as there)
#
# Expected failures: aggressive_inline/inline_codegen.sh counts the
# instructions of the fast path, which the counters lengthen; the failures
# of a variant's selftests are listed but do not stop the report. A process that writes its counts
# while another of its threads runs (abort() or _exit() in one thread) may
# leave counts that do not add up, which gcov prints as a negative branch
# count: gcovr skips those lines (--gcov-ignore-parse-errors; one or two
# lines per variant, listed in <variant>/gcovr.log). Needs
# gcov (gcc) and gcovr (`apt-get install -y gcovr`). About 4 minutes per
# variant on the 2-core machine. Documentation/reliability.md, "Coverage".

set -u
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRCTREE/build/coverage
JOBS=$(nproc 2>/dev/null || echo 2)
unset MAKEFLAGS MFLAGS MAKELEVEL O ARCH V C T KBUILD_OUTPUT
export HAKMEM_SELFTEST_QUICK=1

report_only=
variants=()
for a in "$@"; do
	case $a in
	--report-only) report_only=1 ;;
	def|hard|debug|boxes|fi) variants+=("$a") ;;
	*) echo "coverage.sh: unknown variant $a" >&2; exit 2 ;;
	esac
done
[ ${#variants[@]} -gt 0 ] || variants=(def hard debug boxes fi)
command -v gcovr >/dev/null || { echo "coverage.sh: needs gcovr" >&2; exit 2; }

hakmake() {
	make -C "$SRCTREE" -j"$JOBS" COVERAGE=1 "$@"
}

# build_and_run VARIANT: fresh build, its selftests, a gcovr JSON of it.
build_and_run() {
	local v=$1 d=$OUT/$1 base set= tests=
	case $v in
	def) base=defconfig ;;
	hard) base=hardened_defconfig ;;
	debug) base=debug_defconfig ;;
	boxes) base=defconfig; set="HAK_HUGEPAGE=y HAK_TLS_PREWARM=y" ;;
	fi) base=defconfig; set="HAK_FAULT_INJECT=y"
	    tests=$(cd "$SRCTREE/selftests" && ls -d */ | tr -d / | grep -vx preload | tr '\n' ' ') ;;
	esac
	rm -rf "$d"
	hakmake -s O="$d" "$base" >/dev/null || return 1
	if [ -n "$set" ]; then
		hakmake -s O="$d" setconfig SET="$set" >/dev/null || return 1
	fi
	hakmake -s O="$d" all || return 1
	hakmake -s O="$d" ${tests:+T="$tests"} selftests >"$d/selftests.log" 2>&1
	echo "coverage: $v: $(tail -n 1 "$d/selftests.log" | grep -E 'passed' ||
		grep -E '^[0-9]+ passed' "$d/selftests.log" | tail -n 1)"
	grep -E '^not ok [0-9]+ selftests:' "$d/selftests.log" | sed "s/^/coverage: $v: /"
	(cd "$SRCTREE" && gcovr -r . "$d" --filter 'lib/' --filter 'boxes/' \
		--gcov-ignore-parse-errors --json "$d/cov.json" 2>"$d/gcovr.log") || return 1
}

mkdir -p "$OUT"
if [ -z "$report_only" ]; then
	for v in "${variants[@]}"; do
		build_and_run "$v" || { echo "coverage: $v: build failed" >&2; exit 1; }
	done
fi

traces=()
for v in "${variants[@]}"; do
	[ -e "$OUT/$v/cov.json" ] && traces+=(--add-tracefile "$OUT/$v/cov.json")
done
[ ${#traces[@]} -gt 0 ] || { echo "coverage.sh: no variant has run" >&2; exit 1; }
cd "$SRCTREE" || exit 1
gcovr -r . "${traces[@]}" --txt "$OUT/lines.txt" --json "$OUT/merged.json" &&
gcovr -r . "${traces[@]}" --branches --txt "$OUT/branches.txt" &&
/usr/bin/python3 "$SRCTREE/tools/coverage-summary.py" "$OUT/merged.json" \
	"$OUT/summary.txt" "$OUT/functions.txt" || exit 1
cat "$OUT/summary.txt"
