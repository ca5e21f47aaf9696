# SPDX-License-Identifier: MIT
# Fault injection on the bare core (CONFIG_HAK_FAULT_INJECT=y with the boxes
# that add OS call sites of their own off, the hook in lib/os.c):
# selftests/faultinject only, so the core's own call sites are swept without
# the boxes in front of them (the defconfig variant with the hook is the
# second tier's, 55-faultinject.sh). fi_sites is one program, one process
# at a time (about 120 s of one CPU): it runs in the background from here,
# next to the box matrix (40-boxmatrix.sh), whose lanes leave a third of
# the two CPUs idle (make -j1 builds, tests that sleep through purge
# delays). Until 2026-12-06 it ran next to fuzz and ubsan (ck35).
# (first tier only: tools/check.sh)
tier check || return 0
faultinject_core() {
	local d=$BUILD/check-faultinject-core
	rm -rf "$d"
	hakmake -s O="$d" defconfig &&
	hakmake -s O="$d" setconfig \
		SET="HAK_FAULT_INJECT=y HAK_BIGCACHE=n HAK_L25_POOL=n HAK_ADAPTIVE_SIZING=n" &&
	hakmake O="$d" C=1 all &&
	# fi_sites is one CPU-bound program of ~150 s on a quiet machine, run
	# beside the box matrix: under load it once passed the runner's 300 s
	# default. A hang still ends within CI's time.
	HAKMEM_TEST_TIMEOUT=900 hakmake O="$d" T=faultinject selftests
}
bgstep faultinject-core faultinject_core
