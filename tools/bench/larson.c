// SPDX-License-Identifier: MIT
/*
 * larson: the Larson & Krishnan server simulation ("Memory allocation for
 * long-running server applications", ISMM 1998), written from the paper's
 * description.
 *
 * Each of <threads> lanes owns a table of <chunks> blocks.  A lane's thread
 * repeatedly picks a random slot, frees the block in it and puts a fresh
 * block of random size in [min, max] there.  After <rounds> x <chunks> such
 * replacements the thread starts a successor thread that inherits the table
 * and exits, so blocks are freed by a different thread than the one that
 * allocated them and thread caches of exited threads must be dealt with.
 * The tables are first filled by the main thread (untimed).  After
 * <seconds> the lanes are stopped; one operation = one free + one malloc.
 *
 * With [generations], each lane stops after that many threads (so every
 * allocator does the same work: generations x rounds x chunks operations
 * per lane, for CPU time per operation under `perf stat`), and <seconds>
 * only limits the run; a run cut by it says so on stderr.
 *
 *   usage: larson seconds min max chunks rounds seed threads [generations]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "bench.h"

struct lane {
	void **slot;
	size_t chunks;
	size_t min, max;
	unsigned long rounds;
	unsigned long gen;	/* threads of this lane started so far */
	struct rng rng;
	uint64_t ops;
};

static atomic_int stop;
static unsigned long generations;	/* 0: until <seconds> */
static atomic_int live_lanes;
static atomic_int failed;

static void *lane_thread(void *arg);

static int start_lane(struct lane *l)
{
	pthread_attr_t attr;
	pthread_t t;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &attr, lane_thread, l);
	pthread_attr_destroy(&attr);
	return err;
}

static void *lane_thread(void *arg)
{
	struct lane *l = arg;
	struct rng r = l->rng;
	unsigned long n = l->rounds * l->chunks;
	uint64_t ops = 0;

	for (unsigned long i = 0; i < n; i++) {
		size_t victim, sz;

		if ((i & 255) == 0 &&
		    atomic_load_explicit(&stop, memory_order_relaxed))
			break;
		victim = rng_range(&r, 0, l->chunks - 1);
		free(l->slot[victim]);
		sz = rng_range(&r, l->min, l->max);
		l->slot[victim] = malloc(sz);
		if (!l->slot[victim]) {
			atomic_store(&failed, 1);
			break;
		}
		touch(l->slot[victim], sz, (unsigned char)i);
		ops++;
	}
	l->rng = r;
	l->ops += ops;

	/* Hand the table to a successor thread, unless time is up. */
	if ((generations && ++l->gen >= generations) ||
	    atomic_load(&stop) || atomic_load(&failed) || start_lane(l))
		atomic_fetch_sub(&live_lanes, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	struct lane *lanes;
	struct timespec ts;
	double secs, t0, t1, ops = 0;
	size_t min, max, chunks;
	unsigned long rounds, seed;
	int threads;
	char extra[128];

	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: %s seconds min max chunks rounds seed threads [generations]\n",
			argv[0]);
		return 2;
	}
	secs = strtod(argv[1], NULL);
	min = arg_long(argv[2], "min");
	max = arg_long(argv[3], "max");
	chunks = arg_long(argv[4], "chunks");
	rounds = arg_long(argv[5], "rounds");
	seed = arg_long(argv[6], "seed");
	threads = (int)arg_long(argv[7], "threads");
	if (argc == 9)
		generations = arg_long(argv[8], "generations");
	if (secs <= 0 || min < 1 || max < min || !chunks || !rounds || threads < 1)
		die("bad arguments");

	lanes = xmalloc(sizeof(*lanes) * threads);
	for (int i = 0; i < threads; i++) {
		struct lane *l = &lanes[i];

		l->chunks = chunks;
		l->min = min;
		l->max = max;
		l->rounds = rounds;
		l->ops = 0;
		l->gen = 0;
		rng_seed(&l->rng, seed * 7919 + i);
		l->slot = xmalloc(sizeof(void *) * chunks);
		for (size_t c = 0; c < chunks; c++) {
			size_t sz = rng_range(&l->rng, min, max);

			l->slot[c] = xmalloc(sz);
			touch(l->slot[c], sz, 1);
		}
	}

	atomic_store(&live_lanes, threads);
	t0 = bench_start();
	for (int i = 0; i < threads; i++)
		if (start_lane(&lanes[i]))
			die("pthread_create failed");
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	if (generations) {
		/* fixed work: wait for the lanes, <seconds> at most */
		while (atomic_load(&live_lanes) > 0 && now_sec() - t0 < secs)
			usleep(1000);
		if (atomic_load(&live_lanes) > 0)
			fprintf(stderr, "larson: stopped after %.2f s, before %lu generations\n",
				secs, generations);
	} else {
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	atomic_store(&stop, 1);
	while (atomic_load(&live_lanes) > 0)
		usleep(200);
	t1 = bench_stop();
	if (atomic_load(&failed))
		die("malloc failed");

	for (int i = 0; i < threads; i++)
		ops += (double)lanes[i].ops;
	printf("Throughput = %.0f operations per second\n", ops / (t1 - t0));
	snprintf(extra, sizeof(extra), " min=%zu max=%zu chunks=%zu", min, max,
		 chunks);
	bench_report("larson", threads, ops, t1 - t0, extra);

	for (int i = 0; i < threads; i++) {
		for (size_t c = 0; c < chunks; c++)
			free(lanes[i].slot[c]);
		free(lanes[i].slot);
	}
	free(lanes);
	return 0;
}
