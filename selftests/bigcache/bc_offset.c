// SPDX-License-Identifier: MIT
/*
 * BigCache: a realloc growth's fresh pages replace stale cached blocks.
 * When a large block grows by mremap (nothing cached is long enough to
 * copy into), the cache unmaps, oldest first, up to the growth's length of
 * resident blocks that no take chose in the last 32 takes (4 per cached
 * block when that is more; hak_bigcache_offset). Blocks cached just before
 * a growth stay; after 70 takes of another size they are stale, the next
 * growth unmaps about its own length of them, the RSS does not grow by it,
 * and what is left still serves.
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"

#define NA		5
#define MIB		(1UL << 20)

static size_t mib(size_t b)
{
	return b >> 20;
}

int main(void)
{
	size_t a = 2 * MIB, b = MIB, d = 4 * MIB, rss0, rss1, fell;
	struct hak_bigcache_stats st0, st1;
	unsigned char *vd;
	void *va[NA], *vb;
	int i;

	tap_plan(0);
	if (bc_large_min() > b)
		tap_skip_all("1 MiB is not a large block in this build");
	__hak_bigcache_set_decay(0);	/* only the growth may drop a block */
	__hak_bigcache_force_pressure(0);	/* nor a busy machine's memory */
	__hak_bigcache_set_merge(false);	/* no runs: nothing cached fits a growth */
	bc_set_max(256 * MIB);

	vb = bc_launder(malloc(b));
	memset(vb, 1, b);
	vd = bc_launder(malloc(d));
	memset(vd, 2, d);
	for (i = 0; i < NA; i++) {
		va[i] = bc_launder(malloc(a));
		memset(va[i], 3, a);
	}
	for (i = 0; i < NA; i++)
		free(va[i]);

	/* 1. A growth right after the blocks were cached: they are not stale. */
	st0 = bc_stats();
	vd = realloc(vd, 2 * d);
	if (!vd)
		tap_bail("realloc");
	memset(vd + d, 4, d);
	st1 = bc_stats();
	tap_ok(st1.offsets == st0.offsets && st1.cached_bytes >= NA * a,
	       "young blocks stay: %zu offsets, %zu MiB cached",
	       st1.offsets - st0.offsets, mib(st1.cached_bytes));

	/* 2. 70 takes that choose only the 1 MiB block: the others go stale. */
	for (i = 0; i < 70; i++) {
		free(vb);
		vb = bc_launder(malloc(b));
		memset(vb, 5, 64);
	}
	st0 = bc_stats();
	tap_ok(st0.offsets == st1.offsets, "hits add nothing fresh: no offset");

	/* 3. Growing by 2 * d unmaps about 2 * d bytes of stale blocks, oldest first. */
	rss0 = bc_rss();
	vd = realloc(vd, 4 * d);
	if (!vd)
		tap_bail("realloc");
	memset(vd + 2 * d, 6, 2 * d);
	rss1 = bc_rss();
	st1 = bc_stats();
	fell = st0.cached_bytes - st1.cached_bytes;
	tap_ok(st1.offsets > st0.offsets &&
	       st1.evictions >= st0.evictions + (st1.offsets - st0.offsets),
	       "stale blocks unmapped: %zu offsets", st1.offsets - st0.offsets);
	tap_ok(fell >= 2 * d && fell <= 2 * d + a, "about the growth's length unmapped: %zu -> %zu MiB cached",
	       mib(st0.cached_bytes), mib(st1.cached_bytes));
	tap_ok(rss1 < rss0 + d / 2, "RSS %zu -> %zu MiB for %zu MiB of growth",
	       mib(rss0), mib(rss1), mib(2 * d));

	/* 4. What is left still serves: a take of a's size hits. */
	st0 = bc_stats();
	va[0] = bc_launder(malloc(a));
	st1 = bc_stats();
	tap_ok(st1.hits == st0.hits + 1, "the rest still serves a take");
	free(va[0]);

	free(vd);
	free(vb);
	__hak_bigcache_set_merge(true);
	tap_finish();
}
