// SPDX-License-Identifier: MIT
/*
 * BigCache: a malloc's miss trades stale cached blocks for its fresh pages
 * only past the footprint's high-water mark (hak_bigcache_offset_miss).
 * Live large bytes plus resident cached bytes have a highest value at any
 * miss so far: a miss that stays under it keeps every cached block, stale
 * or not; a miss that lifts it unmaps stale blocks (no take chose them in
 * the last 8 takes per cached block, at least 32), oldest first, up to
 * about the lift and no more; young blocks stay whatever the lift. The
 * blocks over the cache's refuse size (a quarter of its bound) are live
 * only: they make the mark without being cached.
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"

#define NA		5
#define MIB		(1UL << 20)

static size_t mib(size_t b)
{
	return b >> 20;
}

/*
 * Every block cached at st0 is still cached at st1, but for those a miss
 * took to grow where it lies (counted as shorter; one per miss).
 */
static bool kept(const struct hak_bigcache_stats *st0, const struct hak_bigcache_stats *st1,
		 size_t a)
{
	return st1->cached_bytes + (st1->shorter - st0->shorter) * a >= st0->cached_bytes;
}

static size_t live(void)
{
	return bc_large_stats().bytes;
}

int main(void)
{
	size_t a = 2 * MIB, b = MIB, h = 80 * MIB, m = 4 * MIB, lift = 5 * MIB, z;
	struct hak_bigcache_stats st0, st1;
	void *va[NA], *vb, *vh, *vm, *vz;
	size_t n;
	int i;

	tap_plan(0);
	if (bc_large_min() > b)
		tap_skip_all("1 MiB is not a large block in this build");
	__hak_bigcache_set_decay(0);	/* only the misses may drop a block */
	__hak_bigcache_force_pressure(0);	/* nor a busy machine's memory */
	__hak_bigcache_set_merge(false);	/* no runs: nothing cached fits a miss */
	bc_set_max(256 * MIB);		/* refuses blocks over 64 MiB */

	vb = bc_launder(malloc(b));
	memset(vb, 1, b);
	vh = bc_launder(malloc(h));	/* live, untouched: the mark's height */
	for (i = 0; i < NA; i++) {
		va[i] = bc_launder(malloc(a));
		memset(va[i], 3, a);
	}
	for (i = 0; i < NA; i++)
		free(va[i]);
	free(vh);			/* over the refuse size: unmapped */
	st0 = bc_stats();
	tap_ok(st0.cached_bytes >= NA * a && st0.foot_peak >= h + NA * a,
	       "%zu MiB cached, the mark at %zu MiB", mib(st0.cached_bytes), mib(st0.foot_peak));

	/* 1. A miss that lifts the mark right after the blocks were cached: they stay. */
	vz = bc_launder(malloc(h + 20 * MIB));
	if (!vz)
		tap_bail("malloc");
	st1 = bc_stats();
	tap_ok(st1.offsets == st0.offsets && kept(&st0, &st1, a) &&
	       st1.foot_peak > st0.foot_peak,
	       "young blocks stay at a lifting miss: %zu offsets, %zu MiB cached, mark %zu MiB",
	       st1.offsets - st0.offsets, mib(st1.cached_bytes), mib(st1.foot_peak));
	free(vz);

	/* 100 takes that choose only the 1 MiB block: the others go stale. */
	for (i = 0; i < 100; i++) {
		free(vb);
		vb = bc_launder(malloc(b));
		memset(vb, 5, 64);
	}

	/* 2. A miss under the mark keeps the stale blocks. */
	st0 = bc_stats();
	vm = bc_launder(malloc(m));
	if (!vm)
		tap_bail("malloc");
	memset(vm, 6, m);
	st1 = bc_stats();
	tap_ok(st1.offsets == st0.offsets && kept(&st0, &st1, a) &&
	       st1.foot_peak == st0.foot_peak,
	       "a miss under the mark unmaps nothing: %zu offsets, %zu MiB cached",
	       st1.offsets - st0.offsets, mib(st1.cached_bytes));

	/* 3. A miss that lifts the mark by 5 MiB unmaps about that much stale stock. */
	st0 = bc_stats();
	n = NA * a;
	if (st0.foot_peak + lift <= live() + st0.resident_bytes)
		tap_bail("the mark (%zu MiB) is under live + resident", mib(st0.foot_peak));
	z = st0.foot_peak + lift - live() - st0.resident_bytes;
	vz = bc_launder(malloc(z));
	if (!vz)
		tap_bail("malloc");
	st1 = bc_stats();
	n = st1.offsets - st0.offsets;
	tap_ok(n >= 2 && n <= 3, "stale blocks unmapped for the lift: %zu of 2 MiB", n);
	tap_ok(st1.cached_bytes >= a && st1.evictions >= st0.evictions + n,
	       "no more than the lift: %zu -> %zu MiB cached",
	       mib(st0.cached_bytes), mib(st1.cached_bytes));
	tap_ok(st1.foot_peak >= st0.foot_peak && st1.foot_peak <= st0.foot_peak + lift,
	       "the mark rose by at most the lift: %zu -> %zu MiB",
	       mib(st0.foot_peak), mib(st1.foot_peak));
	free(vz);

	/* 4. What is left still serves: a take of a's size hits. */
	st0 = bc_stats();
	va[0] = bc_launder(malloc(a));
	st1 = bc_stats();
	tap_ok(st1.hits == st0.hits + 1, "the rest still serves a take");
	free(va[0]);

	free(vm);
	free(vb);
	__hak_bigcache_set_merge(true);
	tap_finish();
}
