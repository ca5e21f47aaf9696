// SPDX-License-Identifier: MIT
/*
 * l25_retake: the re-take rule and the hand-over of the L2.5 pool's decay
 * (boxes/l25_pool/l25.c).
 *  - hand-over: a thread frees 16 MiB of 256 KiB blocks and exits; a new
 *    thread, in another shard, takes as many: they come from the old
 *    shard's wholly free regions (handed over), no region is mapped and
 *    nothing is purged;
 *  - hold: blocks of a class the program keeps taking (12 blocks every
 *    60 ms, 4 of them from the shard) are not purged while younger than
 *    HAK_L25_HOLD delays, though older than the delay;
 *  - reserve: past the hold, the pass purges them down to what the class
 *    took in the last one or two delays, no further;
 *  - idle: with no allocator call at all for HAK_L25_HOLD delays and a
 *    bit, the next call's pass purges every one of them;
 *  - another class's traffic does not hold them: blocks of a class not
 *    taken since are purged by the pass after the hold.
 * The refault feedback is off (it would lengthen the delay the steps are
 * timed for: selftests/core/purge_refault tests it).
 * The test runs on a clock of its own: the library's clock reads go to
 * __hak_clock_hook (lib/os.h; this program links libhakmem.a), which adds
 * an offset it moves to CLOCK_MONOTONIC_COARSE, so a loaded machine does not change the ages the passes see.
 */
#include <pthread.h>
#include <sys/syscall.h>
#include "l25_test.h"
#include "clock_offset.h"
#include "init.h"

#define NBLK		64
#define BLK		(256UL << 10)	/* 64 x 256 KiB: 16 MiB */
#define TAKE		12		/* per tick: 8 from the thread cache, 4 from the shard */

static void *blk[NBLK];

/* Move the clock, then one slow path (a large block) that ticks the decay. */
static void age_and_tick(unsigned ms)
{
	void *p;

	clock_off_ms += ms;
	p = malloc(lt_opaque(4UL << 20));
	((volatile char *)p)[0] = 1;
	free(p);
}

static struct hak_l25_stats l25(void)
{
	struct hak_l25_stats st;

	hak_l25_stats(&st);
	return st;
}

static void take_all(void)
{
	for (unsigned i = 0; i < NBLK; i++) {
		blk[i] = malloc(lt_opaque(BLK));
		memset(blk[i], (int)i, BLK);
	}
}

static void free_all(void)
{
	for (unsigned i = 0; i < NBLK; i++)
		free(blk[i]);
}

static void *take_free_exit(void *arg)
{
	(void)arg;
	take_all();
	free_all();
	return NULL;	/* the thread cache goes back to the shard */
}

static void *take_and_keep(void *arg)
{
	(void)arg;
	take_all();
	return NULL;
}

/* A tick with demand: TAKE blocks of the class taken, written and freed. */
static void demand_tick(unsigned ms)
{
	void *q[TAKE];
	unsigned j;

	clock_off_ms += ms;
	for (j = 0; j < TAKE; j++) {
		q[j] = malloc(lt_opaque(BLK));
		memset(q[j], 3, 4096);
	}
	for (j = 0; j < TAKE; j++)
		free(q[j]);
}

static void test_handover(void)
{
	struct hak_l25_stats a, b;
	pthread_t t;
	void *mine = malloc(lt_opaque(40000));	/* this thread's shard: the first */

	pthread_create(&t, NULL, take_free_exit, NULL);
	pthread_join(t, NULL);
	a = l25();
	/* the next thread's sequence number puts it in another shard */
	pthread_create(&t, NULL, take_and_keep, NULL);
	pthread_join(t, NULL);
	b = l25();
	if (b.shards < 2) {
		tap_skip("one shard only (%zu): nothing to hand over", b.shards);
	} else {
		tap_ok(b.handed - a.handed >= NBLK * BLK / (2UL << 20) - 1 &&
		       b.region_maps == a.region_maps && b.purged_bytes == a.purged_bytes,
		       "a thread in another shard takes the 16 MiB an exited one freed: %zu "
		       "regions handed over, %zu mapped, %zu KiB purged", b.handed - a.handed,
		       b.region_maps - a.region_maps, (b.purged_bytes - a.purged_bytes) >> 10);
	}
	free_all();	/* freed here: this thread's shard's remote frees, then its own */
	free(mine);
	malloc_trim(0);
}

