#!/bin/bash
# SPDX-License-Identifier: MIT
#
# boxmatrix.sh: combinations of the boxes build with -Werror, are sparse
# clean (C=1) and pass `make selftests` (all folders but preload/, which
# the defconfig variants run, and arch/; HAKMEM_SELFTEST_QUICK=1 shortens the long
# core tests, HAKMEM_SELFTEST_MATRIX=1 drops the parts of a test that do
# not depend on the other boxes, such as valgrind's preloaded run). Each combination is built from scratch in
# build/matrix/<n>. Ends with "N passed, N failed".
#
#   tools/boxmatrix.sh [-j LANES] [--build-only] [--tests own|rest]
#                      [--all | --strength T] [N...]
#
# --tests own: a combination runs only the selftest folders of the boxes it
# turns on (each box's own tests against the others' settings; make check's
# first tier); --tests rest: every other folder (the core's and the boxes'
# it turns off; the second tier). Both together are the default set.
#
# Which combinations: tools/boxcombos picks them from every box in
# boxes/*/Kconfig. By default a covering array of strength 3 (every three
# boxes see all eight of their on/off settings; `make boxmatrix` runs this,
# `make check` strength 2);
# --all runs every valid combination (2^boxes; `make boxmatrix-all`).
# N... runs only those entries of the list (numbers as printed).
# -j: combinations built and tested at once (default: the CPU count).
# Each lane's selftest runner runs $HAKMEM_TEST_JOBS programs at once
# (default here: 2 * CPUs / lanes, at least 1), so the lanes together run
# as many programs as the runner alone would (twice the CPUs: most
# selftests sleep through purge delays, selftests/lib/runner.sh).
set -u
export LC_ALL=C
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRCTREE/build/matrix
LANES=$(nproc 2>/dev/null || echo 2)
JOBS=1
build_only=
tests=all
select=()
combo_args=()
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES O ARCH V C T KBUILD_OUTPUT

while [ $# -gt 0 ]; do
	case $1 in
	-j) LANES=$2; shift ;;
	--build-only) build_only=1 ;;
	--tests) tests=$2; shift
		case $tests in own|rest|all) ;;
		*) echo "boxmatrix.sh: --tests own, rest or all" >&2; exit 2 ;;
		esac ;;
	--all) combo_args=(--all) ;;
	--strength) combo_args=(--strength "$2"); shift ;;
	*) select+=("$1") ;;
	esac
	shift
done

# The combinations: one line each, "HAK_X=y HAK_Y=n ...".
CPUS=$(nproc 2>/dev/null || echo 2)
TEST_JOBS=${HAKMEM_TEST_JOBS:-$(( 2 * CPUS / LANES > 0 ? 2 * CPUS / LANES : 1 ))}

