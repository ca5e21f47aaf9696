// SPDX-License-Identifier: MIT
/*
 * l25_threads: the pool under several threads.
 *  - shards follow the threads: the pool starts with one shard, and once
 *    4 more threads have made their first mid-size request it has one for
 *    each thread (the main one too), up to the cap, whatever the lock
 *    contention; the contention while the threads run is printed;
 *  - cross-thread frees: 2 producers hand pool blocks to 2 consumers that
 *    check and free them; every block comes back (blocks in use returns
 *    to where it was) and the frees were counted as remote;
 *  - threads that exit with blocks still live: another thread frees them.
 */
#include <pthread.h>
#include "l25_test.h"

#define NTHREADS	4

static volatile int stop;

struct hammer {
	unsigned long ops;
	uint64_t seed;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	void *keep[4] = { 0 };

	while (!stop) {
		for (int i = 0; i < 64; i++) {
			size_t n = 33000 + lt_rand(&h->seed) % 60000;
			unsigned k = (unsigned)(h->seed >> 20) & 3;

			free(keep[k]);
			keep[k] = malloc(lt_opaque(n));
			*(volatile char *)keep[k] = 1;
		}
		h->ops += 64;
	}
	for (int k = 0; k < 4; k++)
		free(keep[k]);
	return NULL;
}

/* Run NTHREADS hammers for up to secs, or until shards > target. */
static double hammer(double secs, size_t target, unsigned long *ops)
{
	pthread_t t[NTHREADS];
	struct hammer h[NTHREADS];
	struct hak_l25_stats st;
	double t0 = lt_now(), t1;

	stop = 0;
	for (int i = 0; i < NTHREADS; i++) {
		h[i] = (struct hammer){ .seed = 0x9e3779b97f4a7c15ULL * (i + 1) };
		pthread_create(&t[i], NULL, hammer_thread, &h[i]);
	}
	do {
		usleep(2000);
		hak_l25_stats(&st);
	} while (lt_now() - t0 < secs && (!target || st.shards < target));
	stop = 1;
	t1 = lt_now();
	*ops = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		*ops += h[i].ops;
	}
	return t1 - t0;
}

static void test_growth(void)
{
	struct hak_l25_stats a, b, c;
	unsigned long ops;
	size_t cont;
	double secs;
	void *p = malloc(lt_opaque(40000));	/* attach the main thread */

	*(volatile char *)p = 1;
	free(p);
	hak_l25_stats(&a);
	tap_ok(a.shards == 1, "the pool starts with one shard (cap %zu)", a.shard_cap);
	if (a.shard_cap < 2) {
		tap_skip("shard cap is 1 on this machine/config: nothing to grow");
		return;
	}
	secs = hammer(1.5, a.shard_cap < 8 ? a.shard_cap : 8, &ops);
	hak_l25_stats(&b);
	cont = b.contended - a.contended;
	/* 1 + NTHREADS threads: 8 shards wanted, fewer when capped. */
	tap_ok(b.shards >= (b.shard_cap < 8 ? b.shard_cap : 8) && b.shard_grows >= 1,
	       "%d more threads get shards of their own: %zu -> %zu (cap %zu) in %.3f s "
	       "(%lu ops, %zu contended locks)", NTHREADS, a.shards, b.shards,
	       b.shard_cap, secs, ops, cont);
	secs = hammer(0.5, 0, &ops);
	hak_l25_stats(&c);
	tap_diag("then %.0f kops/s with %zu shards (cap %zu), %zu contended locks in %lu ops",
		 ops / secs / 1e3, c.shards, c.shard_cap, c.contended - b.contended, ops);
	tap_ok(c.shards <= c.shard_cap, "shards stay within the cap");
}

/* ---- producers and consumers ---- */

#define RING	256
#define PER_PRODUCER	20000

struct ring {
	void *slot[RING];
	size_t len[RING];
	unsigned head, tail;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int producers;
};

static struct ring ring = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};
static int bad_blocks;

