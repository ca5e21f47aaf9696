// SPDX-License-Identifier: MIT
/*
 * producer-consumer: <threads> producer threads allocate blocks and hand
 * them to <threads> consumer threads, which free them.  Every free is a
 * cross-thread (remote) free, the pattern of pipelines and message queues.
 *
 *   usage: producer-consumer threads ops_per_producer min max seed [pin [depth]]
 *
 * Each producer/consumer pair shares a single-producer single-consumer ring
 * of batches of BATCH pointers, so the queue costs one synchronisation per
 * BATCH blocks and the allocator dominates.  A producer may run up to depth
 * batches (1..RING, default RING) ahead of its consumer.  One operation =
 * one block allocated by a producer and freed by its consumer.
 *
 * Placement (pin): by default (1) both threads of pair i are pinned to the
 * i-th CPU the process may use (modulo their number), so a pair takes
 * turns on one CPU: the producer runs until depth batches are in flight
 * and yields, the consumer frees them all and yields.  Every free is still
 * a remote free (another thread's cache), and the hand-over is the same for
 * every allocator (two context switches per depth batches).  With depth 1
 * the queue holds at most one batch even if the allocator yields inside
 * malloc; deeper, such a yield lets the consumer drain the ring early.
 *
 * Unpinned (0), where the scheduler put the two ends decided the result:
 * both on one CPU (a hand-over every full ring, as pinned) or one on each,
 * where every block's cache lines cross between the cores and the CPU per
 * run itself took one of two values ~3x apart; so one build measured 8.6
 * to 52.8 Mops/s in five rounds (Documentation/benchmarks.md,
 * "producer-consumer: pinned pairs").
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "bench.h"

#define BATCH		64
#define RING		16	/* most batches in flight per pair */
#define CACHELINE	64

struct pair {
	_Alignas(CACHELINE) atomic_ulong head;	/* batches consumed */
	_Alignas(CACHELINE) atomic_ulong tail;	/* batches produced */
	_Alignas(CACHELINE) void *ring[RING][BATCH];
	unsigned long batches;
	unsigned long depth;	/* batches the producer may run ahead */
	size_t min, max;
	uint64_t seed;
};

static atomic_int go;
static int pinned;	/* both ends of a pair share one CPU */

static void wait_go(void)
{
	while (!atomic_load_explicit(&go, memory_order_acquire))
		sched_yield();
}

/*
 * Wait for the other end of the pair.  Pinned, it shares our CPU and can
 * only make progress once we yield, so spinning would only add a constant
 * to every hand-over.
 */
static void backoff(unsigned *spins)
{
	if (!pinned && ++*spins < 64)
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
			if (b - head < pr->depth)
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
	unsigned long ops, seed, depth;
	size_t min, max;
	int threads, ncpus = 0;
	cpu_set_t allowed;
	pthread_attr_t attr;
	double t0, t1;
	char extra[96];

	if (argc < 6 || argc > 8) {
		fprintf(stderr, "usage: %s threads ops_per_producer min max seed [pin [depth]]\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	ops = arg_long(argv[2], "ops_per_producer");
	min = arg_long(argv[3], "min");
	max = arg_long(argv[4], "max");
	seed = arg_long(argv[5], "seed");
	pinned = argc > 6 ? arg_long(argv[6], "pin") != 0 : 1;
	depth = argc > 7 ? (unsigned long)arg_long(argv[7], "depth") : RING;
	if (threads < 1 || ops < BATCH || !min || max < min || !depth ||
	    depth > RING)
		die("bad arguments");
	if (pinned && sched_getaffinity(0, sizeof(allowed), &allowed))
		die("sched_getaffinity failed");
	if (pinned)
		ncpus = CPU_COUNT(&allowed);

	if (posix_memalign((void **)&pairs, CACHELINE, sizeof(*pairs) * threads))
		die("out of memory");
	tids = xmalloc(sizeof(*tids) * 2 * threads);
	for (int i = 0; i < threads; i++) {
		atomic_init(&pairs[i].head, 0);
		atomic_init(&pairs[i].tail, 0);
		pairs[i].batches = ops / BATCH;
		pairs[i].depth = depth;
		pairs[i].min = min;
		pairs[i].max = max;
		pairs[i].seed = seed * 31 + i;
		if (pthread_attr_init(&attr))
			die("pthread_attr_init failed");
		if (pinned) {
			cpu_set_t one;
			int cpu = -1;

			/* The (i mod ncpus)-th CPU of the allowed set. */
			for (int n = i % ncpus; n >= 0; n--)
				while (!CPU_ISSET(++cpu, &allowed))
					;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			if (pthread_attr_setaffinity_np(&attr, sizeof(one), &one))
				die("pthread_attr_setaffinity_np failed");
		}
		if (pthread_create(&tids[2 * i], &attr, producer, &pairs[i]) ||
		    pthread_create(&tids[2 * i + 1], &attr, consumer, &pairs[i]))
			die("pthread_create failed");
		pthread_attr_destroy(&attr);
	}
	t0 = bench_start();
	atomic_store_explicit(&go, 1, memory_order_release);
	for (int i = 0; i < 2 * threads; i++)
		pthread_join(tids[i], NULL);
	t1 = bench_stop();

	snprintf(extra, sizeof(extra),
		 " min=%zu max=%zu batch=%d depth=%lu pinned=%d", min, max, BATCH,
		 depth, pinned);
	bench_report("producer-consumer", threads,
		     (double)(ops / BATCH * BATCH) * threads, t1 - t0, extra);
	free(tids);
	free(pairs);
	return 0;
}