mapfile -t combos < <("$SRCTREE"/tools/boxcombos "${combo_args[@]+"${combo_args[@]}"}")
if [ ${#combos[@]} -eq 0 ]; then
	echo "tools/boxcombos gave no combination"
	echo "0 passed, 1 failed"
	exit 1
fi
masks=()
if [ ${#select[@]} -gt 0 ]; then
	masks=("${select[@]}")
else
	for ((m = 0; m < ${#combos[@]}; m++)); do masks+=("$m"); done
fi

# Every selftests folder except the real-program runs and arch/ (the
# atomics do not depend on any box; every variant of `make check` runs it).
tdirs=$(cd "$SRCTREE/selftests" && for d in */Makefile; do d=${d%/Makefile}
	case $d in preload|arch) ;; *) echo "$d" ;; esac; done)
tdirs=$(echo $tdirs)

# combo_dirs SET_ARGS: the folders of tdirs this combination runs (--tests):
# a box's folder is its Kconfig symbol without HAK_, in lower case.
combo_dirs() {
	local on=" " a d out=
	for a in $1; do
		[ "${a#*=}" = y ] || continue
		d=${a%=y}; d=${d#HAK_}
		on+="${d,,} "
	done
	for d in $tdirs; do
		case $tests:$on in
		all:*) out+="$d " ;;
		own:*" $d "*) out+="$d " ;;
		rest:*" $d "*) ;;
		rest:*) out+="$d " ;;
		esac
	done
	echo "$out"
}

hakmake() {
	make -C "$SRCTREE" --no-print-directory -j"$JOBS" "$@"
}

# One combination, from scratch; prints its result line, then "RESULT p f".
run_combo() {
	local m=$1 set_args=${combos[$1]} label= a dir log start rc line p f want got dirs why
	for a in $set_args; do
		[ "${a#*=}" = y ] && label+="$(echo "${a%=y}" | sed 's/^HAK_//') "
	done
	dir=$OUT/$m
	log=$dir.log
	rm -rf "$dir"
	start=$(date +%s)
	printf '[%2d] %-60s ' "$m" "${label:-(none)}"
	if ! { hakmake O="$dir" defconfig && hakmake O="$dir" setconfig SET="$set_args" &&
	       hakmake O="$dir" C=1 all; } >"$log" 2>&1; then
		echo "BUILD FAILED (log: ${log#"$SRCTREE"/})"
		tail -n 20 "$log" | sed 's/^/| /'
		echo "RESULT 0 1"
		return
	fi
	# setconfig must have taken: a box that silently stayed off is a failure.
	for a in $set_args; do
		want=${a#*=}
		got=$(grep -q "^CONFIG_${a%=*}=y" "$dir/.config" && echo y || echo n)
		if [ "$want" != "$got" ]; then
			echo "CONFIG MISMATCH: ${a%=*}=$got, wanted $want"
			echo "RESULT 0 1"
			return
		fi
	done
	dirs=$(combo_dirs "$set_args")
	if [ -n "$build_only" ] || [ -z "$dirs" ]; then
		if [ -n "$build_only" ]; then why=asked; else why="of its own"; fi
		echo "built $(( $(date +%s) - start ))s (no selftests $why)"
		[ -n "$build_only" ] || rm -rf "$dir"	# --build-only keeps the tree
		echo "RESULT 1 0"
		return
	fi
	HAKMEM_SELFTEST_QUICK=1 HAKMEM_SELFTEST_MATRIX=1 HAKMEM_TEST_JOBS=$TEST_JOBS \
		hakmake O="$dir" selftests T="$dirs" >>"$log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	p=${line%% passed*}; p=${p:-0}
	f=${line#*passed, }; f=${f%% failed}; f=${f:-1}
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	if [ "$f" -eq 0 ]; then
		echo "ok $(( $(date +%s) - start ))s ($p passed)"
		rm -rf "$dir"	# keep the disk small; the log stays
	else
		echo "FAILED $(( $(date +%s) - start ))s ($f failed, log: ${log#"$SRCTREE"/})"
		grep -E '^(not ok|# not ok)' "$log" | head -n 10 | sed 's/^/| /'
	fi
	echo "RESULT $p $f"
}

echo "box matrix: $("$SRCTREE"/tools/boxcombos --list-boxes) (${#masks[@]} of ${#combos[@]} combinations, $LANES at a time, $TEST_JOBS test program(s) each), selftests ($tests): $tdirs"
mkdir -p "$OUT"
passed=0 failed=0
# Combinations run $LANES at a time (each make with -j1: the lanes are the
# parallelism). A lane takes the next combination as soon as it is free
# (not when the oldest one running ends: that left a lane idle for half a
# minute of make check), the ones with more boxes on first (more selftest
# folders: the longest, so that none starts last and runs alone); results
# are printed in that order, each as soon as those before it are done.
order=()
for m in "${masks[@]}"; do
	a=${combos[$m]}
	on=${a//[^y]/}
	order+=("$(printf '%03d %05d' $((999 - ${#on})) "$m")")
done
mapfile -t order < <(printf '%s\n' "${order[@]}" | sort)
pending=()
declare -A pids=()
# flush_ready [all]: prints the results of the combinations done (with
# "all", after the last wait: also of those that died before their end,
# as failed)
flush_ready() {
	local m r
	while [ ${#pending[@]} -gt 0 ] && { [ -e "$OUT/${pending[0]}.done" ] || [ -n "${1:-}" ]; }; do
		m=${pending[0]}
		wait "${pids[$m]}" 2>/dev/null
		grep -v '^RESULT ' "$OUT/$m.out"
		r=$(sed -n 's/^RESULT //p' "$OUT/$m.out")
		[ -n "$r" ] || { echo "[$m] ended without a result"; r="0 1"; }
		passed=$((passed + ${r% *}))
		failed=$((failed + ${r#* }))
		pending=("${pending[@]:1}")
	done
}
running=0
for o in "${order[@]}"; do
	m=$((10#${o#* }))
	while [ "$running" -ge "$LANES" ]; do
		wait -n 2>/dev/null
		[ $? -eq 127 ] && break	# no child left (one died before its .done)
		running=0
		for p in "${pending[@]}"; do
			[ -e "$OUT/$p.done" ] || running=$((running + 1))
		done
		flush_ready
	done
	rm -f "$OUT/$m.done"
	{ run_combo "$m" >"$OUT/$m.out" 2>&1; : >"$OUT/$m.done"; } &
	pids[$m]=$!
	pending+=("$m")
	running=$((running + 1))
done
wait
flush_ready all
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
