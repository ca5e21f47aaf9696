// SPDX-License-Identifier: MIT
/*
 * cache-scratch: passive false sharing, after the cache-scratch test of
 * Berger et al. ("Hoard: a scalable memory allocator for multithreaded
 * applications", ASPLOS 2000), written from the paper's description.
 *
 * The main thread allocates one small object per worker back to back (so
 * they likely share a cache line) and hands one to each worker.  A worker
 * frees its object, then <iterations> times allocates an object of the same
 * size, writes every byte of it <repetitions> times and frees it.  An
 * allocator that gives the freed object (or its neighbours) back to the
 * worker makes the workers write to one cache line and slows to a crawl;
 * one that keeps per-thread memory apart runs at full speed.
 *
 *   usage: cache-scratch threads iterations objsize repetitions
 *
 * One operation = one pass of writes over an object.
 */
#include <pthread.h>
#include "bench.h"

struct worker {
	void *first;
	unsigned long iterations, repetitions;
	size_t objsize;
};

static void *worker_thread(void *arg)
{
	struct worker *w = arg;

	free(w->first);
	for (unsigned long i = 0; i < w->iterations; i++) {
		volatile unsigned char *p = malloc(w->objsize);

		if (!p)
			die("malloc failed");
		for (unsigned long r = 0; r < w->repetitions; r++)
			for (size_t b = 0; b < w->objsize; b++)
				p[b] = (unsigned char)(p[b] + 1);
		free((void *)p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	unsigned long iterations, repetitions;
	size_t objsize;
	int threads;
	double t0, t1;
	char extra[96];

	if (argc != 5) {
		fprintf(stderr, "usage: %s threads iterations objsize repetitions\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	iterations = arg_long(argv[2], "iterations");
	objsize = arg_long(argv[3], "objsize");
	repetitions = arg_long(argv[4], "repetitions");
	if (threads < 1 || !objsize)
		die("bad arguments");

	w = xmalloc(sizeof(*w) * threads);
	for (int i = 0; i < threads; i++) {
		w[i].first = xmalloc(objsize);
		memset(w[i].first, 0, objsize);
		w[i].iterations = iterations;
		w[i].repetitions = repetitions;
		w[i].objsize = objsize;
	}
	t0 = bench_start();
	run_threads(threads, worker_thread, w, sizeof(*w));
	t1 = bench_stop();

	snprintf(extra, sizeof(extra), " objsize=%zu repetitions=%lu", objsize,
		 repetitions);
	bench_report("cache-scratch", threads,
		     (double)iterations * repetitions * threads, t1 - t0, extra);
	free(w);
	return 0;
}
