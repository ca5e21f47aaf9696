// SPDX-License-Identifier: MIT
/*
 * collect_others: a refill that is about to take new pages first collects
 * the remote frees waiting on other heaps' slabs (lib/heap.c,
 * collect_others; Documentation/design.md, "Other heaps' remote frees
 * before new pages"). Past the cores a producer waiting for a CPU does not
 * collect what its consumers free to it, and before, the running producers
 * took new pages beside its emptied slabs: batch-pool at 16 threads held
 * 13 MB of slabs whose every block was freed, against 4 MB live.
 *
 * The shape, made deterministic: ROUNDS producer threads in turn allocate
 * NB blocks of BS and then block (no allocator call, as one waiting for a
 * CPU would), and a consumer thread, which never refills a bin (so it
 * caches none of them as an idle owner's), frees every one: they go home
 * to the blocked producer's slabs. The decay passes are off
 * (ct_no_decay), so nothing collects for an idle owner either.
 *   - the bytes in slabs, read after each producer's allocation (the
 *     peak: NB * BS live), stay under what they were once every thread
 *     had started (each warmed up first: the TLS prewarm box's slabs)
 *     plus twice NB * BS plus 1 MiB; they grew by NB * BS a round before
 *     (ROUNDS * NB * BS in all);
 *   - the consumer's frees of the earlier rounds were collected though
 *     their owners made no call;
 *   - every block kept its contents.
 */
#include <pthread.h>
#include <semaphore.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "../lib/crowd.h"

#define ROUNDS	6
#define NB	32768
#define BS	64

static void *blk[NB];
static sem_t started, turn[ROUNDS], allocated, go_free, freed;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static int stop;
static unsigned long bad;

static void sem_wait_all(sem_t *s)
{
	while (sem_wait(s))
		if (errno != EINTR)
			tap_bail("sem_wait");
}

static void *producer(void *arg)
{
	unsigned r = (unsigned)(uintptr_t)arg;

	/* attach and warm up (the TLS prewarm box's slabs) before the count */
	free(ct_launder(malloc(BS)));
	sem_post(&started);
	sem_wait_all(&turn[r]);
	ct_alloc_fill(blk, NB, BS);
	sem_post(&allocated);
	pthread_mutex_lock(&stop_mu);
	while (!stop)
		pthread_cond_wait(&stop_cv, &stop_mu);
	pthread_mutex_unlock(&stop_mu);
	return NULL;
}

static void *consumer(void *arg)
{
	unsigned r, i;

	(void)arg;
	for (r = 0; r < ROUNDS; r++) {
		sem_wait_all(&go_free);
		for (i = 0; i < NB; i++) {
			if (ct_check(blk[i], BS) != BS)
				bad++;
			free(blk[i]);
		}
		sem_post(&freed);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t prod[ROUNDS], cons;
	struct hak_stats st, first;
	struct crowd crowd;
	size_t peak = 0, bound;
	unsigned r;

	(void)argc;
	if (getenv("HAKMEM_SHARD_MIN") && strcmp(getenv("HAKMEM_SHARD_MIN"), "0") != 0)
		tap_skip_all("free-list sharding on: collect_others does not run");
	ct_no_decay(argv);
	tap_plan(3);
	if (crowd_start(&crowd))
		tap_bail("the crowd's threads");
	if (sem_init(&started, 0, 0) || sem_init(&allocated, 0, 0) || sem_init(&go_free, 0, 0) ||
	    sem_init(&freed, 0, 0))
		tap_bail("sem_init");
	for (r = 0; r < ROUNDS; r++)
		if (sem_init(&turn[r], 0, 0))
			tap_bail("sem_init");
	if (pthread_create(&cons, NULL, consumer, NULL))
		tap_bail("pthread_create");
	for (r = 0; r < ROUNDS; r++) {
		if (pthread_create(&prod[r], NULL, producer, (void *)(uintptr_t)r))
			tap_bail("pthread_create");
		sem_wait_all(&started);
	}
	hak_stats_get(&first);
	/* every thread is there: what the slabs hold beyond this is the blocks' */
	bound = first.slab_bytes + 2 * (size_t)NB * BS + (1u << 20);
	for (r = 0; r < ROUNDS; r++) {
		sem_post(&turn[r]);
		sem_wait_all(&allocated);
		hak_stats_get(&st);
		if (st.slab_bytes > peak)
			peak = st.slab_bytes;
		tap_diag("round %u: %zu bytes in slabs, %llu blocks collected", r, st.slab_bytes,
			 (unsigned long long)(st.remote_collected - first.remote_collected));
		sem_post(&go_free);
		sem_wait_all(&freed);
	}
	hak_stats_get(&st);
	pthread_mutex_lock(&stop_mu);
	stop = 1;
	pthread_cond_broadcast(&stop_cv);
	pthread_mutex_unlock(&stop_mu);
	for (r = 0; r < ROUNDS; r++)
		pthread_join(prod[r], NULL);
	pthread_join(cons, NULL);
	crowd_stop(&crowd);

	tap_ok(peak <= bound,
	       "bytes in slabs at most the threads' start + twice the %u live blocks' + 1 MiB "
	       "(start %zu, peak %zu, bound %zu)", NB, first.slab_bytes, peak, bound);
	/* a consumer's run holds up to 16 blocks unsent (HAK_RUN_MAX) */
	tap_ok(st.remote_collected - first.remote_collected >= (uint64_t)(ROUNDS - 1) * (NB - 16),
	       "the earlier rounds' frees collected with their owners blocked (%llu of %u)",
	       (unsigned long long)(st.remote_collected - first.remote_collected),
	       (ROUNDS - 1) * NB);
	tap_ok(bad == 0, "%u blocks kept their contents (%lu bad)", ROUNDS * NB, bad);
	tap_finish();
	return 0;
}
