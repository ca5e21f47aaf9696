#!/bin/bash
# SPDX-License-Identifier: MIT
#
# check.sh: everything CI checks, in two tiers (.ci/run runs both):
#
#   tools/check.sh [PATTERN...]   run the steps whose name matches a glob
#   tools/check.sh --list         list the steps
#
# HAKMEM_CHECK_TIER picks the tier. "check" (the default; `make check`): the
# bounded part, which must stay under 20 minutes on a quiet 2-core machine:
# every variant and box combination built with -Werror, sparse and the
# header checks, and a slice of the selftests of each. "more" (`make
# check-more`): the selftests that slice leaves out, in the trees the first
# tier left in build/check-* (a tree that is missing is built first), the
# box combinations with their other folders, the perf and debug stress runs,
# the fault-injection variant and sparse over every selftest's source. Documentation/building-variants.md
# ("make check", "Time") says which part runs where.
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
#       (with sparse, C=1), "LABEL:headers" (hermetic headers, sparse; in
#       the background, next to the selftests) and "LABEL:selftests".
#       After a failed config or build the variant's later steps are not
#       run.
#
#   more_selftests LABEL CONFIG_TARGET [SET="HAK_X=y ..."] [MAKEVAR=value...]
#       Tier "more": step "LABEL:selftests-more", the variant's selftests
#       (MAKEVAR T= picks the folders) in build/check-LABEL as the first
#       tier left it; a tree that is missing is configured and built first.
#
#   tier check|more      true in that tier (for step files)
#
#   bgstep NAME COMMAND [ARG...]
#       As step, but in the background: the steps after it run at the same
#       time. For a step that leaves a CPU idle (one process at a time, or
#       sleeps), next to one that does too. Its line is printed when it has
#       ended, with its own number. Each step's CPU seconds are its own.
#
#   bgwait               wait for the background steps (before a step that
#                        needs them done; the end of the check waits too)
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

TIER=${HAKMEM_CHECK_TIER:-check}
case $TIER in
check|more) ;;
*) echo "check.sh: HAKMEM_CHECK_TIER is check or more, not '$TIER'" >&2; exit 2 ;;
esac
export TIER

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

tier() {
	[ "$TIER" = "$1" ]
}

# CPU seconds (user + system) used so far by finished children: a step's
# share tells what it costs on a busier or smaller machine, where its wall
# time does not.
children_cpu() {
	# fields 16 and 17 of /proc/PID/stat: the waited-for children's user
	# and system time in clock ticks ($$ is this shell, even in $(...))
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($16 + $17) / hz }' "/proc/$$/stat"
}

# run_step LOG COMMAND...: COMMAND from the source tree, output to LOG;
# leaves "STATUS CPU END" in LOG.res (CPU: seconds of user and system time
# of the step and everything it waited for, END: when it ended). In a
# subshell of its own, so a step's CPU is its own even while a background
# step runs next to it.
run_step() {
	local log=$1; shift
	(
		me=$BASHPID
		(cd "$SRCTREE" && "$@") >"$log" 2>&1 </dev/null
		rc=$?
		# fields 14-17 of /proc/PID/stat: user and system time of this
		# subshell and of its waited-for children, in clock ticks
		echo "$rc $(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15 + $16 + $17) / hz }' \
			"/proc/$me/stat") $(date +%s)" >"$log.res.tmp"
		mv "$log.res.tmp" "$log.res"
	)
}

# finish_step NAME LOG START: counts the step's result, prints the rest of
# its line (and on failure the log's last lines); returns its status.
finish_step() {
	local name=$1 log=$2 start=$3 rc cpu end p f line
	read -r rc cpu end <"$log.res" || { rc=1 cpu=0 end=$(date +%s); }
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*passed, }; f=${f%% failed}
	elif [ "$rc" -eq 0 ]; then
		p=1 f=0
	else
		p=0 f=1
	fi
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
	if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
		printf 'ok   %4ds  cpu %4ds  %s passed\n' $((end - start)) "$cpu" "$p"
	else
		printf 'FAIL %4ds  cpu %4ds  %s passed, %s failed (log: %s)\n' \
			$((end - start)) "$cpu" "$p" "$f" "${log#"$SRCTREE"/}"
		failed_steps+=("$name")
		# What failed, for the summary at the end: CI shows only the tail.
		failed_why+=("$(grep -E '^(\| )*(not ok|# not ok)|FAILED' "$log" | head -n 6 | sed 's/^/      /')")
		echo "------ last lines of $name ------"
		tail -n 40 "$log" | sed 's/^/| /'
		echo "------"
	fi
	return "$rc"
}

# Background steps (bgstep): number, name, log, start and pid of each one
# not yet reported.
bg_n=()
bg_name=()
bg_log=()
bg_start=()
bg_pid=()

