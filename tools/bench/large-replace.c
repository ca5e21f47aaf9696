// SPDX-License-Identifier: MIT
/*
 * large-replace: a steady set of big buffers, each replaced now and then,
 * the shape of image, frame and I/O buffers in long-running programs.
 * <slots> buffers of <min>..<max> bytes (uniform) live per thread; each
 * operation picks one at random, frees it, allocates a new one of a random
 * size and zero-fills it with memset (as a program that clears its buffer
 * does).  An allocator that unmaps freed buffers or purges them at once pays
 * a page fault for every page of every new buffer; one that keeps them
 * resident and reuses them pays only the memset.
 *
 *   usage: large-replace threads ops_per_thread slots min max seed [max_seconds]
 *
 * Each thread first fills its slots (not timed: every allocator pays the
 * same first-touch faults), then replaces; with max_seconds it stops when
 * that much time has passed.  The throughput is ops done / the longest
 * thread's replacement time.  One operation = one free + one malloc + the
 * memset.
 */
#include <pthread.h>
#include "bench.h"

struct worker {
	void **slot;
	size_t nslots, min, max;
	unsigned long ops, done;
	double max_seconds, secs;
	struct rng rng;
};

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	unsigned long i;
	double t0, deadline;

	for (i = 0; i < w->nslots; i++) {
		size_t sz = rng_range(&r, w->min, w->max);

		w->slot[i] = malloc(sz);
		if (!w->slot[i])
			die("malloc failed");
		memset(w->slot[i], 0, sz);
	}
	t0 = now_sec();
	deadline = w->max_seconds > 0 ? t0 + w->max_seconds : 0;
	for (i = 0; i < w->ops; i++) {
		size_t idx, sz;

		if (deadline > 0 && now_sec() > deadline)
			break;
		idx = rng_range(&r, 0, w->nslots - 1);
		sz = rng_range(&r, w->min, w->max);
		free(w->slot[idx]);
		w->slot[idx] = malloc(sz);
		if (!w->slot[idx])
			die("malloc failed");
		memset(w->slot[idx], 0, sz);
	}
	w->done = i;
	w->secs = now_sec() - t0;
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	unsigned long ops, seed;
	double max_seconds = 0, done = 0, secs = 0;
	size_t min, max, slots;
	int threads;
	char extra[96];

	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: %s threads ops_per_thread slots min max seed [max_seconds]\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	ops = arg_long(argv[2], "ops_per_thread");
	slots = arg_long(argv[3], "slots");
	min = arg_long(argv[4], "min");
	max = arg_long(argv[5], "max");
	seed = arg_long(argv[6], "seed");
	if (argc == 8)
		max_seconds = strtod(argv[7], NULL);
	if (threads < 1 || !min || max < min || !slots)
		die("bad arguments");

	w = xmalloc(sizeof(*w) * threads);
	for (int i = 0; i < threads; i++) {
		w[i].nslots = slots;
		w[i].min = min;
		w[i].max = max;
		w[i].ops = ops;
		w[i].max_seconds = max_seconds;
		rng_seed(&w[i].rng, seed * 7919 + i);
		w[i].slot = calloc(slots, sizeof(void *));
		if (!w[i].slot)
			die("out of memory");
	}
	run_threads(threads, worker_thread, w, sizeof(*w));
	for (int i = 0; i < threads; i++) {
		done += (double)w[i].done;
		if (w[i].secs > secs)
			secs = w[i].secs;
	}

	snprintf(extra, sizeof(extra), " slots=%zu min=%zu max=%zu", slots, min,
		 max);
	bench_report("large-replace", threads, done, secs, extra);
	for (int i = 0; i < threads; i++) {
		for (size_t s = 0; s < slots; s++)
			free(w[i].slot[s]);
		free(w[i].slot);
	}
	free(w);
	return 0;
}
