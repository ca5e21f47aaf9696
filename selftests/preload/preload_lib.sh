# SPDX-License-Identifier: MIT
#
# Shared helpers for the selftests/preload scripts (sourced, not a test).
#
# Each script runs a real program twice, once plainly and once with
# LD_PRELOAD=$HAKMEM_LIB, and compares what they produce byte for byte.
# Output is TAP 13; exit 0 (pass), 1 (fail) or 4 (whole script skipped).
# Environment (set by the selftest runner): HAKMEM_LIB (absolute path of
# libhakmem.so), O (build dir), SRCTREE (source dir).

tap_n=0
tap_failed=0
tap_planned=0

tap_plan() {
	tap_planned=$1
	echo "TAP version 13"
	echo "1..$1"
}

# tap_ok STATUS DESCRIPTION: STATUS 0 is a pass (shell convention)
tap_ok() {
	tap_n=$((tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $tap_n $2"
	else
		echo "not ok $tap_n $2"
		tap_failed=$((tap_failed + 1))
	fi
}

tap_skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP $1"
}

# Skip every planned point not run yet (a tool the test needs is missing)
# and finish.
tap_skip_rest() {
	while [ "$tap_n" -lt "$tap_planned" ]; do
		tap_skip "$1"
	done
	tap_finish
}

tap_diag() {
	echo "# $*"
}

tap_skip_all() {
	echo "TAP version 13"
	echo "1..0 # SKIP $1"
	exit 4
}

tap_finish() {
	[ -n "$workdir" ] && rm -rf "$workdir"
	if [ "$tap_failed" -eq 0 ] && [ "$tap_n" -eq "$tap_planned" ]; then
		exit 0
	fi
	exit 1
}

# Show the first lines where two files differ, as TAP diagnostics.
tap_diff() {
	diff "$1" "$2" 2>/dev/null | head -n 10 | sed 's/^/# /'
}

preload_setup() {
	if [ -z "$HAKMEM_LIB" ] || [ ! -f "$HAKMEM_LIB" ]; then
		tap_skip_all "HAKMEM_LIB is not set to a built libhakmem.so"
	fi
	case "$HAKMEM_LIB" in
	/*) ;;
	*) HAKMEM_LIB=$(cd "$(dirname "$HAKMEM_LIB")" && pwd)/$(basename "$HAKMEM_LIB") ;;
	esac
	workdir=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-preload.XXXXXX") || exit 1
	trap 'rm -rf "$workdir"' EXIT
	trap 'rm -rf "$workdir"; exit 1' INT TERM
	# the stats switch must not leak into the compared runs
	unset HAKMEM_STATS
	LC_ALL=C
	export LC_ALL
}

# preload_cc: $cc is the C compiler; without one every planned point left
# is skipped and the script finishes.
preload_cc() {
	cc=$(command -v cc 2>/dev/null || command -v gcc 2>/dev/null)
	[ -n "$cc" ] || tap_skip_rest "no C compiler"
}

# preload_cxx: $cxx is g++; without it every planned point left is skipped.
preload_cxx() {
	cxx=$(command -v g++ 2>/dev/null)
	[ -n "$cxx" ] || tap_skip_rest "g++ is not installed"
}

# built_or_skip STATUS DESC PROG NAME: one point for a test program's build
# (STATUS is the compiler's); when PROG was not made, the compiler's first
# lines go to the log and every point left is skipped.
built_or_skip() {
	tap_ok "$1" "$2"
	if [ ! -x "$3" ]; then
		sed 's/^/# /' "$workdir/build.err" | head -n 10
		tap_skip_rest "$4 did not build"
	fi
}

# with_hakmem CMD...: run CMD with hakmem preloaded (only for that process tree)
with_hakmem() {
	env LD_PRELOAD="$HAKMEM_LIB" "$@"
}

# stats_check NAME CMD...: with HAKMEM_STATS=1, stderr mentions hakmem, which
# proves the preloaded process really ran on hakmem.
stats_check() {
	name=$1
	shift
	env HAKMEM_STATS=1 LD_PRELOAD="$HAKMEM_LIB" "$@" >/dev/null 2>"$workdir/stats.err"
	if grep -qi hakmem "$workdir/stats.err"; then
		tap_ok 0 "$name under LD_PRELOAD uses hakmem (HAKMEM_STATS=1 prints hakmem statistics)"
	else
		tap_ok 1 "$name under LD_PRELOAD uses hakmem (HAKMEM_STATS=1 prints hakmem statistics)"
		tap_diag "stderr was:"
		head -n 5 "$workdir/stats.err" | sed 's/^/# /'
	fi
}

# same_files DESCRIPTION A B: pass when A and B are byte-identical
same_files() {
	if cmp -s "$2" "$3"; then
		tap_ok 0 "$1"
	else
		tap_ok 1 "$1"
		tap_diff "$2" "$3"
	fi
}

# same_status DESCRIPTION RC_PLAIN RC_HAKMEM
same_status() {
	if [ "$2" -eq "$3" ] && [ "$2" -eq 0 ]; then
		tap_ok 0 "$1 (exit status $2 both)"
	else
		tap_ok 1 "$1 (exit status $2 without, $3 with hakmem)"
	fi
}

# same_run STATUS_DESC OUTPUT_DESC CMD...: run CMD without and with hakmem
# (stdout and stderr into $workdir/plain.out and hak.out); both must exit 0
# and print the same.
same_run() {
	status_desc=$1
	output_desc=$2
	shift 2
	"$@" >"$workdir/plain.out" 2>&1
	rc1=$?
	with_hakmem "$@" >"$workdir/hak.out" 2>&1
	rc2=$?
	same_status "$status_desc" "$rc1" "$rc2"
	same_files "$output_desc" "$workdir/plain.out" "$workdir/hak.out"
}

# bound_to SYMBOL LIB: the LD_DEBUG=bindings log in $workdir/bind.err shows
# SYMBOL bound to the library named LIB (a basename).
bound_to() {
	grep -q "to .*$2 .*symbol \`$1'" "$workdir/bind.err"
}

# binding_check NAME CMD...: the dynamic linker binds the program's malloc
# and free to libhakmem.so. For programs that close stderr before exiting
# (GNU coreutils' close_stdout), where HAKMEM_STATS output cannot appear.
binding_check() {
	name=$1
	shift
	env LD_DEBUG=bindings LD_PRELOAD="$HAKMEM_LIB" "$@" >/dev/null 2>"$workdir/bind.err"
	lib=$(basename "$HAKMEM_LIB")
	if bound_to malloc "$lib" && bound_to free "$lib"; then
		tap_ok 0 "$name under LD_PRELOAD binds malloc and free to $lib"
	else
		tap_ok 1 "$name under LD_PRELOAD binds malloc and free to $lib"
		grep "symbol \`malloc'" "$workdir/bind.err" | head -n 3 | sed 's/^/# /'
	fi
}

# foreign_aborts WHOSE PROG OP SIZE WHAT: "PROG OP SIZE" hands another
# allocator's SIZE-byte block to hakmem's OP; the preloaded run must die by
# SIGABRT (status 134) with exactly one hakmem line matching WHAT, and never
# print "reached" (the foreign pointer accepted). WHOSE names the other
# allocator in the point's description.
foreign_aborts() {
	desc="$1's $4-byte block to $3: fail-fast abort ($5)"
	with_hakmem "$2" "$3" "$4" >"$workdir/out" 2>"$workdir/err"
	rc=$?
	lines=$(grep -c '^hakmem: ' "$workdir/err")
	if [ "$rc" -eq 134 ] && [ "$lines" -eq 1 ] && grep -q "$5" "$workdir/err" &&
	   ! grep -q reached "$workdir/out"; then
		tap_ok 0 "$desc"
	else
		tap_ok 1 "$desc"
		tap_diag "exit $rc, $lines hakmem lines; stdout/stderr:"
		head -n 3 "$workdir/out" "$workdir/err" | sed 's/^/# /'
	fi
}

# clean_twin DESCRIPTION CMD...: the preloaded CMD, each allocator getting
# its own blocks back, must exit 0, print "clean" and no hakmem line.
clean_twin() {
	desc=$1
	shift
	with_hakmem "$@" >"$workdir/out" 2>"$workdir/err"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^clean$' "$workdir/out" && ! grep -q hakmem "$workdir/err"; then
		tap_ok 0 "$desc"
	else
		tap_ok 1 "$desc"
		tap_diag "exit $rc"
		head -n 3 "$workdir/err" | sed 's/^/# /'
	fi
}