# bg_reap [wait]: prints the line of every background step that has ended
# (with "wait": waits for all of them first).
bg_reap() {
	local i keep=()
	for i in "${!bg_pid[@]}"; do
		if [ "${1:-}" = wait ] || [ -e "${bg_log[$i]}.res" ]; then
			wait "${bg_pid[$i]}" 2>/dev/null
			printf '[%3d] %-40s ' "${bg_n[$i]}" "${bg_name[$i]}"
			finish_step "${bg_name[$i]}" "${bg_log[$i]}" "${bg_start[$i]}"
			unset "bg_n[$i]" "bg_name[$i]" "bg_log[$i]" "bg_start[$i]" "bg_pid[$i]"
		fi
	done
	return 0
}

# bgwait: every background step has ended and is reported.
bgwait() {
	[ -n "$list_only" ] || bg_reap wait
}

# step_counts NAME: false when the step does not run (not wanted, or only
# listed: then its name is printed); else it gets the next number.
step_counts() {
	wanted "$1" || return 1
	nsteps=$((nsteps + 1))
	if [ -n "$list_only" ]; then
		echo "$1"
		return 1
	fi
	return 0
}

step_log() {
	echo "$LOGDIR/${1//[^A-Za-z0-9_.-]/_}.log"
}

step() {
	local name=$1; shift
	step_counts "$name" || return 0
	local log start
	log=$(step_log "$name")
	bg_reap
	printf '[%3d] %-40s ' "$nsteps" "$name"
	start=$(date +%s)
	rm -f "$log.res"
	run_step "$log" "$@"
	finish_step "$name" "$log" "$start"
}

# bgstep NAME COMMAND...: a step that runs in the background, next to the
# steps after it, for steps that leave a CPU idle (one process, or sleeps).
# Its line is printed when it has ended (at the start of a later step, or
# at bgwait), with the number it was given here.
bgstep() {
	local name=$1; shift
	step_counts "$name" || return 0
	local log
	log=$(step_log "$name")
	rm -f "$log.res"
	bg_n+=("$nsteps")
	bg_name+=("$name")
	bg_log+=("$log")
	bg_start+=("$(date +%s)")
	run_step "$log" "$@" &
	bg_pid+=("$!")
}

# variant_args ARG...: a variant's arguments split into v_set (the value
# of SET=) and v_vars (the make variables).
variant_args() {
	local a
	v_set= v_vars=()
	for a in "$@"; do
		case $a in
		SET=*) v_set=${a#SET=} ;;
		*) v_vars+=("$a") ;;
		esac
	done
}

variant() {
	local label=$1 target=$2; shift 2
	local dir=$BUILD/check-$label set
	variant_args "$@"
	set=$v_set
	local o=("O=$dir" "${v_vars[@]}")
	if [ -z "$list_only" ] && wanted "$label:config"; then
		rm -rf "$dir"
	fi
	step "$label:config" hakmake "${o[@]}" "$target" ${set:+setconfig "SET=$set"} || return 1
	step "$label:build" hakmake "${o[@]}" C=1 all || return 1
	# The header checks (one compiler or sparse at a time, writing
	# nothing) in the background, next to the selftests' build
	bgstep "$label:headers" hakmake "${o[@]}" C=1 headers_check
	step "$label:selftests" hakmake "${o[@]}" selftests
}

# more_selftests LABEL TARGET [SET=...] [MAKEVAR=value...] (header above)
more_selftests() {
	local label=$1 target=$2; shift 2
	variant_args "$@"
	step "$label:selftests-more" more_tree_selftests "$BUILD/check-$label" "$target" "$v_set" \
		"O=$BUILD/check-$label" "${v_vars[@]}"
}

# more_tree_selftests DIR TARGET SET MAKEARGS...: the selftests in DIR,
# which is configured and built first if the first tier did not leave it.
more_tree_selftests() {
	local dir=$1 target=$2 set=$3; shift 3
	if [ ! -f "$dir/libhakmem.so" ]; then
		rm -rf "$dir"
		hakmake "$@" "$target" ${set:+setconfig "SET=$set"} >/dev/null &&
		hakmake "$@" all || return 1
	fi
	hakmake "$@" selftests
}

[ -z "$list_only" ] && echo "hakmem check ($TIER): $SRCTREE, $JOBS jobs, logs in ${LOGDIR#"$SRCTREE"/}"
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
bgwait

echo
echo "check: $nsteps steps in $(( $(date +%s) - started ))s, $(children_cpu)s of CPU"
for i in "${!failed_steps[@]}"; do
	echo "  failed: ${failed_steps[$i]}"
	[ -n "${failed_why[$i]}" ] && echo "${failed_why[$i]}"
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
