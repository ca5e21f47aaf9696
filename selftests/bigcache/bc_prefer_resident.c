// SPDX-License-Identifier: MIT
/*
 * A take whose best whole fit is a purged block while resident cached
 * blocks hold the request: the resident pages go out (a longer block cut
 * at its head), not the purged block, whose every page would fault in
 * again while the resident ones stayed idle in the cache (numpy phases
 * between phases of heap growth: Documentation/boxes/bigcache.md, "A
 * purged fit or resident pages").
 *
 *   1. an 8 MiB block purged (forced pressure at its put), a 32 MiB block
 *      resident: a 7.5 MiB malloc, whose whole fit is the purged block,
 *      is served from the resident one, and writing it all does not grow
 *      the RSS by its length;
 *   2. with no resident block long enough, the purged fit goes out, and
 *      reads as zero.
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"

#define MIB		(1UL << 20)

static int inside(const void *p, const void *base, size_t len)
{
	return (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p < (uintptr_t)base + len;
}

int main(void)
{
	size_t small = 8 * MIB, big = 32 * MIB, want = small - small / 16, rss0, rss1, nz;
	struct hak_bigcache_stats st;
	unsigned char *a, *b, *p;

	tap_plan(2);
	if (bc_large_min() > want)
		tap_skip_all("large blocks start above %zu KiB", want >> 10);
	/*
	 * Purged only where this test says: no block decays in 4 s, and none
	 * is idle for the growth rule (a quarter delay) in the test's time.
	 */
	__hak_bigcache_set_decay(4000);
	__hak_bigcache_force_pressure(0);
	bc_set_max(256 * MIB);

	a = malloc(small);
	b = malloc(big);
	if (!a || !b)
		tap_bail("malloc");
	memset(a, 0x5a, small);
	memset(b, 0xa5, big);
	__hak_bigcache_force_pressure(1);
	free(a);			/* cached, purged */
	__hak_bigcache_force_pressure(0);
	free(b);			/* cached, resident */
	st = bc_stats();
	if (st.resident_bytes < big)
		tap_bail("the 32 MiB block is not resident (%zu KiB resident)",
			 st.resident_bytes >> 10);

	rss0 = bc_rss();
	p = malloc(want);
	if (!p)
		tap_bail("malloc");
	memset(p, 1, want);
	rss1 = bc_rss();
	tap_ok(inside(p, b, big) && rss1 < rss0 + want / 4,
	       "the %zu KiB take came from the resident block (%s), RSS %zu -> %zu KiB",
	       want >> 10, inside(p, b, big) ? "inside it" : inside(p, a, small) ?
	       "the purged block instead" : "elsewhere", rss0 >> 10, rss1 >> 10);
	free(p);

	/* 2. A 10 MiB take: its whole fit, 12 MiB, purged; 4 MiB resident. */
	malloc_trim(0);
	a = malloc(small + small / 2);
	b = malloc(small / 2);
	if (!a || !b)
		tap_bail("malloc");
	memset(a, 0x5a, small + small / 2);
	memset(b, 0xa5, small / 2);
	__hak_bigcache_force_pressure(1);
	free(a);
	__hak_bigcache_force_pressure(0);
	free(b);
	p = malloc(small + small / 4);
	if (!p)
		tap_bail("malloc");
	nz = bc_nonzero_at(p, small + small / 4);
	tap_ok(inside(p, a, small + small / 2) && nz == small + small / 4,
	       "with no resident block long enough the purged fit goes out, reading as zero (first nonzero byte at %zu of %zu)",
	       nz, small + small / 4);
	free(p);
	__hak_bigcache_force_pressure(-1);
	tap_finish();
}
