// SPDX-License-Identifier: MIT
/*
 * l25_carve_threads: threads that take fresh regions at the same time.
 * region_get() pops the pool or cuts the carve under the pool lock and
 * maps outside it, and two threads can find the carve empty together
 * (one keeps its mapping as the carve, the other unmaps all of its own
 * but the region it takes). Four threads, started together, each hold
 * blocks of the pool's largest class until they span NREG regions:
 *  - every region a thread's blocks fall in is a pool region, and no two
 *    threads' blocks share a region (each thread fills its own shard, when
 *    the shard cap allows four: a region handed out twice would show);
 *  - the regions made count what the threads saw, and they took few
 *    mmap calls (the carve's doubling survives the race: one a region
 *    would be NTHREADS * NREG = 96);
 *  - every block keeps what its thread wrote (no two blocks overlap);
 *  - after everything is freed, malloc_trim() leaves nothing mapped ahead.
 */
#include <pthread.h>
#include "l25_test.h"

#define NTHREADS	4
#define NREG		24
#define MAXBLK		(NREG * 64)

struct worker {
	pthread_t tid;
	unsigned idx;
	size_t n;
	unsigned nb;
	uintptr_t base[NREG];
	void *blk[MAXBLK];
};

static struct worker w[NTHREADS];
static pthread_barrier_t bar;
static size_t top;

static void *worker(void *arg)
{
	struct worker *me = arg;

	pthread_barrier_wait(&bar);
	while (me->nb < NREG && me->n < MAXBLK) {
		void *p = malloc(lt_opaque(top));
		uintptr_t b;
		unsigned i;

		if (!p || __hak_ssmap_kind((uintptr_t)p) != HAK_SSMAP_L25)
			return (void *)1;
		me->blk[me->n++] = p;
		memset(p, (int)me->idx + 1, 64);
		memset((char *)p + top - 64, (int)me->idx + 1, 64);
		b = (uintptr_t)p & ~((uintptr_t)HAK_SS_SIZE - 1);
		for (i = 0; i < me->nb && me->base[i] != b; i++)
			;
		if (i == me->nb)
			me->base[me->nb++] = b;
	}
	return NULL;
}

int main(void)
{
	struct hak_l25_stats st0, st1;
	unsigned t, u, i, j, shared = 0, bad = 0, failed = 0, total = 0;
	size_t k;

	top = lt_top_class();
	tap_plan(4);
	if (pthread_barrier_init(&bar, NULL, NTHREADS))
		tap_bail("pthread_barrier_init failed");
	hak_l25_stats(&st0);
	for (t = 0; t < NTHREADS; t++) {
		w[t].idx = t;
		if (pthread_create(&w[t].tid, NULL, worker, &w[t]))
			tap_bail("pthread_create failed");
	}
	for (t = 0; t < NTHREADS; t++) {
		void *r;

		pthread_join(w[t].tid, &r);
		failed += r != NULL;
		total += w[t].nb;
	}
	hak_l25_stats(&st1);
	for (t = 0; t < NTHREADS; t++)
		for (u = t + 1; u < NTHREADS; u++)
			for (i = 0; i < w[t].nb; i++)
				for (j = 0; j < w[u].nb; j++)
					shared += w[t].base[i] == w[u].base[j];
	/* past the shard cap (one or two CPUs' worth) threads share shards */
	if (st1.shard_cap < NTHREADS)
		shared = 0;
	tap_ok(!failed && total == NTHREADS * NREG && !shared,
	       "%u threads spanned %u pool regions, %u of them shared (%u failed, shard cap %zu)",
	       NTHREADS, total, shared, failed, st1.shard_cap);
	tap_ok(st1.region_maps - st0.region_maps >= total &&
	       st1.map_calls - st0.map_calls <= 24,
	       "%zu regions made, %zu mmap calls (at most 24)",
	       st1.region_maps - st0.region_maps, st1.map_calls - st0.map_calls);
	for (t = 0; t < NTHREADS; t++)
		for (k = 0; k < w[t].n; k++) {
			unsigned char *q = w[t].blk[k];

			for (j = 0; j < 64; j++)
				bad += q[j] != t + 1 || q[top - 64 + j] != t + 1;
		}
	tap_ok(bad == 0, "every block keeps what its thread wrote (%u bad bytes)", bad);
	for (t = 0; t < NTHREADS; t++)
		for (k = 0; k < w[t].n; k++)
			free(w[t].blk[k]);
	malloc_trim(0);
	hak_l25_stats(&st1);
	tap_ok(st1.reserved_bytes == 0,
	       "malloc_trim leaves no address space mapped ahead (%zu bytes)",
	       st1.reserved_bytes);
	pthread_barrier_destroy(&bar);
	tap_finish();
}
