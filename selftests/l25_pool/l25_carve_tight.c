// SPDX-License-Identifier: MIT
/*
 * l25_carve_tight: under an RLIMIT_DATA (or RLIMIT_AS) below 64 GiB the
 * pool maps its regions 2 at a time at most, not 1, 2, 4 .. 16 (l25_carve):
 * the part mapped ahead is a private writable mapping, which such a limit
 * (and vm.overcommit_memory=2) counts whole.
 *
 * rv35: 400 blocks of 100,000 B under ulimit -v 1000000 held 62 MiB of
 * VmData for 39 MiB of blocks, up to 15 regions (30 MiB) of the last
 * mapping not yet handed out, while the superslab stock and the grow
 * areas kept to the limit since rs34 (lib/os.c __hak_os_space_tight).
 *
 * The limit is set here, at run time (32 GiB: far above this program's
 * needs, under 64 GiB), then blocks of the pool's largest class are
 * taken until 24 regions exist: what is mapped ahead stays at 1 region
 * (2 MiB) at most after every malloc.
 */
#include <sys/resource.h>
#include "l25_test.h"

#define NREG	24
#define MAXBLK	(NREG * 64)

static void *blk[MAXBLK];

int main(void)
{
	size_t top = lt_top_class(), n = 0, ahead = 0, i;
	struct hak_l25_stats st;
	struct rlimit old, rl;
	uintptr_t base[NREG];
	unsigned nb = 0;

	tap_plan(1);
	if (getrlimit(RLIMIT_DATA, &old) || old.rlim_cur < (64ULL << 30) ||
	    old.rlim_max < (32ULL << 30))
		tap_skip_all("RLIMIT_DATA is under 64 GiB already");
	rl = old;
	rl.rlim_cur = 32ULL << 30;
	if (setrlimit(RLIMIT_DATA, &rl))
		tap_skip_all("setrlimit(RLIMIT_DATA) refused");
	while (nb < NREG && n < MAXBLK) {
		char *p = blk[n] = malloc(lt_opaque(top));
		uintptr_t b;

		if (!p || __hak_ssmap_kind((uintptr_t)p) != HAK_SSMAP_L25)
			tap_bail("a block of %zu bytes is not a pool block", top);
		n++;
		p[0] = p[top - 1] = 1;
		hak_l25_stats(&st);
		if (st.reserved_bytes > ahead)
			ahead = st.reserved_bytes;
		b = (uintptr_t)p & ~((uintptr_t)HAK_SS_SIZE - 1);
		for (i = 0; i < nb && base[i] != b; i++)
			;
		if (i == nb)
			base[nb++] = b;
	}
	setrlimit(RLIMIT_DATA, &old);
	tap_ok(nb == NREG && ahead <= HAK_SS_SIZE,
	       "RLIMIT_DATA 32 GiB: %u regions, at most %zu KiB mapped ahead (2048 at most), "
	       "%zu mmap calls", nb, ahead >> 10, st.map_calls);
	for (i = 0; i < n; i++)
		free(blk[i]);
	tap_finish();
}
