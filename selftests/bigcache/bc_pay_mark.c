// SPDX-License-Identifier: MIT
/*
 * The growth rule's mark (pay_growth in bigcache.c; bc_pay, bc_pay_back):
 * four ways the rule let the heap grow on top of idle cached blocks, each
 * found on R's examples (issue 11, r32: peak 194-205 MB against glibc's
 * 173 MB with 45 MB of freed vectors resident in the cache at the peak).
 *
 *   1. a block freed just before the growth (young) pays once idle: the
 *      pass that saw it young does not lift the mark by what it covers;
 *   2. growth in steps each under the slack (1/32 of the mark) pays once
 *      it adds up past it: a pass's base is the mark, not the last
 *      resident set (which let every pass lift the mark by the slack);
 *   3. a block mapped and freed with most pages never touched leaves no
 *      credit behind for later growth: the large path's untouched bytes
 *      are credited one pass, not until the heap next grows;
 *   4. a paid block of 4 MiB taken back keeps at most 4 MiB of idle blocks
 *      from paying, not every block of 4 MiB or more.
 *
 * Each case starts from an empty cache and no mark (bc_set_max).
 * runner: long (four sleeps past the idle age, about 9 s)
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"
#include "os.h"
#include "purge.h"

#define MIB		(1UL << 20)

static void fresh_state(void)
{
	bc_set_max(256 * MIB);
	__hak_bigcache_force_pressure(0);
	__hak_bigcache_set_decay(BC_PAY_DELAY_MS);
	__hak_bigcache_set_merge(false);	/* each block stays what it was */
}

/* A large block of n bytes, its first touched bytes written. */
static void *block(size_t n, size_t touched, int c)
{
	void *p = bc_launder(malloc(n));

	if (!p)
		tap_bail("malloc %zu MiB", bc_mib(n));
	memset(p, c, touched);
	return p;
}

int main(void)
{
	size_t a = 16 * MIB, s = 4 * MIB, g = 24 * MIB, step, i;
	struct hak_bigcache_stats st0, st1;
	void *va, *vs, *vg, *vh, *steps[8];

	tap_plan(4);
	if (!__hak_rss())
		tap_skip_all("no /proc/self/statm");
	if (bc_large_min() > s)
		tap_skip_all("4 MiB is not a large block in this build");

	/* 1. Young at the growth, idle later: it pays then. */
	fresh_state();
	va = block(a, a, 1);
	bc_pass();			/* the first pass sets the mark */
	free(va);			/* cached, resident, young */
	vg = bc_own(g);
	st0 = bc_stats();
	bc_pass();			/* young: left alone */
	tst_sleep_ms(BC_PAY_IDLE_MS);
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid + 1 && st1.resident_bytes == 0,
	       "a block young at the growth pays once idle: %zu paid, %zu MiB resident",
	       st1.paid - st0.paid, bc_mib(st1.resident_bytes));
	munmap(vg, g);

	/* 2. Growth in steps under the slack adds up. */
	fresh_state();
	free(block(a, a, 2));
	bc_pass();
	tst_sleep_ms(BC_PAY_IDLE_MS);
	st0 = bc_stats();
	step = (st0.proc_peak / 64) & ~(BC_PAGE - 1);
	if (!step)
		tap_bail("no mark after a pass");
	for (i = 0; i < 8; i++) {	/* an eighth of the mark, 1/64 a pass */
		steps[i] = bc_own(step);
		bc_pass();
	}
	st1 = bc_stats();
	tap_ok(st1.paid == st0.paid + 1 && st1.resident_bytes == 0,
	       "8 steps of %zu KiB (1/64 of the mark) pay: %zu paid, %zu MiB resident, mark %zu -> %zu MiB",
	       step >> 10, st1.paid - st0.paid, bc_mib(st1.resident_bytes),
	       bc_mib(st0.proc_peak), bc_mib(st1.proc_peak));
	for (i = 0; i < 8; i++)
		munmap(steps[i], step);

	/* 3. 48 MiB mapped, 4 MiB of it touched, freed: no lasting credit. */
	fresh_state();
	free(block(a, a, 3));		/* the block to pay with */
	bc_pass();
	vh = block(3 * a, s, 4);	/* a miss: 48 MiB credited, 4 MiB resident */
	free(vh);
	bc_pass();			/* credits what is not resident */
	tst_sleep_ms(BC_PAY_IDLE_MS);
	bc_pass();			/* the credit's one pass is over */
	st0 = bc_stats();
	vg = bc_own(g);
	bc_pass();
	st1 = bc_stats();
	tap_ok(st1.paid > st0.paid && st1.resident_bytes <= s,
	       "untouched pages leave no credit for later growth: %zu paid, %zu MiB resident",
	       st1.paid - st0.paid, bc_mib(st1.resident_bytes));
	munmap(vg, g);

	/* 4. A 4 MiB block came back: 4 MiB stay, the 16 MiB block pays. */
	fresh_state();
	free(block(s, s, 5));
	bc_pass();
	tst_sleep_ms(BC_PAY_IDLE_MS);
	vg = bc_own(g);
	bc_pass();			/* the 4 MiB block pays */
	vs = block(s, s, 6);		/* and comes back */
	va = block(a, a, 7);
	free(va);			/* older of the two */
	free(vs);
	bc_pass();			/* the large path's growth raises the mark */
	tst_sleep_ms(BC_PAY_IDLE_MS);
	st0 = bc_stats();
	vh = bc_own(g + a);
	bc_pass();
	st1 = bc_stats();
	tap_ok(st0.paid_back >= 1 && st1.paid == st0.paid + 1 && st1.resident_bytes == s,
	       "one 4 MiB take back keeps 4 MiB: %zu came back, %zu paid, %zu MiB resident",
	       st0.paid_back, st1.paid - st0.paid, bc_mib(st1.resident_bytes));
	munmap(vh, g + a);
	munmap(vg, g);

	__hak_bigcache_set_merge(true);
	tap_finish();
}