static void test_hold_reserve(void)
{
	unsigned delay = (unsigned)__hak_opt.purge_delay_ms, hold = HAK_L25_HOLD * delay;
	struct hak_l25_stats a, b, c;
	unsigned k;

	take_all();
	age_and_tick(10);
	free_all();
	a = l25();
	/* demand for two delays and a half, every 60 ms: older than the delay */
	for (k = 0; k < (5 * delay / 2) / 60; k++)
		demand_tick(60);
	b = l25();
	tap_ok(b.purged_bytes == a.purged_bytes && b.reserve_bytes >= (NBLK - TAKE) * BLK / 2,
	       "blocks of a class taken every 60 ms stay past the delay until the hold "
	       "(%u ms): %zu KiB purged after %u ms, %zu KiB kept by the last pass", hold,
	       (b.purged_bytes - a.purged_bytes) >> 10, k * 60, b.reserve_bytes >> 10);
	/* the same demand until two holds: past the hold only the reserve stays */
	for (; k < 2 * hold / 60; k++)
		demand_tick(60);
	c = l25();
	/* takes from the shard in two delays: 4 a tick, at most 2 * delay / 60 + 2 ticks */
	tap_ok(c.purged_bytes > b.purged_bytes &&
	       c.reserve_bytes <= (2 * delay / 60 + 2) * (TAKE - 8) * BLK,
	       "past the hold they are purged down to the re-take reserve: %zu KiB purged, "
	       "%zu KiB kept (the class took at most %zu KiB from the shard in two delays)",
	       (c.purged_bytes - a.purged_bytes) >> 10, c.reserve_bytes >> 10,
	       ((2 * delay / 60 + 2) * (TAKE - 8) * BLK) >> 10);
	malloc_trim(0);
}

static void test_idle(void)
{
	unsigned delay = (unsigned)__hak_opt.purge_delay_ms, hold = HAK_L25_HOLD * delay;
	struct hak_l25_stats a, b;

	take_all();
	age_and_tick(10);
	free_all();
	a = l25();
	clock_off_ms += hold + 100;	/* idle: no allocator call at all */
	age_and_tick(1);
	age_and_tick(delay / 4 + 1);
	b = l25();
	tap_ok(b.purged_bytes - a.purged_bytes >= NBLK * BLK * 3 / 4 && b.reserve_bytes == 0,
	       "after %u ms idle the next calls purge the blocks freed before it "
	       "(%zu KiB purged, %zu KiB kept)", hold + 100,
	       (b.purged_bytes - a.purged_bytes) >> 10, b.reserve_bytes >> 10);
	malloc_trim(0);
}

static void test_other_class(void)
{
	unsigned delay = (unsigned)__hak_opt.purge_delay_ms, hold = HAK_L25_HOLD * delay;
	struct hak_l25_stats a, b;
	unsigned k;

	take_all();
	age_and_tick(10);
	free_all();
	a = l25();
	/* traffic of 40 KiB blocks only, past the hold */
	for (k = 0; k < (hold + delay / 2) / 60; k++) {
		void *q[16];
		unsigned j;

		clock_off_ms += 60;
		for (j = 0; j < 16; j++) {
			q[j] = malloc(lt_opaque(40000));
			*(volatile char *)q[j] = 1;
		}
		for (j = 0; j < 16; j++)
			free(q[j]);
		age_and_tick(0);
	}
	b = l25();
	tap_ok(b.purged_bytes - a.purged_bytes >= NBLK * BLK * 3 / 4,
	       "another class's traffic does not hold them: %zu KiB purged after %u ms",
	       (b.purged_bytes - a.purged_bytes) >> 10, k * 60);
	malloc_trim(0);
}

int main(void)
{
	clock_off_ms = 1000;
	age_and_tick(1);	/* initialises the library: the delay is known */
	if (__hak_opt.purge_delay_ms != 250) {
		tap_skip_all("the steps are timed for a purge delay of 250 ms, not %zu",
			     __hak_opt.purge_delay_ms);
	}
	/*
	 * The steps are timed for the pool's rule at that delay: the busy
	 * passes' refault feedback (lib/purge.c) would learn a longer one
	 * from the hold test's re-takes of purged blocks (true refaults).
	 */
	__hak_opt.purge_delay_max_ms = 0;
	tap_plan(0);
	test_handover();
	test_hold_reserve();
	test_idle();
	test_other_class();
	tap_finish();
}
