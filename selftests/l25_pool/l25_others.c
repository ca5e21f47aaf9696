// SPDX-License-Identifier: MIT
/*
 * l25_others: past the cores, a miss takes a resident free block of
 * another shard before a clean one of its own (boxes/l25_pool/l25.c,
 * shard_alloc_other; Documentation/design.md, "Mid blocks past the
 * cores"). batch-pool at 16 threads held 5-8 MB of 40 KiB blocks resident
 * for ~3 MB in use: each shard's regions touched up to its own peak, its
 * blocks freed by other threads waiting on its remote stack until one of
 * its own threads missed.
 *
 * The shape, made deterministic: ROUNDS producer threads, each in a shard
 * of its own up to the cap (the pool gives the first shard_cap threads to
 * take a mid block one each), take turns: one allocates NB blocks of
 * 36 KiB (the 40 KiB class) and writes a byte of every page, then waits;
 * the main thread, which takes no mid block (so has no shard), frees them
 * all: remote frees that no thread of that shard collects, and 20 ms
 * pass (a shard lends only when its threads have not missed for 12 ms,
 * L25_LAG_MS). A crowd of
 * parked threads keeps the process past the cores on any machine, and the
 * decay passes are off (they collect every shard's remote frees).
 *   - the blocks the pool holds touched (in use, remote included, plus
 *     freed resident: bytes_in_use + dirty_bytes), read after each
 *     producer's allocation, stay under one and a half rounds' worth:
 *     before, each round's producer took clean blocks in a shard of its
 *     own while the last round's sat freed in another (two rounds' worth
 *     or more);
 *   - every block kept its contents.
 */
#include <pthread.h>
#include <semaphore.h>
#include "l25_test.h"
#include "../lib/coarse_sleep.h"
#include "../lib/crowd.h"

#define ROUNDS	4
#define NB	16
#define BS	(36UL << 10)
#define STRIDE	(40UL << 10)

static void *blk[NB];
static sem_t turn[ROUNDS], allocated;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static int stop;

static void sem_wait_all(sem_t *s)
{
	while (sem_wait(s))
		if (errno != EINTR)
			tap_bail("sem_wait");
}

static void *producer(void *arg)
{
	unsigned r = (unsigned)(uintptr_t)arg, i;

	sem_wait_all(&turn[r]);
	for (i = 0; i < NB; i++) {
		blk[i] = malloc(lt_opaque(BS));
		if (!blk[i])
			tap_bail("malloc(%lu)", BS);
		lt_fill(blk[i], BS, 1);
	}
	sem_post(&allocated);
	/* parked, with no allocator call, as one waiting for a CPU */
	pthread_mutex_lock(&stop_mu);
	while (!stop)
		pthread_cond_wait(&stop_cv, &stop_mu);
	pthread_mutex_unlock(&stop_mu);
	return NULL;
}

/* Rerun with the decay passes off: they collect every shard's remote frees. */
static void no_decay(char **argv)
{
	if (getenv("HAKMEM_PURGE_DELAY_MS"))
		return;
	setenv("HAKMEM_PURGE_DELAY_MS", "0", 1);
	execv("/proc/self/exe", argv);
	tap_bail("execv");
}

int main(int argc, char **argv)
{
	pthread_t prod[ROUNDS];
	struct hak_l25_stats st;
	struct crowd crowd;
	size_t touched, peak = 0, bound = NB * STRIDE * 3 / 2;
	unsigned long bad = 0;
	unsigned r, i;

	(void)argc;
	no_decay(argv);
	tap_plan(2);
	if (crowd_start(&crowd))
		tap_bail("the crowd's threads");
	if (sem_init(&allocated, 0, 0))
		tap_bail("sem_init");
	for (r = 0; r < ROUNDS; r++) {
		if (sem_init(&turn[r], 0, 0))
			tap_bail("sem_init");
		if (pthread_create(&prod[r], NULL, producer, (void *)(uintptr_t)r))
			tap_bail("pthread_create");
	}
	for (r = 0; r < ROUNDS; r++) {
		/* the last producer's shard lends only once idle for L25_LAG_MS (12) */
		if (r)
			tst_sleep_ms(20);
		sem_post(&turn[r]);
		sem_wait_all(&allocated);
		hak_l25_stats(&st);
		touched = st.bytes_in_use + st.dirty_bytes;
		if (touched > peak)
			peak = touched;
		tap_diag("round %u: %zu KiB in use or freed resident, %zu regions, %zu shards", r,
			 touched >> 10, st.regions, st.shards);
		for (i = 0; i < NB; i++) {
			if (!lt_check_sparse(blk[i], BS))
				bad++;
			free(blk[i]);
		}
	}
	pthread_mutex_lock(&stop_mu);
	stop = 1;
	pthread_cond_broadcast(&stop_cv);
	pthread_mutex_unlock(&stop_mu);
	for (r = 0; r < ROUNDS; r++)
		pthread_join(prod[r], NULL);
	crowd_stop(&crowd);

	tap_ok(peak <= bound,
	       "blocks touched at most one and a half rounds' (%u blocks of %lu KiB): peak %zu KiB, "
	       "bound %zu KiB", NB, STRIDE >> 10, peak >> 10, bound >> 10);
	tap_ok(bad == 0, "%u blocks kept their contents (%lu bad)", ROUNDS * NB, bad);
	tap_finish();
	return 0;
}
