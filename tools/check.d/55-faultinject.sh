# SPDX-License-Identifier: MIT
# Fault injection (CONFIG_HAK_FAULT_INJECT=y, the hook in lib/os.c):
#  - defconfig with the hook, a full variant: sparse, headers, every
#    selftest folder but preload (long ones in quick mode), selftests/
#    faultinject among them; defconfig's boxes (BigCache, L2.5 pool) add OS
#    call sites of their own. preload/ is left to the shipped variants: its
#    real programs never arm a fault, so here they only repeated defconfig's
#    run (about 80 s of make check);
#  - the bare core with the hook, selftests/faultinject only, so the core's
#    own call sites are swept without the boxes in front of them: the first
#    tier's, in 38-faultinject-core.sh (next to the box matrix).
# The variant is the second tier's (about 150 s of a quiet machine's wall
# time).
tier more || return 0
variant faultinject defconfig SET="HAK_FAULT_INJECT=y" HAKMEM_SELFTEST_QUICK=1 \
	"${no_preload:?20-configs.sh sets it}"

