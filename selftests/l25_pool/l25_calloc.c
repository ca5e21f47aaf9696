// SPDX-License-Identifier: MIT
/*
 * l25_calloc: calloc of a mid size leaves a clean pool block (never
 * touched, or purged) unwritten, and still hands out zeros everywhere.
 *  - fresh: 16 MiB of 60,000-byte callocs in a fresh pool add at most
 *    4 MiB of RSS (before rs34, 2026-12-06, every page was written: +16 MiB;
 *    Python's bytes(n) is such a calloc), and read as zero;
 *  - dirty: the same blocks written with a pattern, freed and calloc'ed
 *    again read as zero (the shard's dirty blocks and the thread cache's
 *    are written);
 *  - purged: written, freed, purged in place by a decay pass (one block
 *    of every region kept live, so the regions stay in their shard) and
 *    calloc'ed again: zero, and at most 4 MiB of RSS back (the thread
 *    cache's few blocks are written).
 */
#include "l25_test.h"
#include "os.h"

#define MiB	(1UL << 20)
#define SZ	60000UL
#define NB	280	/* 16 MiB */
#define SLACK	(4 * MiB)

static char *blk[NB];

static long rss(void)
{
	return proc_status_kib("VmRSS") * 1024;
}

/* every block but the kept ones (i % keep_every == 0) */
static int all_zero(unsigned keep_every)
{
	for (unsigned i = 0; i < NB; i++)
		for (size_t j = 0; j < SZ && !(keep_every && i % keep_every == 0); j += sizeof(long))
			if (*(long *)(blk[i] + j))
				return 0;
	return 1;
}

static int callocs(void)
{
	for (unsigned i = 0; i < NB; i++) {
		blk[i] = calloc(1, lt_opaque(SZ));
		if (!blk[i])
			return 0;
	}
	return 1;
}

static void fill_free(unsigned keep_every)
{
	for (unsigned i = 0; i < NB; i++)
		memset(blk[i], 0xa5, SZ);
	for (unsigned i = 0; i < NB; i++) {
		if (keep_every && i % keep_every == 0)
			continue;
		free(blk[i]);
		blk[i] = NULL;
	}
}

int main(void)
{
	struct hak_l25_stats st;
	long r0, r1;
	unsigned i;

	tap_plan(6);
	free(malloc(lt_opaque(SZ)));	/* the pool and its first region */
	hak_l25_stats(&st);
	if (!st.allocs)
		tap_bail("a %lu-byte block is not a pool block", SZ);

	r0 = rss();
	if (!callocs())
		tap_bail("calloc failed");
	r1 = rss();
	tap_ok(r1 - r0 <= (long)SLACK, "fresh: %d callocs of %lu bytes added %ld KiB of RSS (at most %lu)",
	       NB, SZ, (r1 - r0) >> 10, SLACK >> 10);
	tap_ok(all_zero(0), "and read as zero");

	fill_free(0);
	if (!callocs())
		tap_bail("calloc failed");
	tap_ok(all_zero(0), "dirty: written, freed and calloc'ed again: zero");

	/* one block in 4 stays live (a region holds 3-4 of these) */
	fill_free(4);
	hak_l25_decay(__hak_now_ms() + 3600u * 1000u, 250);
	hak_l25_stats(&st);
	r0 = rss();
	for (i = 0; i < NB; i++)
		if (!blk[i] && !(blk[i] = calloc(1, lt_opaque(SZ))))
			tap_bail("calloc failed");
	r1 = rss();
	tap_ok(st.purged_bytes > 0, "a decay pass purged %llu bytes of the freed blocks",
	       (unsigned long long)st.purged_bytes);
	tap_ok(r1 - r0 <= (long)SLACK, "purged: the callocs after it added %ld KiB of RSS (at most %lu)",
	       (r1 - r0) >> 10, SLACK >> 10);
	tap_ok(all_zero(4), "and read as zero");
	for (i = 0; i < NB; i++)
		free(blk[i]);
	tap_finish();
}
