#!/bin/bash
# SPDX-License-Identifier: MIT
#
# sanitize.sh: hakmem built with a sanitizer, its selftests run under it.
#
#   tools/sanitize.sh [ubsan|tsan|asan ...]     (default: all three)
#
# Environment: HAKMEM_SAN_SCALE=N makes the selftests/sanitize programs N
# times longer (default 1); CC= picks the compiler (default gcc).
#
#   ubsan  defconfig as is (malloc IS hakmem), -fsanitize=undefined with
#          no recovery: the library and the arch, core and sanitize
#          selftests (quick mode), every hakmem line checked.
#   tsan   CONFIG_HAK_INTERPOSE=n, -fsanitize=thread: the sanitize
#          programs, which call hak_* directly while the sanitizer keeps
#          its own malloc. x86_64 atomics fall back to the __atomic
#          builtins under TSan (arch/x86_64/include/asm/atomic.h), so
#          TSan sees the remote-free stacks and the registry.
#   asan   CONFIG_HAK_INTERPOSE=n, -fsanitize=address (with leak checks).
#
# Any report fails the run (halt_on_error, a non-zero exit code, and the
# log is searched for report headers too). Builds go to
# build/sanitize-<name>. Ends with "N passed, N failed".
# Documentation/reliability.md.

set -u
SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRCTREE/build
JOBS=$(nproc 2>/dev/null || echo 2)
CC=${CC:-gcc}
unset MAKEFLAGS MFLAGS MAKELEVEL O ARCH V C T KBUILD_OUTPUT

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=66"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1"
export ASAN_OPTIONS="halt_on_error=1:exitcode=66:detect_leaks=1:abort_on_error=0"
export HAKMEM_SELFTEST_QUICK=1

passed=0
failed=0

one() {
	local name=$1 san set tests dir log line p f
	case $name in
	ubsan)	san="-fsanitize=undefined -fno-sanitize-recover=all"
		set='' tests="arch core sanitize" ;;
	tsan)	san="-fsanitize=thread"
		set="HAK_INTERPOSE=n" tests="sanitize" ;;
	asan)	san="-fsanitize=address"
		set="HAK_INTERPOSE=n" tests="sanitize" ;;
	*)	echo "sanitize.sh: unknown sanitizer '$name' (ubsan, tsan, asan)" >&2
		failed=$((failed + 1)); return ;;
	esac
	dir=$BUILD/sanitize-$name
	# clang links a sanitizer runtime into executables only: the shared
	# library (built but not used by the tests) needs the shared runtime.
	local ldextra=
	case $CC in *clang*) ldextra=-shared-libsan ;; esac
	log=$dir.log
	echo "== $name: $CC $san${set:+, $set}, selftests: $tests"
	rm -rf "$dir"
	local mk=(make -C "$SRCTREE" --no-print-directory -j"$JOBS" O="$dir" CC="$CC")
	if ! { "${mk[@]}" -s defconfig && { [ -z "$set" ] || "${mk[@]}" -s setconfig SET="$set"; } &&
	       "${mk[@]}" KCFLAGS="$san -fno-omit-frame-pointer -g" KLDFLAGS="$san $ldextra" \
			all selftests-build T="$tests"; } >"$log" 2>&1; then
		tail -n 30 "$log"
		echo "== $name: build failed"
		failed=$((failed + 1))
		return
	fi
	"${mk[@]}" KCFLAGS="$san -fno-omit-frame-pointer -g" KLDFLAGS="$san $ldextra" \
		selftests T="$tests" >"$log" 2>&1
	grep -E '^(not )?ok [0-9]+ selftests' "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed}
	[ -n "$line" ] || { p=0; f=1; }
	if grep -qE 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$log"; then
		echo "== $name: sanitizer report(s):"
		grep -E -A 30 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$log" | head -n 80
		f=$((f + 1))
	fi
	echo "== $name: $p passed, $f failed (log: ${log#"$SRCTREE"/})"
	passed=$((passed + p))
	failed=$((failed + f))
}

[ $# -eq 0 ] && set -- ubsan tsan asan
for s in "$@"; do
	one "$s"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
