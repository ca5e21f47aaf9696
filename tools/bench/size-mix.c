// SPDX-License-Identifier: MIT
/*
 * size-mix: per-thread working sets of blocks with log-uniform random sizes
 * in [min, max]; each operation frees a random block and allocates a new one
 * in its place, then writes one byte in every 4 KiB page of it (programs use
 * the memory they ask for, so an allocator that returns memory to the
 * kernel too eagerly pays the page faults here).
 *
 *   usage: size-mix name threads ops_per_thread min max slots seed [max_seconds]
 *
 * With max_seconds a thread stops early when that much time has passed
 * (allocators differ 30x on large blocks; the throughput is ops done / time).
 * The suite runs it as "mid-size" (1 KiB..256 KiB) and "large-block"
 * (64 KiB..16 MiB).  One operation = one free + one malloc + the writes.
 */
#include <pthread.h>
#include "bench.h"

#define PAGE	4096

struct worker {
	void **slot;
	size_t nslots, min, max;
	unsigned long ops, done;
	double deadline;
	struct rng rng;
};

static void use_block(void *p, size_t sz, unsigned char v)
{
	volatile unsigned char *c = p;

	for (size_t off = 0; off < sz; off += PAGE)
		c[off] = v;
	c[sz - 1] = v;
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	unsigned long i;

	for (i = 0; i < w->ops; i++) {
		size_t idx;
		size_t sz;

		if ((i & 7) == 0 && w->deadline > 0 && now_sec() > w->deadline)
			break;
		idx = rng_range(&r, 0, w->nslots - 1);
		sz = rng_log_range(&r, w->min, w->max);
		free(w->slot[idx]);
		w->slot[idx] = malloc(sz);
		if (!w->slot[idx])
			die("malloc failed");
		use_block(w->slot[idx], sz, (unsigned char)i);
	}
	w->done = i;
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	const char *name;
	unsigned long ops, seed;
	double max_seconds = 0, done = 0;
	size_t min, max, slots;
	int threads;
	double t0, t1;
	char extra[96];

	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: %s name threads ops_per_thread min max slots seed [max_seconds]\n",
			argv[0]);
		return 2;
	}
	name = argv[1];
	threads = (int)arg_long(argv[2], "threads");
	ops = arg_long(argv[3], "ops_per_thread");
	min = arg_long(argv[4], "min");
	max = arg_long(argv[5], "max");
	slots = arg_long(argv[6], "slots");
	seed = arg_long(argv[7], "seed");
	if (argc == 9)
		max_seconds = strtod(argv[8], NULL);
	if (threads < 1 || !min || max < min || !slots)
		die("bad arguments");

	w = xmalloc(sizeof(*w) * threads);
	for (int i = 0; i < threads; i++) {
		w[i].nslots = slots;
		w[i].min = min;
		w[i].max = max;
		w[i].ops = ops;
		rng_seed(&w[i].rng, seed * 977 + i);
		w[i].slot = calloc(slots, sizeof(void *));
		if (!w[i].slot)
			die("out of memory");
	}
	t0 = bench_start();
	for (int i = 0; i < threads; i++)
		w[i].deadline = max_seconds > 0 ? t0 + max_seconds : 0;
	run_threads(threads, worker_thread, w, sizeof(*w));
	t1 = bench_stop();
	for (int i = 0; i < threads; i++)
		done += (double)w[i].done;

	snprintf(extra, sizeof(extra), " min=%zu max=%zu slots=%zu", min, max,
		 slots);
	bench_report(name, threads, done, t1 - t0, extra);
	for (int i = 0; i < threads; i++) {
		for (size_t s = 0; s < slots; s++)
			free(w[i].slot[s]);
		free(w[i].slot);
	}
	free(w);
	return 0;
}
