// SPDX-License-Identifier: MIT
/*
 * The growth rule (pay_growth, bc_pay) and blocks that come back: once a
 * take has handed out pages the rule purged, idle blocks that could serve
 * a take of that length are no longer paid while the program keeps taking
 * from the cache; shorter idle blocks still are (paid_back in bigcache.c;
 * numpy phases between phases of heap growth: Documentation/boxes/
 * bigcache.md, "Paid blocks that come back").
 *
 *   1. an idle 16 MiB block, the program's own 48 MiB: the block is paid
 *      (nothing came back yet);
 *   2. a 16 MiB take gets the paid block back (one "came back");
 *   3. the 16 MiB block and a 4 MiB one cached again, both idle, 48 MiB
 *      more of the program's own: the 4 MiB block is paid, the 16 MiB
 *      block (older, first in line before) stays resident, and the mark
 *      rises by what is left.
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"
#include "os.h"
#include "purge.h"

#define MIB		(1UL << 20)

int main(void)
{
	size_t a = 16 * MIB, s = 4 * MIB, g = 48 * MIB;
	struct hak_bigcache_stats st0, st1;
	void *va, *vs, *vg1, *vg2;

	tap_plan(4);
	if (!__hak_rss())
		tap_skip_all("no /proc/self/statm");
	if (bc_large_min() > s)
		tap_skip_all("4 MiB is not a large block in this build");
	__hak_bigcache_force_pressure(0);
	bc_set_max(256 * MIB);
	__hak_bigcache_set_decay(BC_PAY_DELAY_MS);
	__hak_bigcache_set_merge(false);	/* each block stays what it was */

	/* 1. Nothing came back yet: the idle block pays for the growth. */
	va = bc_launder(malloc(a));
	if (!va)
		tap_bail("malloc");
	memset(va, 3, a);
	free(va);
	bc_pass();			/* the first pass sets the mark */
	tst_sleep_ms(BC_PAY_IDLE_MS);
	st0 = bc_stats();
	vg1 = bc_own(g);
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid + 1 && st1.resident_bytes == 0 && st1.paid_back == st0.paid_back,
	       "an idle block pays while nothing came back: %zu paid, %zu MiB resident",
	       st1.paid - st0.paid, bc_mib(st1.resident_bytes));

	/* 2. The program takes it back: its pages fault in again. */
	st0 = st1;
	va = bc_launder(malloc(a));
	if (!va)
		tap_bail("malloc");
	memset(va, 4, a);
	st1 = bc_stats();
	tap_ok(st1.hits == st0.hits + 1 && st1.paid_back == st0.paid_back + 1,
	       "a take of 16 MiB got the paid block back: %zu hit, %zu came back",
	       st1.hits - st0.hits, st1.paid_back - st0.paid_back);

	/* 3. A 4 MiB block beside it (a miss: the 16 MiB block is live). */
	vs = bc_launder(malloc(s));
	if (!vs)
		tap_bail("malloc");
	memset(vs, 5, s);
	free(va);			/* the older of the two */
	free(vs);
	bc_pass();			/* the large path's growth raises the mark */
	tst_sleep_ms(BC_PAY_IDLE_MS);
	st0 = bc_stats();
	vg2 = bc_own(g);
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid + 1 && st1.resident_bytes == a,
	       "the 4 MiB block pays, the 16 MiB one stays: %zu paid, %zu MiB resident",
	       st1.paid - st0.paid, bc_mib(st1.resident_bytes));
	tap_ok(st1.proc_peak > st0.proc_peak, "the mark rose by what was left: %zu -> %zu MiB",
	       bc_mib(st0.proc_peak), bc_mib(st1.proc_peak));

	munmap(vg2, g);
	munmap(vg1, g);
	__hak_bigcache_set_merge(true);
	tap_finish();
}
