// SPDX-License-Identifier: MIT
/*
 * footprint: a phased workload that measures how much memory an allocator
 * holds, at its peak and after the program has freed most of what it used.
 *
 *   usage: footprint threads cycles small_objects seed
 *
 * Each cycle (per thread):
 *   1. allocate <small_objects> blocks of 16..256 bytes;
 *   2. free 90% of them at random (the survivors pin scattered pages);
 *   3. allocate medium blocks of 4..64 KiB totalling about as much as the
 *      small blocks did, then free them all;
 *   4. allocate and free another batch of small blocks (reuse of the holes).
 * Survivors of every cycle stay live to the end.  After the last cycle the
 * program idles 50 ms and performs a few allocations (allocators that
 * return memory lazily get the chance to), then reports VmHWM (peak RSS)
 * and VmRSS (end RSS) together with the bytes still live.
 * One operation = one malloc or free.
 */
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

struct worker {
	unsigned long cycles, nsmall;
	struct rng rng;
	void **keep;
	size_t nkeep;
	size_t live_bytes;
	double ops;
};

static void *alloc_touch(size_t sz, unsigned char v)
{
	void *p = malloc(sz);

	if (!p)
		die("malloc failed");
	memset(p, v, sz);
	return p;
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	void **small = xmalloc(sizeof(void *) * w->nsmall);
	size_t *ssize = xmalloc(sizeof(size_t) * w->nsmall);
	void **mid = xmalloc(sizeof(void *) * w->nsmall);
	double ops = 0;

	for (unsigned long c = 0; c < w->cycles; c++) {
		size_t total = 0, nmid = 0, mid_total = 0;

		for (size_t i = 0; i < w->nsmall; i++) {
			ssize[i] = rng_range(&r, 16, 256);
			small[i] = alloc_touch(ssize[i], (unsigned char)i);
			total += ssize[i];
		}
		ops += (double)w->nsmall;
		for (size_t i = 0; i < w->nsmall; i++) {
			if (rng_range(&r, 0, 9) == 0) {
				w->keep[w->nkeep++] = small[i];
				w->live_bytes += ssize[i];
			} else {
				free(small[i]);
				ops++;
			}
		}
		while (mid_total < total && nmid < w->nsmall) {
			size_t sz = rng_log_range(&r, 4096, 65536);

			mid[nmid] = alloc_touch(sz, (unsigned char)nmid);
			nmid++;
			mid_total += sz;
		}
		for (size_t i = 0; i < nmid; i++)
			free(mid[i]);
		ops += 2.0 * (double)nmid;
		for (size_t i = 0; i < w->nsmall / 2; i++)
			small[i] = alloc_touch(rng_range(&r, 16, 256), 3);
		for (size_t i = 0; i < w->nsmall / 2; i++)
			free(small[i]);
		ops += (double)w->nsmall;
	}
	free(small);
	free(ssize);
	free(mid);
	w->ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	unsigned long cycles, nsmall, seed;
	int threads;
	double t0, t1, ops = 0;
	size_t live = 0;
	char extra[128];

	if (argc != 5) {
		fprintf(stderr, "usage: %s threads cycles small_objects seed\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	cycles = arg_long(argv[2], "cycles");
	nsmall = arg_long(argv[3], "small_objects");
	seed = arg_long(argv[4], "seed");
	if (threads < 1 || !cycles || !nsmall)
		die("bad arguments");

	w = xmalloc(sizeof(*w) * threads);
	for (int i = 0; i < threads; i++) {
		w[i].cycles = cycles;
		w[i].nsmall = nsmall;
		rng_seed(&w[i].rng, seed * 4099 + i);
		w[i].keep = xmalloc(sizeof(void *) * nsmall * cycles);
		w[i].nkeep = 0;
		w[i].live_bytes = 0;
	}
	t0 = bench_start();
	run_threads(threads, worker_thread, w, sizeof(*w));
	t1 = bench_stop();

	/* Idle, then a little activity: lazy purging gets its chance. */
	usleep(50000);
	for (int i = 0; i < 1000; i++)
		free(alloc_touch(64, 1));

	for (int i = 0; i < threads; i++) {
		ops += w[i].ops;
		live += w[i].live_bytes;
	}
	snprintf(extra, sizeof(extra), " live_kb=%zu", live / 1024);
	bench_report("footprint", threads, ops, t1 - t0, extra);
	for (int i = 0; i < threads; i++) {
		for (size_t k = 0; k < w[i].nkeep; k++)
			free(w[i].keep[k]);
		free(w[i].keep);
	}
	free(w);
	return 0;
}
