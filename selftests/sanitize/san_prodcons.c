// SPDX-License-Identifier: MIT
/*
 * san_prodcons: 8 threads, 4 producers and 4 consumers
 * (HAKMEM_SAN_THREADS=T: T/2 producers, the rest consumers), every block
 * allocated by one thread and freed by another through hak_malloc and
 * hak_free. The hand-off is a mutex-protected ring, so any data race a
 * sanitizer reports is inside the allocator: the remote-free push, the
 * owner's pending collection, heap pooling at thread exit. Each block is
 * stamped from its address and size and checked by the consumer. The
 * rounds use fresh threads, so heaps are pooled and adopted between them.
 *
 * Usage: san_prodcons [scale]   (blocks per round = 3000 x scale)
 */
#include <pthread.h>

#include "san_test.h"

#define RING	256

struct item {
	void *p;
	size_t n;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	struct item ring[RING];
	unsigned head, count, producers;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER,
	.not_full = PTHREAD_COND_INITIALIZER };

static unsigned long per_producer;
static unsigned long bad, consumed, nulls;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void put(struct item it)
{
	pthread_mutex_lock(&q.lock);
	while (q.count == RING)
		pthread_cond_wait(&q.not_full, &q.lock);
	q.ring[(q.head + q.count) % RING] = it;
	q.count++;
	pthread_cond_signal(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
}

/* 0 when every producer is done and the ring is empty. */
static int get(struct item *it)
{
	pthread_mutex_lock(&q.lock);
	while (q.count == 0 && q.producers)
		pthread_cond_wait(&q.not_empty, &q.lock);
	if (!q.count) {
		pthread_mutex_unlock(&q.lock);
		return 0;
	}
	*it = q.ring[q.head];
	q.head = (q.head + 1) % RING;
	q.count--;
	pthread_cond_signal(&q.not_full);
	pthread_mutex_unlock(&q.lock);
	return 1;
}

static void *producer(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	unsigned long n_null = 0;

	for (unsigned long k = 0; k < per_producer; k++) {
		struct item it = { .n = san_size(&rng) };

		/* large blocks are rare in this shape: keep the ring cheap */
		if (it.n > 64 * 1024)
			it.n = 1 + it.n % 4096;
		it.p = hak_malloc(it.n);
		if (!it.p) {
			n_null++;
			continue;
		}
		san_fill(it.p, it.n);
		put(it);
	}
	pthread_mutex_lock(&q.lock);
	if (--q.producers == 0)
		pthread_cond_broadcast(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
	pthread_mutex_lock(&count_lock);
	nulls += n_null;
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

static void *consumer(void *arg)
{
	unsigned long n_bad = 0, got = 0;
	struct item it;

	(void)arg;
	while (get(&it)) {
		if (!san_check(it.p, it.n))
			n_bad++;
		hak_free(it.p);
		got++;
		/* some local churn too, so the consumer's own caches overflow */
		hak_free(hak_malloc(16 + got % 700));
	}
	pthread_mutex_lock(&count_lock);
	bad += n_bad;
	consumed += got;
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long scale = san_scale(argc, argv);
	unsigned rounds = 3;
	unsigned nthr = san_threads(8), nprod = nthr / 2;
	struct hak_stats st0, st1;

	per_producer = 3000 * scale / nprod;
	tap_plan(3);
	tap_diag("%u rounds of %u producers -> %u consumers, %lu blocks each", rounds, nprod,
		 nthr - nprod, per_producer * nprod);
	hak_stats_get(&st0);
	for (unsigned r = 0; r < rounds; r++) {
		pthread_t th[SAN_MAX_THREADS];

		q.producers = nprod;
		for (unsigned i = 0; i < nthr; i++)
			if (pthread_create(&th[i], NULL, i < nprod ? producer : consumer,
					   (void *)(uintptr_t)(r * SAN_MAX_THREADS + i + 1)))
				tap_bail("pthread_create failed");
		for (unsigned i = 0; i < nthr; i++)
			pthread_join(th[i], NULL);
	}
	hak_stats_get(&st1);
	tap_ok(bad == 0 && nulls == 0, "%lu blocks freed cross-thread: %lu damaged, %lu NULL",
	       consumed, bad, nulls);
	tap_ok(consumed == rounds * per_producer * nprod, "every block produced was consumed");
	tap_ok(st1.remote_frees > st0.remote_frees,
	       "the remote-free path ran (%llu blocks freed to another thread's slab)",
	       (unsigned long long)(st1.remote_frees - st0.remote_frees));
	tap_finish();
}