static void *producer(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 7919 + 1;

	for (int i = 0; i < PER_PRODUCER; i++) {
		size_t n = HAK_SMALL_MAX + 1 + lt_rand(&seed) % (L25_TEST_MAX - HAK_SMALL_MAX);
		void *p = malloc(lt_opaque(n));

		if (!p) {
			__atomic_fetch_add(&bad_blocks, 1, __ATOMIC_RELAXED);
			continue;
		}
		lt_fill(p, n, 1);
		pthread_mutex_lock(&ring.mu);
		while (ring.head - ring.tail == RING)
			pthread_cond_wait(&ring.cv, &ring.mu);
		ring.slot[ring.head % RING] = p;
		ring.len[ring.head % RING] = n;
		ring.head++;
		pthread_cond_broadcast(&ring.cv);
		pthread_mutex_unlock(&ring.mu);
	}
	pthread_mutex_lock(&ring.mu);
	ring.producers--;
	pthread_cond_broadcast(&ring.cv);
	pthread_mutex_unlock(&ring.mu);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (;;) {
		void *p;
		size_t n;

		pthread_mutex_lock(&ring.mu);
		while (ring.head == ring.tail && ring.producers)
			pthread_cond_wait(&ring.cv, &ring.mu);
		if (ring.head == ring.tail) {
			pthread_mutex_unlock(&ring.mu);
			return NULL;
		}
		p = ring.slot[ring.tail % RING];
		n = ring.len[ring.tail % RING];
		ring.tail++;
		pthread_cond_broadcast(&ring.cv);
		pthread_mutex_unlock(&ring.mu);
		if (!lt_check_sparse(p, n) || malloc_usable_size(p) < n)
			__atomic_fetch_add(&bad_blocks, 1, __ATOMIC_RELAXED);
		free(p);
	}
}

static void test_cross_thread(void)
{
	pthread_t t[4];
	struct hak_l25_stats a, b;
	double t0 = lt_now();

	hak_l25_stats(&a);
	ring.producers = 2;
	pthread_create(&t[0], NULL, producer, (void *)1);
	pthread_create(&t[1], NULL, producer, (void *)2);
	pthread_create(&t[2], NULL, consumer, NULL);
	pthread_create(&t[3], NULL, consumer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	hak_l25_stats(&b);
	tap_ok(bad_blocks == 0, "2 producers -> 2 consumers: %d pool blocks, every one intact "
	       "(%.2f s)", 2 * PER_PRODUCER, lt_now() - t0);
	tap_ok(b.blocks_in_use == a.blocks_in_use && b.frees - a.frees == 2 * PER_PRODUCER,
	       "every block came back (%zu in use before and %zu after)",
	       a.blocks_in_use, b.blocks_in_use);
	tap_ok(b.remote_frees - a.remote_frees > 0,
	       "frees from other threads' shards counted: %zu of %d",
	       b.remote_frees - a.remote_frees, 2 * PER_PRODUCER);
}

/* ---- blocks outliving their thread ---- */

#define ORPHANS	64

static void *orphan_maker(void *arg)
{
	void **out = arg;

	for (int i = 0; i < ORPHANS; i++) {
		size_t n = 40000 + (size_t)i * 3000;

		out[i] = malloc(lt_opaque(n));
		if (out[i])
			lt_fill(out[i], n, 1);
	}
	return NULL;
}

static void test_orphans(void)
{
	void *blk[ORPHANS];
	pthread_t t;
	int ok = 1;
	struct hak_l25_stats a, b;

	hak_l25_stats(&a);
	pthread_create(&t, NULL, orphan_maker, blk);
	pthread_join(t, NULL);
	for (int i = 0; i < ORPHANS; i++) {
		ok = ok && blk[i] && lt_check_sparse(blk[i], 40000 + (size_t)i * 3000);
		free(blk[i]);
	}
	hak_l25_stats(&b);
	/* Blocks in this thread's cache count as in use for their shard. */
	tap_ok(ok && a.blocks_in_use - a.cached == b.blocks_in_use - b.cached,
	       "blocks of an exited thread stay intact and are freed by another");
}

int main(void)
{
	tap_plan(0);
	test_growth();
	test_cross_thread();
	test_orphans();
	tap_finish();
}
