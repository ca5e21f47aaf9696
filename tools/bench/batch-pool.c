// SPDX-License-Identifier: MIT
/*
 * batch-pool: the shape of xmalloc-test. <threads> / 2 producer threads
 * allocate batches of small blocks and put them in one shared pool; the
 * other threads take batches from the pool, whichever producer made them,
 * and free every block. Every free is remote, and a producer's slabs come
 * back in long chains from several consumers at once.
 *
 *   usage: batch-pool threads batches_per_producer batch min max seed
 *
 * The pool holds at most POOL_MAX batches; a producer that finds it full
 * waits. One operation = one block allocated and freed. Each block
 * carries its size and a cookie, checked at the free.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "bench.h"

#define POOL_MAX	64

struct batch {
	struct batch *next;
	unsigned n;
	void *blk[];
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static struct batch *pool;
static unsigned pool_len, producers_left;
static unsigned long per_producer, batch_len;
static size_t size_min, size_max;
static uint64_t seed;
static atomic_ulong bad;

struct worker {
	int id;
	int producer;
};

static void *producer(void *arg)
{
	struct worker *w = arg;
	struct rng r;

	rng_seed(&r, seed + (uint64_t)w->id);
	for (unsigned long i = 0; i < per_producer; i++) {
		struct batch *b = xmalloc(sizeof(*b) + batch_len * sizeof(void *));

		b->n = (unsigned)batch_len;
		for (unsigned long k = 0; k < batch_len; k++) {
			size_t sz = rng_range(&r, size_min, size_max);
			size_t *p = xmalloc(sz);

			p[0] = sz;
			p[1] = sz ^ (uintptr_t)p;
			b->blk[k] = p;
		}
		pthread_mutex_lock(&pool_lock);
		while (pool_len >= POOL_MAX)
			pthread_cond_wait(&pool_cv, &pool_lock);
		b->next = pool;
		pool = b;
		pool_len++;
		pthread_cond_broadcast(&pool_cv);
		pthread_mutex_unlock(&pool_lock);
	}
	pthread_mutex_lock(&pool_lock);
	producers_left--;
	pthread_cond_broadcast(&pool_cv);
	pthread_mutex_unlock(&pool_lock);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (;;) {
		struct batch *b;

		pthread_mutex_lock(&pool_lock);
		while (!pool && producers_left)
			pthread_cond_wait(&pool_cv, &pool_lock);
		b = pool;
		if (b) {
			pool = b->next;
			pool_len--;
			pthread_cond_broadcast(&pool_cv);
		}
		pthread_mutex_unlock(&pool_lock);
		if (!b)
			return NULL;
		for (unsigned k = 0; k < b->n; k++) {
			size_t *p = b->blk[k];

			if (p[1] != (p[0] ^ (uintptr_t)p))
				atomic_fetch_add(&bad, 1);
			free(p);
		}
		free(b);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	return w->producer ? producer(arg) : consumer(arg);
}

int main(int argc, char **argv)
{
	int threads;
	struct worker *ws;
	double t0, t1;
	char extra[64];

	if (argc != 7) {
		fprintf(stderr, "usage: %s threads batches_per_producer batch min max seed\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	per_producer = (unsigned long)arg_long(argv[2], "batches");
	batch_len = (unsigned long)arg_long(argv[3], "batch");
	size_min = (size_t)arg_long(argv[4], "min");
	size_max = (size_t)arg_long(argv[5], "max");
	seed = (uint64_t)arg_long(argv[6], "seed");
	if (threads < 2 || size_min < 2 * sizeof(size_t) || size_max < size_min || !batch_len)
		die("need threads >= 2, batch >= 1, 16 <= min <= max");
	producers_left = (unsigned)(threads / 2);
	ws = xmalloc(sizeof(*ws) * (size_t)threads);
	for (int i = 0; i < threads; i++) {
		ws[i].id = i;
		ws[i].producer = i < threads / 2;
	}
	t0 = bench_start();
	run_threads(threads, worker_main, ws, sizeof(*ws));
	t1 = bench_stop();
	if (atomic_load(&bad))
		die("corrupted block");
	snprintf(extra, sizeof(extra), " batch=%lu", batch_len);
	bench_report("batch-pool", threads,
		     (double)(threads / 2) * (double)per_producer * (double)batch_len,
		     t1 - t0, extra);
	free(ws);
	return 0;
}
