// SPDX-License-Identifier: MIT
/*
 * realloc-chain: growth by realloc, the pattern of string builders and
 * dynamic arrays.  <chains> buffers live at once; each step picks one at
 * random and grows it by a random 1..256 bytes (writing the new tail), so
 * most steps stay inside the current size class and a good allocator
 * grows in place.  A buffer that reaches its random limit (up to
 * <max_size>) is freed and restarted at 16 bytes.
 *
 *   usage: realloc-chain threads ops_per_thread chains max_size seed [max_seconds [grow_pct]]
 *
 * With max_seconds a thread stops early when that much time has passed.
 * With grow_pct a step grows a buffer by 1..max(256, size * grow_pct / 100)
 * bytes instead, so buffers cross 32 KiB, 1 MiB and 16 MiB in a few
 * hundred steps (the suite's "realloc-large" row: vectors and string
 * builders that double, logs and network buffers that grow a lot).
 * One operation = one realloc.
 */
#include <pthread.h>
#include "bench.h"

struct chain {
	unsigned char *p;
	size_t size, limit;
};

struct worker {
	unsigned long ops, done;
	double deadline;
	size_t nchains, max_size, grow_pct;
	struct rng rng;
};

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	struct chain *c = calloc(w->nchains, sizeof(*c));
	unsigned long i;

	if (!c)
		die("out of memory");
	for (i = 0; i < w->ops; i++) {
		struct chain *ch = &c[rng_range(&r, 0, w->nchains - 1)];
		size_t step = w->grow_pct ? ch->size / 100 * w->grow_pct : 0;
		size_t grow = rng_range(&r, 1, step > 256 ? step : 256);
		unsigned char *np;

		if ((i & 255) == 0 && w->deadline > 0 && now_sec() > w->deadline)
			break;
		if (!ch->p || ch->size + grow > ch->limit) {
			free(ch->p);
			ch->size = 16;
			ch->limit = rng_log_range(&r, 4096, w->max_size);
			ch->p = malloc(ch->size);
			if (!ch->p)
				die("malloc failed");
			memset(ch->p, 0, ch->size);
			continue;
		}
		np = realloc(ch->p, ch->size + grow);
		if (!np)
			die("realloc failed");
		memset(np + ch->size, (int)(i & 0xff), grow);
		ch->p = np;
		ch->size += grow;
	}
	w->done = i;
	for (size_t k = 0; k < w->nchains; k++)
		free(c[k].p);
	free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	unsigned long ops, seed;
	double max_seconds = 0, done = 0;
	size_t chains, max_size, grow_pct = 0;
	int threads;
	double t0, t1;
	char extra[96];

	if (argc < 6 || argc > 8) {
		fprintf(stderr, "usage: %s threads ops_per_thread chains max_size seed [max_seconds [grow_pct]]\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	ops = arg_long(argv[2], "ops_per_thread");
	chains = arg_long(argv[3], "chains");
	max_size = arg_long(argv[4], "max_size");
	seed = arg_long(argv[5], "seed");
	if (argc >= 7)
		max_seconds = strtod(argv[6], NULL);
	if (argc == 8)
		grow_pct = arg_long(argv[7], "grow_pct");
	if (threads < 1 || !chains || max_size < 4096)
		die("bad arguments (max_size >= 4096)");

	w = xmalloc(sizeof(*w) * threads);
	for (int i = 0; i < threads; i++) {
		w[i].ops = ops;
		w[i].nchains = chains;
		w[i].max_size = max_size;
		w[i].grow_pct = grow_pct;
		rng_seed(&w[i].rng, seed * 613 + i);
	}
	t0 = bench_start();
	for (int i = 0; i < threads; i++)
		w[i].deadline = max_seconds > 0 ? t0 + max_seconds : 0;
	run_threads(threads, worker_thread, w, sizeof(*w));
	t1 = bench_stop();
	for (int i = 0; i < threads; i++)
		done += (double)w[i].done;

	snprintf(extra, sizeof(extra), " chains=%zu max_size=%zu grow_pct=%zu",
		 chains, max_size, grow_pct);
	bench_report("realloc-chain", threads, done, t1 - t0,
		     extra);
	free(w);
	return 0;
}
