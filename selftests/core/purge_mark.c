// SPDX-License-Identifier: MIT
/*
 * The learned delay stops at the resident set's high-water mark (lib/
 * purge.c, past_mark): while the program is busy, a decay pass uses the
 * longer delay that refaults taught it (here set at its cap) only while
 * the resident set is within 1/32 of its highest at any earlier pass; a
 * pass that finds it past that purges at the configured delay, since what
 * the learned delay keeps would now sit on top of the program's new peak
 * (R's examples: the L2.5 pool's 17 MB and the slabs' free pages kept for
 * 2-6 s under the growth that made the peak; issue 11, r32).
 *
 *   1. 24 MiB of small blocks freed, older than the configured delay,
 *      the resident set under the mark: the learned delay keeps them;
 *   2. the program's own pages lift the resident set past the mark: the
 *      next pass gives the freed memory back.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "init.h"
#include "os.h"
#include "purge.h"

#define MIB	(1UL << 20)
#define NBLK	384			/* of 64 KiB: 24 MiB */
#define BLK	(64u << 10)

static void *own(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap %zu MiB", n / MIB);
	memset(p, 7, n);
	return p;
}

static size_t decayed(void)
{
	struct hak_purge_stats ps;

	__hak_purge_stats(&ps);
	return ps.decayed_bytes;
}

static volatile int stop;

/* Keeps the process busy: a slow path every 10 ms (passes are busy ones). */
static void *ticker(void *arg)
{
	(void)arg;
	while (!stop) {
		ct_decay_tick();
		tst_sleep_ms(10);
	}
	return NULL;
}

/*
 * A busy pass now (a slow path first, so the pass is not an idle one; its
 * tick may run the pass itself): the bytes the passes released.
 */
static size_t pass(void)
{
	size_t d0 = decayed();

	ct_decay_tick();
	__hak_purge_decay(__hak_now_ms());
	return decayed() - d0;
}

int main(void)
{
	static void *blk[NBLK];
	unsigned delay;
	size_t cap, got, d0, big = 64 * MIB;
	void *vb, *vg;
	pthread_t tk;
	unsigned i;

	free(malloc(1));		/* the options are read at the first call */
	delay = (unsigned)__hak_opt.purge_delay_ms;
	cap = __hak_opt.purge_delay_max_ms;
	if (!delay || cap <= delay || delay > 1000 || cap < 4 * delay)
		tap_skip_all("purge delay %u ms, cap %zu ms: no learned delay", delay, cap);
	if (!__hak_rss())
		tap_skip_all("no /proc/self/statm");
	/* Without the pool its blocks take the large path: given back at free. */
	if (!IS_ENABLED(CONFIG_HAK_L25_POOL))
		tap_skip_all("no L2.5 pool: the blocks are given back at free, no purge to delay");
	tap_plan(2);
	__hak_purge_set_learned((unsigned)cap);

	if (pthread_create(&tk, NULL, ticker, NULL))
		tap_bail("pthread_create");
	/* The mark: a pass with 64 MiB of the program's own pages resident. */
	vb = own(big);
	pass();
	munmap(vb, big);

	for (i = 0; i < NBLK; i++) {
		blk[i] = malloc(BLK);
		if (!blk[i])
			tap_bail("malloc");
		memset(blk[i], 1, BLK);
	}
	d0 = decayed();
	for (i = 0; i < NBLK; i++)
		free(blk[i]);
	tst_sleep_ms(4 * delay + 50);	/* older than 3 configured delays */

	/* 1. Under the mark: the learned delay (cap) keeps them. */
	pass();
	got = decayed() - d0;
	tap_ok(got < 8 * MIB, "under the mark the learned delay keeps the freed blocks: %zu MiB purged",
	       got / MIB);

	/* 2. Past the mark: the configured delay. */
	d0 = decayed();
	vg = own(big + 8 * MIB);
	pass();
	tst_sleep_ms(delay / 2 + 20);	/* the ticker's passes too */
	pass();
	got = decayed() - d0;
	tap_ok(got >= 16 * MIB, "past the mark the configured delay gives them back: %zu MiB purged",
	       got / MIB);
	munmap(vg, big + 8 * MIB);
	stop = 1;
	pthread_join(tk, NULL);
	__hak_purge_set_learned(0);
	tap_finish();
}
