// SPDX-License-Identifier: MIT
/*
 * threads_churn: many short-lived threads keep a flat RSS.
 * runner: long (one of the longest selftests: the runner starts it first)
 *
 * Proves that thread exit hands a thread's caches back: thousands of short
 * threads, started in alternating phases of 500 one at a time and 500 four
 * at a time, each allocate and free
 * a mix of sizes and free blocks that earlier (already dead) threads left
 * behind in a shared hand-off table. Every handed-off block is checked
 * against an address-derived pattern before it is freed. VmRSS after the
 * warm-up (the first 1000 threads or tenth of them) and after all of them must match within a
 * small slack (4 MiB + 10%): a per-thread leak of even one slab would
 * show up as hundreds of MiB.
 *
 * Usage: threads_churn [threads] [width]   (default 10000 4, about 2 s on 2
 * cores; 3000 with HAKMEM_SELFTEST_QUICK=1; the long mode from the issue is
 * "threads_churn 100000"). Width (up to 64; tools/stress.sh -t runs 16 and
 * 64) is how many threads run at once in the wide phases: more threads than
 * cores exit and adopt pooled heaps at the same time.
 */
#include <pthread.h>

#include "core_test.h"

#define HANDOFF		256
#define PER_THREAD	8
#define MAX_WIDTH	64

static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;
static void *handoff[HANDOFF];
static size_t handoff_sz[HANDOFF];
static unsigned handoff_pos;
static unsigned long bad_blocks, handed;

static size_t size_for(unsigned long id, unsigned i)
{
	static const size_t sz[] = { 16, 24, 48, 64, 100, 256, 513, 1024, 3000,
				     8192, 20000, 70000 };

	return sz[(id * 7 + i * 3) % ARRAY_SIZE_CT(sz)];
}

static void *worker(void *arg)
{
	unsigned long id = (unsigned long)(uintptr_t)arg;
	void *local[32];
	void *mine[PER_THREAD];
	size_t mine_sz[PER_THREAD];
	unsigned long bad = 0, took = 0;

	/* private churn: allocate, touch, free in a different order */
	for (unsigned i = 0; i < ARRAY_SIZE_CT(local); i++) {
		size_t n = size_for(id, i);

		local[i] = malloc(n);
		if (!local[i])
			abort();
		memset(local[i], (int)i, n);
	}
	for (unsigned i = 0; i < ARRAY_SIZE_CT(local); i += 2)
		free(local[i]);
	for (unsigned i = 1; i < ARRAY_SIZE_CT(local); i += 2)
		free(local[i]);

	/* blocks for a later thread to free */
	for (unsigned i = 0; i < PER_THREAD; i++) {
		mine_sz[i] = size_for(id + 5, i) + i;
		mine[i] = malloc(mine_sz[i]);
		if (!mine[i])
			abort();
		ct_fill(mine[i], mine_sz[i] < 256 ? mine_sz[i] : 256);
	}

	pthread_mutex_lock(&handoff_lock);
	for (unsigned i = 0; i < PER_THREAD; i++) {
		unsigned s = handoff_pos++ % HANDOFF;
		void *old = handoff[s];

		if (old) {
			size_t n = handoff_sz[s] < 256 ? handoff_sz[s] : 256;

			if (ct_check(old, n) != n)
				bad++;
			took++;
			free(old);		/* allocated by a thread now dead */
		}
		handoff[s] = mine[i];
		handoff_sz[s] = mine_sz[i];
	}
	bad_blocks += bad;
	handed += took;
	pthread_mutex_unlock(&handoff_lock);
	return NULL;
}

static unsigned long create_fail;

static void spawn(unsigned long first, unsigned width)
{
	pthread_t th[MAX_WIDTH];
	unsigned made = 0;

	for (unsigned i = 0; i < width; i++) {
		if (pthread_create(&th[made], NULL, worker, (void *)(uintptr_t)(first + i)))
			create_fail++;
		else
			made++;
	}
	for (unsigned i = 0; i < made; i++)
		pthread_join(th[i], NULL);
}

int main(int argc, char **argv)
{
	unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : ct_quick() ? 3000 : 10000;
	long wide = argc > 2 ? strtol(argv[2], NULL, 0) : 4;
	unsigned long warm = total / 10, done = 0;
	long rss_warm = 0, rss_end;

	if (total < 2000)
		total = 2000;
	/*
	 * Warm-up: pooled heaps keep their partly used slabs, and with the
	 * adaptive-sizing box thread caches take bigger batches, so RSS climbs
	 * to a plateau over the first ~1000 threads. Measure from there (or a
	 * tenth of the run, if later); a leak of one slab per thread over the
	 * rest would still be hundreds of MiB.
	 */
	warm = total / 10 > 1000 ? total / 10 : (total / 2 < 1000 ? total / 2 : 1000);
	if (wide < 1 || wide > MAX_WIDTH)
		wide = wide < 1 ? 1 : MAX_WIDTH;
	tap_plan(4);
	tap_diag("%lu threads (phases of 500 one at a time, then %ld at a time)", total, wide);

	while (done < total) {
		/* alternate phases of 500: one at a time, then `wide` at a time */
		unsigned width = (done / 500) % 2 ? (unsigned)wide : 1;

		if (width > total - done)
			width = (unsigned)(total - done);
		spawn(done, width);
		done += width;
		if (!rss_warm && done >= warm)
			rss_warm = ct_retained_kib();
	}
	rss_end = ct_retained_kib();

	tap_ok(create_fail == 0, "%lu threads created (%lu pthread_create failures)", total,
	       create_fail);
	tap_ok(bad_blocks == 0, "%lu blocks from dead threads intact when freed (%lu bad)", handed,
	       bad_blocks);
	tap_ok(rss_end <= rss_warm + rss_warm / 10 + 4096,
	       "VmRSS after %lu threads %ld KiB, after %lu threads %ld KiB (flat)", warm, rss_warm,
	       total, rss_end);

	/* drain the hand-off table from the main thread and keep working */
	for (unsigned i = 0; i < HANDOFF; i++) {
		size_t n = handoff_sz[i] < 256 ? handoff_sz[i] : 256;

		if (handoff[i] && ct_check(handoff[i], n) != n)
			bad_blocks++;
		free(handoff[i]);
	}
	{
		void *p = malloc(1000);

		tap_ok(p && bad_blocks == 0, "main thread frees the leftovers and still allocates");
		free(p);
	}
	tap_finish();
}
