#!/bin/bash
# SPDX-License-Identifier: MIT
#
# cross-check.sh: build hakmem for another 64-bit Linux architecture with a
# cross compiler (ARCH=generic, -Werror) and run its quick selftests under
# qemu-user. `make cross-check CROSS_COMPILE=aarch64-linux-gnu-` runs it.
#
#   tools/cross-check.sh [-b] [CROSS_COMPILE [CONFIG...]]
#
#   CROSS_COMPILE  tool prefix (default aarch64-linux-gnu-); qemu-<cpu> and
#                  /usr/<prefix without the dash> (Debian's cross libc) run
#                  the programs
#   CONFIG         configs/ names (default: defconfig perf_defconfig
#                  hardened_defconfig)
#   -b             build only (no qemu needed)
#
# Build trees: $BUILD/cross-<cpu>-<config> (BUILD defaults to build/ in the
# source tree). Exit status 0 when every build and every test run passed.
#
# Packages (Debian; not installed by tools/deps.sh, so this is not part of
# make check): gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
# libc6-dev-arm64-cross qemu-user; for ppc64el or riscv64 the same with
# powerpc64le-linux-gnu / ppc64el, riscv64-linux-gnu / riscv64.
#
# What qemu-user cannot show: a kernel's address-space width (it maps the
# guest where the host's kernel maps, below 2^47) and a weaker memory
# order (an x86_64 host runs the guest with its own TSO ordering). A green
# run here clears neither; Documentation/design.md, "Other architectures".

set -u

# Always the generic port, whatever ARCH the caller's environment holds:
# `make cross-check` exports the host's (x86_64, from gcc -dumpmachine),
# and the inner builds took it over the cross compiler's target, so
# arch/x86_64's asm met the aarch64 compiler ("impossible constraint").
export ARCH=generic

SRCTREE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRCTREE/build}
build_only=0
if [ "${1:-}" = -b ]; then
	build_only=1
	shift
fi
CROSS_COMPILE=${1:-aarch64-linux-gnu-}
[ $# -gt 0 ] && shift
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(defconfig perf_defconfig hardened_defconfig)

triplet=${CROSS_COMPILE%-}
cpu=${triplet%%-*}
case $cpu in
powerpc64le)	qemu="qemu-ppc64le" ;;
powerpc64)	qemu="qemu-ppc64" ;;
*)		qemu="qemu-$cpu" ;;
esac
sysroot=/usr/$triplet

if ! command -v "${CROSS_COMPILE}gcc" >/dev/null; then
	echo "cross-check: no ${CROSS_COMPILE}gcc (Debian: apt-get install gcc-$triplet libc6-dev-<arch>-cross)" >&2
	exit 1
fi
if [ "$build_only" = 0 ] && ! command -v "$qemu" >/dev/null; then
	echo "cross-check: no $qemu (Debian: apt-get install qemu-user)" >&2
	exit 1
fi

# Every selftests folder but preload/ (host programs under LD_PRELOAD);
# scripts are skipped under the wrapper by the runner itself.
folders=$(cd "$SRCTREE/selftests" && for d in */Makefile; do
	d=${d%/Makefile}; [ "$d" != preload ] && echo "$d"; done | tr '\n' ' ')

# Tests qemu-user cannot run as the kernel would; each failed the same
# way with an x86_64 ARCH=generic build under qemu-x86_64, or needs exec:
#  - they re-execute themselves (execv of /proc/self/exe, or of another
#    target binary): without binfmt_misc the host kernel cannot run an
#    aarch64 program ("Exec format error");
#  - they set RLIMIT_AS or RLIMIT_DATA, which qemu-user ignores (it would
#    limit qemu itself), so nothing ever fails;
#  - they expect one line on stderr from an abort, and qemu adds its own
#    ("qemu: uncaught target signal 6");
#  - they read /proc/<tid>/syscall, where the host's syscall numbers show;
#  - they measure RSS or mremap, which qemu's own memory and its mremap
#    emulation change;
#  - qemu-user 7.2 asserts in its own code (plugins/core.c, cpu-exec.c)
#    when threads and fork mix, or hangs (a fork from a signal handler
#    with a second thread: fork_signal_mt, also with qemu-x86_64).
skip_exec="core/errno_first core/exit_fork core/fork_signal_race core/fork_two_urgent
	core/fork_waiters_full core/remote_lift core/report_copy core/rlimit_map
	core/share_alloc core/shard core/purge adaptive_sizing/adapt_class_max
	adaptive_sizing/adapt_class_max_env background_purge/bgp_basic heapprof/hp_cancel
	sanitize/san_shard"
skip_rlimit="core/errno_retry core/errno_table core/faults core/rlimit_late core/rlimit_run
	core/rlimit_signal core/too_large"
skip_abort_line="core/bad_free core/bad_input l25_pool/l25_tcache"
skip_proc="core/fork_scan_wait core/fork_turn_child"
skip_rss="core/purge_churn core/stats_truth core/threads_churn bigcache/bc_basic bigcache/bc_grow"
skip_qemu_bug="core/threads_fork l25_pool/l25_fork core/fork_signal_mt"
# Hardened configs only: these failed with the same counts for an x86_64
# hardened build under qemu-x86_64, and pass natively. Overflows do not
# fault at the guard pages (qemu 7.2 seems to answer madvise advice it
# does not know, MADV_GUARD_INSTALL, with success) and aborts carry
# qemu's extra line.
skip_guards="hardened/hd_guard hardened/hd_links hardened/hd_l25_lazy hardened/hd_bc_join
	hardened/hd_spill_links bigcache/bc_whole core/grow_area"

# one line, single spaces (the lists are split on purpose)
# shellcheck disable=SC2086
skip=$(printf '%s\n' $skip_exec $skip_rlimit $skip_abort_line $skip_proc $skip_rss \
	$skip_qemu_bug | tr '\n' ' ')

fail=0
for cfg in "${configs[@]}"; do
	o=$BUILD/cross-$cpu-${cfg%_defconfig}
	echo "== $cpu $cfg: build ($o)"
	if ! make -s -C "$SRCTREE" O="$o" CROSS_COMPILE="$CROSS_COMPILE" "$cfg" >/dev/null ||
	   ! make -s -j2 -C "$SRCTREE" O="$o" CROSS_COMPILE="$CROSS_COMPILE" all selftests-build \
		T="$folders"; then
		echo "not ok: $cpu $cfg does not build"
		fail=1
		continue
	fi
	[ "$build_only" = 1 ] && continue
	echo "== $cpu $cfg: quick selftests under $qemu"
	if ! HAKMEM_SELFTEST_QUICK=1 HAKMEM_TEST_TIMEOUT=${HAKMEM_TEST_TIMEOUT:-300} \
	     HAKMEM_TEST_WRAPPER="$qemu -L $sysroot" \
	     HAKMEM_TEST_SKIP="$skip$(case $cfg in *hardened*) echo " $skip_guards" | tr '\n\t' '  ' ;; esac)" \
	     HAKMEM_TEST_SKIP_WHY="qemu-user cannot run it: tools/cross-check.sh" \
	     make -s -C "$SRCTREE" O="$o" CROSS_COMPILE="$CROSS_COMPILE" selftests T="$folders" \
	     >"$o/cross-check.log" 2>&1; then
		fail=1
	fi
	grep -E '^not ok|^[0-9]+ passed, [0-9]+ failed|program\(s\) skipped' "$o/cross-check.log"
done
exit $fail
