#!/bin/bash
# SPDX-License-Identifier: MIT
#
# check.sh: everything CI checks (`make check` runs it; .ci/run runs that).
#
#   tools/check.sh [PATTERN...]   run the steps whose name matches a glob
#   tools/check.sh --list         list the steps
#
# Steps live in tools/check.d/*.sh, sourced in name order; add a file there
# to add steps (no edit here). A step file calls:
#
#   step NAME COMMAND [ARG...]
#       Runs COMMAND from the source tree, output to build/check/logs/.
#       If the output's last "N passed, N failed" line exists, those counts
#       are added to the total, else the step counts as 1 passed or 1 failed
#       by its exit status (a non-zero exit always counts >= 1 failure).
#
#   variant LABEL CONFIG_TARGET [SET="HAK_X=y ..."] [MAKEVAR=value...]
#       A build variant in build/check-LABEL (made from scratch): the config
#       target (plus `make setconfig SET=...`), then steps "LABEL:build"
#       (with sparse, C=1), "LABEL:headers" (hermetic headers, sparse) and
#       "LABEL:selftests". After a failed step the variant's later steps
#       are not run.
#
#   hakmake ARGS...      make -C <srctree> -j<cpus> ARGS (for step commands)
#
# Variables for step files: SRCTREE, BUILD (=SRCTREE/build), JOBS, LOGDIR.
# Ends with one line "N passed, N failed"; exit status 1 if anything failed.

set -u
export LC_ALL=C

SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRCTREE/build
LOGDIR=$BUILD/check/logs
JOBS=$(nproc 2>/dev/null || echo 2)
export SRCTREE BUILD JOBS

# We are a script, not a sub-make: start clean of the caller's make state.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS
unset O ARCH V C T KBUILD_OUTPUT

list_only=
patterns=()
for a in "$@"; do
	case $a in
	--list) list_only=1 ;;
	*) patterns+=("$a") ;;
	esac
done

total_passed=0
total_failed=0
nsteps=0
failed_steps=()
failed_why=()
variant_broken=

mkdir -p "$LOGDIR"

wanted() {
	local p
	[ ${#patterns[@]} -eq 0 ] && return 0
	for p in "${patterns[@]}"; do
		# shellcheck disable=SC2053
		[[ $1 == $p || $1 == $p:* || $1 == *$p* ]] && return 0
	done
	return 1
}

hakmake() {
	make -C "$SRCTREE" --no-print-directory -j"$JOBS" "$@"
}

# CPU seconds (user + system) used so far by finished children: a step's
# share tells what it costs on a busier or smaller machine, where its wall
# time does not.
children_cpu() {
	# fields 16 and 17 of /proc/PID/stat: the waited-for children's user
	# and system time in clock ticks ($$ is this shell, even in $(...))
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($16 + $17) / hz }' "/proc/$$/stat"
}

step() {
	local name=$1; shift
	wanted "$name" || return 0
	nsteps=$((nsteps + 1))
	if [ -n "$list_only" ]; then
		echo "$name"
		return 0
	fi
	local log=$LOGDIR/${name//[^A-Za-z0-9_.-]/_}.log
	local start cpu rc p f line
	printf '[%3d] %-40s ' "$nsteps" "$name"
	start=$(date +%s)
	cpu=$(children_cpu)
	(cd "$SRCTREE" && "$@") >"$log" 2>&1 </dev/null
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*passed, }; f=${f%% failed}
	elif [ $rc -eq 0 ]; then
		p=1 f=0
	else
		p=0 f=1
	fi
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	cpu=$(( $(children_cpu) - cpu ))
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
	if [ $rc -eq 0 ] && [ "$f" -eq 0 ]; then
		printf 'ok   %4ds  cpu %4ds  %s passed\n' $(( $(date +%s) - start )) "$cpu" "$p"
	else
		printf 'FAIL %4ds  cpu %4ds  %s passed, %s failed (log: %s)\n' \
			$(( $(date +%s) - start )) "$cpu" "$p" "$f" "${log#"$SRCTREE"/}"
		failed_steps+=("$name")
		# What failed, for the summary at the end: CI shows only the tail.
		failed_why+=("$(grep -E '^(\| )*(not ok|# not ok)|FAILED' "$log" | head -n 6 | sed 's/^/      /')")
		echo "------ last lines of $name ------"
		tail -n 40 "$log" | sed 's/^/| /'
		echo "------"
	fi
	return $rc
}

variant() {
	local label=$1 target=$2; shift 2
	local dir=$BUILD/check-$label set= vars=() a
	for a in "$@"; do
		case $a in
		SET=*) set=${a#SET=} ;;
		*) vars+=("$a") ;;
		esac
	done
	local o=("O=$dir" "${vars[@]}")
	if [ -z "$list_only" ] && wanted "$label:config"; then
		rm -rf "$dir"
	fi
	step "$label:config" hakmake "${o[@]}" "$target" ${set:+setconfig "SET=$set"} || return 1
	step "$label:build" hakmake "${o[@]}" C=1 all || return 1
	step "$label:headers" hakmake "${o[@]}" C=1 headers_check || return 1
	step "$label:selftests" hakmake "${o[@]}" selftests
}

[ -z "$list_only" ] && echo "hakmem check: $SRCTREE, $JOBS jobs, logs in ${LOGDIR#"$SRCTREE"/}"
started=$(date +%s)
# For tools/check.d/90-srctree-clean.sh: the tree as it was before any step.
SRCTREE_STATUS_BEFORE=
if [ -z "$list_only" ] && git -C "$SRCTREE" rev-parse --git-dir >/dev/null 2>&1; then
	SRCTREE_STATUS_BEFORE=$(git -C "$SRCTREE" status --porcelain --ignored --untracked-files=all | grep -v "^!! build/")
fi

for f in "$SRCTREE"/tools/check.d/*.sh; do
	[ -e "$f" ] || continue
	# shellcheck source=/dev/null
	. "$f"
done

[ -n "$list_only" ] && exit 0

echo
echo "check: $nsteps steps in $(( $(date +%s) - started ))s, $(children_cpu)s of CPU"
for i in "${!failed_steps[@]}"; do
	echo "  failed: ${failed_steps[$i]}"
	[ -n "${failed_why[$i]}" ] && echo "${failed_why[$i]}"
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
