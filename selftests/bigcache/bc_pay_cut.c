// SPDX-License-Identifier: MIT
/*
 * The growth rule pays exactly the excess, and young blocks pay too
 * (pay_growth and pay_cut in bigcache.c; issue 11, r33): R's examples
 * freed 35-45 MB of vectors and grew their heap by 7-10 MB within the
 * next two passes, while the blocks were young (freed within a quarter
 * delay) or kept as taken back; they waited, and the heap's growth sat on
 * the program's peak. With merging on (the default):
 *
 *   1. a young 32 MiB block and 8 MiB of the program's own pages past the
 *      mark: the next pass pays, with the block's tail only: 8 MiB or a
 *      little more purged, the head (same address) still resident;
 *   2. a take of 32 MiB gets the block back at its address (head and
 *      purged tail joined);
 *   3. freed and idle, 8 MiB more: again only about 8 MiB purged.
 *
 * On main (927913d: whole blocks, young ones wait) case 1 pays nothing
 * and case 3 purges all that is left of the block.
 * runner: long (one sleep past the idle age, about 3 s)
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"
#include "os.h"
#include "purge.h"
#include "boxes/hardened/hardened.h"

#define MIB		(1UL << 20)

int main(void)
{
	size_t b = 32 * MIB, g = 8 * MIB, cut;
	struct hak_bigcache_stats st0, st1;
	void *vb, *vg1, *vg2, *p;

	tap_plan(4);
	if (!__hak_rss())
		tap_skip_all("no /proc/self/statm");
	if (bc_large_min() > g)
		tap_skip_all("8 MiB is not a large block in this build");
	if (hak_hd_guard_len())
		tap_skip_all("guard pages: a pass pays whole blocks");
	bc_set_max(256 * MIB);
	__hak_bigcache_force_pressure(0);
	__hak_bigcache_set_decay(BC_PAY_DELAY_MS);

	vb = bc_launder(malloc(b));
	if (!vb)
		tap_bail("malloc");
	memset(vb, 1, b);
	bc_pass();			/* the mark: with the block live */
	bc_pass();
	free(vb);			/* cached, resident, young */

	/* 1. Young, and 8 MiB of growth past the mark: the tail pays. */
	vg1 = bc_own(g);
	st0 = bc_stats();
	bc_pass();
	st1 = bc_stats();
	cut = st0.resident_bytes - st1.resident_bytes;
	tap_ok(st1.paid == st0.paid + 1 && cut >= g / 2 && cut <= g + g / 2 &&
	       bc_resident(vb, BC_PAGE) == 1 && bc_resident((char *)vb + b - BC_PAGE, BC_PAGE) == 0,
	       "a young block pays for 8 MiB past the mark with its tail: %zu paid, %zu KiB purged, "
	       "%zu MiB still resident (first page %zu, last page %zu)", st1.paid - st0.paid,
	       cut >> 10, bc_mib(st1.resident_bytes), bc_resident(vb, BC_PAGE),
	       bc_resident((char *)vb + b - BC_PAGE, BC_PAGE));

	/* 2. The whole length again: the same block, head and tail joined. */
	p = bc_launder(malloc(b));
	if (!p)
		tap_bail("malloc");
	tap_ok(p == vb, "a take of 32 MiB gets it back at its address (%p, was %p)", p, vb);
	memset(p, 2, b);
	free(p);

	/* 3. Idle now; 8 MiB more: again about 8 MiB, not the whole block. */
	bc_pass();			/* the take's refault raises the mark */
	tst_sleep_ms(BC_PAY_IDLE_MS);
	bc_pass();
	vg2 = bc_own(g);
	st0 = bc_stats();
	bc_pass();
	st1 = bc_stats();
	cut = st0.resident_bytes - st1.resident_bytes;
	tap_ok(st1.paid == st0.paid + 1 && cut >= g / 2 && cut <= g + g / 2,
	       "idle, 8 MiB more past the mark: %zu paid, %zu KiB purged (not %zu MiB)",
	       st1.paid - st0.paid, cut >> 10, bc_mib(b));
	tap_ok(st1.resident_bytes >= MIB && st1.cached_bytes >= b,
	       "the rest stays cached and resident: %zu MiB resident, %zu MiB cached",
	       bc_mib(st1.resident_bytes), bc_mib(st1.cached_bytes));

	munmap(vg2, g);
	munmap(vg1, g);
	tap_finish();
}
