// SPDX-License-Identifier: MIT
/*
 * producer-consumer: <threads> producer threads allocate blocks and hand
 * them to <threads> consumer threads, which free them.  Every free is a
 * cross-thread (remote) free, the pattern of pipelines and message queues.
 *
 *   usage: producer-consumer threads ops_per_producer min max seed
 *
 * Each producer/consumer pair shares a single-producer single-consumer ring
 * of batches of BATCH pointers, so the queue costs one synchronisation per
 * BATCH blocks and the allocator dominates.  One operation = one block
 * allocated by a producer and freed by its consumer.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "bench.h"

#define BATCH		64
#define RING		16	/* batches in flight per pair */
#define CACHELINE	64

struct pair {
	_Alignas(CACHELINE) atomic_ulong head;	/* batches consumed */
	_Alignas(CACHELINE) atomic_ulong tail;	/* batches produced */
	_Alignas(CACHELINE) void *ring[RING][BATCH];
	unsigned long batches;
	size_t min, max;
	uint64_t seed;
};

static atomic_int go;

static void wait_go(void)
{
	while (!atomic_load_explicit(&go, memory_order_acquire))
		sched_yield();
}

static void backoff(unsigned *spins)
{
	if (++*spins < 64)
		__builtin_ia32_pause();
	else
		sched_yield();
}

static void *producer(void *arg)
{
	struct pair *pr = arg;
	struct rng r;

	rng_seed(&r, pr->seed);
	wait_go();
	for (unsigned long b = 0; b < pr->batches; b++) {
		unsigned long head;
		unsigned s = 0;
		void **slot = pr->ring[b % RING];

		for (;;) {
			head = atomic_load_explicit(&pr->head, memory_order_acquire);
			if (b - head < RING)
				break;
			backoff(&s);
		}
		for (int i = 0; i < BATCH; i++) {
			size_t sz = rng_range(&r, pr->min, pr->max);
			void *p = malloc(sz);

			if (!p)
				die("malloc failed");
			touch(p, sz, (unsigned char)i);
			slot[i] = p;
		}
		atomic_store_explicit(&pr->tail, b + 1, memory_order_release);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct pair *pr = arg;

	wait_go();
	for (unsigned long b = 0; b < pr->batches; b++) {
		void **slot = pr->ring[b % RING];
		unsigned s = 0;

		while (atomic_load_explicit(&pr->tail, memory_order_acquire) <= b)
			backoff(&s);
		for (int i = 0; i < BATCH; i++)
			free(slot[i]);
		atomic_store_explicit(&pr->head, b + 1, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct pair *pairs;
	pthread_t *tids;
	unsigned long ops, seed;
	size_t min, max;
	int threads;
	double t0, t1;
	char extra[96];

	if (argc != 6) {
		fprintf(stderr, "usage: %s threads ops_per_producer min max seed\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	ops = arg_long(argv[2], "ops_per_producer");
	min = arg_long(argv[3], "min");
	max = arg_long(argv[4], "max");
	seed = arg_long(argv[5], "seed");
	if (threads < 1 || ops < BATCH || !min || max < min)
		die("bad arguments");

	if (posix_memalign((void **)&pairs, CACHELINE, sizeof(*pairs) * threads))
		die("out of memory");
	tids = xmalloc(sizeof(*tids) * 2 * threads);
	for (int i = 0; i < threads; i++) {
		atomic_init(&pairs[i].head, 0);
		atomic_init(&pairs[i].tail, 0);
		pairs[i].batches = ops / BATCH;
		pairs[i].min = min;
		pairs[i].max = max;
		pairs[i].seed = seed * 31 + i;
		if (pthread_create(&tids[2 * i], NULL, producer, &pairs[i]) ||
		    pthread_create(&tids[2 * i + 1], NULL, consumer, &pairs[i]))
			die("pthread_create failed");
	}
	t0 = now_sec();
	atomic_store_explicit(&go, 1, memory_order_release);
	for (int i = 0; i < 2 * threads; i++)
		pthread_join(tids[i], NULL);
	t1 = now_sec();

	snprintf(extra, sizeof(extra), " min=%zu max=%zu batch=%d", min, max,
		 BATCH);
	bench_report("producer-consumer", threads,
		     (double)(ops / BATCH * BATCH) * threads, t1 - t0, extra);
	free(tids);
	free(pairs);
	return 0;
}
