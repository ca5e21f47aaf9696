// SPDX-License-Identifier: MIT
/*
 * BigCache's growth rule (pay_growth): the process's resident set has a
 * high-water mark, read at each decay pass. Growth the large path makes
 * itself (a miss's fresh block) raises the mark; growth anywhere else
 * (here: the program's own mappings) past the mark, by more than 1/32 of
 * it, is paid for at the next pass by purging cached blocks idle for a
 * quarter delay, oldest first, until the resident set is back at the mark.
 *
 *   1. a purged cached block taken and filled (its 16 MiB fault in
 *      afresh): the idle 12 MiB block stays (shorter than the take: a
 *      resident block that holds it would go out instead of the purged
 *      one, bc_prefer_resident);
 *   2. 48 MiB of the program's own pages: the idle block is purged (still
 *      cached, not resident, one paid), the resident set falls by it;
 *   3. growth while the only cached block is young: nothing paid, and the
 *      mark does not rise by what the block covers (r32: it rose to the
 *      resident set, so a burst freed just before the heap grew stayed
 *      resident for good);
 *   4. that growth given back, the block idle, growth under 1/32 of the
 *      mark: nothing paid;
 *   5. the growth again: the block, idle now, pays for it.
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"
#include "os.h"
#include "purge.h"

#define MIB		(1UL << 20)

int main(void)
{
	size_t a = 12 * MIB, m = 16 * MIB, g = 48 * MIB, rss0, rss1, small;
	struct hak_bigcache_stats st0, st1;
	void *va, *vm, *vg, *vy, *vs;

	tap_plan(0);
	if (!__hak_rss())
		tap_skip_all("no /proc/self/statm");
	if (bc_large_min() > m)
		tap_skip_all("16 MiB is not a large block in this build");
	bc_set_max(256 * MIB);
	__hak_bigcache_set_decay(BC_PAY_DELAY_MS);
	__hak_bigcache_set_merge(false);	/* each block stays what it was */

	/* A purged 16 MiB block (memory "tight" at its put), then 12 MiB resident. */
	vm = bc_launder(malloc(m));
	va = bc_launder(malloc(a));
	if (!vm || !va)
		tap_bail("malloc");
	memset(vm, 2, m);
	memset(va, 3, a);
	__hak_bigcache_force_pressure(1);
	free(vm);
	__hak_bigcache_force_pressure(0);	/* a busy machine's memory stays out */
	free(va);
	st0 = bc_stats();
	if (st0.resident_bytes != a || st0.cached_bytes != a + m)
		tap_bail("cached %zu MiB, %zu MiB resident", bc_mib(st0.cached_bytes),
			 bc_mib(st0.resident_bytes));
	bc_pass();			/* the first pass sets the mark */
	tst_sleep_ms(BC_PAY_IDLE_MS);

	/*
	 * 1. The purged block taken and filled: its pages fault in afresh,
	 * growth of the large path's own.
	 */
	st0 = bc_stats();
	vm = bc_launder(malloc(m));
	if (!vm)
		tap_bail("malloc");
	memset(vm, 4, m);
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.hits == st0.hits + 1 && st1.paid == st0.paid && st1.resident_bytes == a,
	       "the large path's own growth pays nothing: %zu paid, %zu MiB resident, mark %zu -> %zu MiB",
	       st1.paid - st0.paid, bc_mib(st1.resident_bytes), bc_mib(st0.proc_peak),
	       bc_mib(st1.proc_peak));
	/* 2. The program's own 48 MiB: the idle block pays. */
	st0 = st1;
	vg = bc_own(g);
	rss0 = __hak_rss();
	bc_pass();
	rss1 = __hak_rss();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid + 1 && st1.resident_bytes == 0 && st1.cached_bytes >= a,
	       "other growth is paid by the idle block: %zu paid, %zu MiB resident, %zu MiB cached",
	       st1.paid - st0.paid, bc_mib(st1.resident_bytes), bc_mib(st1.cached_bytes));
	tap_ok(rss1 + a - 4 * MIB <= rss0, "the resident set fell by it: %zu -> %zu MiB",
	       bc_mib(rss0), bc_mib(rss1));
	tap_ok(st1.proc_peak >= st0.proc_peak, "the mark did not fall: %zu -> %zu MiB",
	       bc_mib(st0.proc_peak), bc_mib(st1.proc_peak));

	/* 3. A young block does not pay yet, and the mark waits for it. */
	free(vm);			/* cached, resident, young */
	vm = NULL;
	vy = bc_own(16 * MIB);
	st0 = bc_stats();
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid && st1.resident_bytes >= m &&
	       st1.proc_peak + m / 2 <= __hak_rss(),
	       "a young block stays, the mark waits: %zu paid, %zu MiB resident, mark %zu MiB, "
	       "resident set %zu MiB", st1.paid - st0.paid, bc_mib(st1.resident_bytes),
	       bc_mib(st1.proc_peak), bc_mib(__hak_rss()));
	munmap(vy, 16 * MIB);		/* the growth given back */
	tst_sleep_ms(BC_PAY_IDLE_MS);

	/* 4. Growth under 1/32 of the mark pays nothing. */
	small = (st1.proc_peak / 64) & ~(BC_PAGE - 1);
	vs = bc_own(small);
	st0 = bc_stats();
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid && st1.resident_bytes >= m,
	       "%zu MiB of growth under the slack pays nothing: %zu paid, %zu MiB resident",
	       bc_mib(small), st1.paid - st0.paid, bc_mib(st1.resident_bytes));

	/* 5. The growth again: the block, idle now, pays. */
	vy = bc_own(16 * MIB);
	st0 = st1;
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid + 1 && st1.resident_bytes == 0,
	       "once idle it pays: %zu paid, %zu MiB resident", st1.paid - st0.paid,
	       bc_mib(st1.resident_bytes));

	munmap(vs, small);
	munmap(vy, 16 * MIB);
	munmap(vg, g);
	free(vm);
	__hak_bigcache_set_merge(true);
	tap_finish();
}
