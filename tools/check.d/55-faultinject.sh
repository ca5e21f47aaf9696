# SPDX-License-Identifier: MIT
# Fault injection (CONFIG_HAK_FAULT_INJECT=y, the hook in lib/os.c):
#  - defconfig with the hook, a full variant: sparse, headers, every
#    selftest folder but preload (long ones in quick mode), selftests/
#    faultinject among them; defconfig's boxes (BigCache, L2.5 pool) add OS
#    call sites of their own. preload/ is left to the shipped variants: its
#    real programs never arm a fault, so here they only repeated defconfig's
#    run (about 80 s of make check);
#  - the bare core with the hook, selftests/faultinject only, so the core's
#    own call sites are swept without the boxes in front of them. One
#    program, one process at a time (about 45 s of one CPU): it runs in the
#    background, next to the fuzz step (56-fuzz.sh, one libFuzzer process),
#    which follows it.
# The variant is the second tier's (about 150 s of a quiet machine's wall
# time); the bare core's sweep, below, is the first tier's.
if tier more; then
	variant faultinject defconfig SET="HAK_FAULT_INJECT=y" HAKMEM_SELFTEST_QUICK=1 \
		"${no_preload:?20-configs.sh sets it}"
	return 0
fi

faultinject_core() {
	local d=$BUILD/check-faultinject-core
	rm -rf "$d"
	hakmake -s O="$d" defconfig &&
	hakmake -s O="$d" setconfig \
		SET="HAK_FAULT_INJECT=y HAK_BIGCACHE=n HAK_L25_POOL=n HAK_ADAPTIVE_SIZING=n" &&
	hakmake O="$d" C=1 all &&
	# fi_sites is one CPU-bound program of ~150 s on a quiet machine, run
	# beside fuzz and the sanitizer steps: under load it once passed the
	# runner's 300 s default. A hang still ends within CI's time.
	HAKMEM_TEST_TIMEOUT=900 hakmake O="$d" T=faultinject selftests
}
bgstep faultinject-core faultinject_core
