// SPDX-License-Identifier: MIT
/*
 * idle-rss: how much memory an allocator gives back when the program goes
 * idle after a burst.
 *
 *   usage: idle-rss threads small_mib large_mib idle_ms seed
 *
 * Each thread allocates its share of small_mib MiB in blocks of 64..4096
 * bytes (uniform), frees 95% of them at random, then churns its share of
 * large_mib MiB of blocks of 256 KiB..4 MiB (log-uniform; up to 8 live at
 * once, each written whole). Then every thread idles, alive, while the
 * main thread sleeps idle_ms and reads VmRSS (rss_idle_kb: what an
 * allocator that purges on its own holds), performs one small and one
 * large malloc/free (allocators that purge lazily get their chance) and
 * reads it again (rss_end_kb). Throughput is of the burst; one operation
 * is one malloc or free.
 */
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

#define LARGE_WINDOW	8

struct worker {
	size_t small_bytes, large_bytes;
	struct rng rng;
	void **keep;
	size_t nkeep, live_bytes;
	double ops;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done_workers, release_workers;

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	size_t cap = w->small_bytes / 64 + 1, n = 0, total = 0;
	void **blk = xmalloc(sizeof(void *) * cap);
	size_t *sz = xmalloc(sizeof(size_t) * cap);
	void *win[LARGE_WINDOW] = { NULL };
	double ops = 0;

	while (total < w->small_bytes && n < cap) {
		sz[n] = rng_range(&r, 64, 4096);
		blk[n] = malloc(sz[n]);
		if (!blk[n])
			die("malloc failed");
		memset(blk[n], (int)n, sz[n]);
		total += sz[n++];
	}
	ops += (double)n;
	w->keep = xmalloc(sizeof(void *) * (n / 10 + 1));
	for (size_t i = 0; i < n; i++) {
		if (rng_range(&r, 0, 99) < 5 && w->nkeep < n / 10 + 1) {
			w->keep[w->nkeep++] = blk[i];
			w->live_bytes += sz[i];
		} else {
			free(blk[i]);
			ops++;
		}
	}
	total = 0;
	for (size_t i = 0; total < w->large_bytes; i++) {
		size_t s = rng_log_range(&r, 256 << 10, 4 << 20);
		void **slot = &win[i % LARGE_WINDOW];

		free(*slot);
		*slot = malloc(s);
		if (!*slot)
			die("malloc failed");
		memset(*slot, (int)i, s);
		total += s;
		ops += 2;
	}
	for (int i = 0; i < LARGE_WINDOW; i++)
		free(win[i]);
	free(blk);
	free(sz);
	w->ops = ops;

	pthread_mutex_lock(&mu);
	done_workers++;
	pthread_cond_broadcast(&cv);
	while (!release_workers)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	pthread_t *tids;
	int threads;
	size_t small_mib, large_mib, live = 0;
	unsigned long idle_ms, seed;
	double t0, t1, ops = 0;
	long rss_idle, hwm_before;
	char extra[128];
	void *p;

	if (argc != 6) {
		fprintf(stderr, "usage: %s threads small_mib large_mib idle_ms seed\n", argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	small_mib = arg_long(argv[2], "small_mib");
	large_mib = arg_long(argv[3], "large_mib");
	idle_ms = arg_long(argv[4], "idle_ms");
	seed = arg_long(argv[5], "seed");
	if (threads < 1)
		die("bad arguments");

	w = xmalloc(sizeof(*w) * threads);
	tids = xmalloc(sizeof(*tids) * threads);
	for (int i = 0; i < threads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].small_bytes = (small_mib << 20) / threads;
		w[i].large_bytes = (large_mib << 20) / threads;
		rng_seed(&w[i].rng, seed * 7919 + i);
	}
	t0 = bench_start();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, worker_thread, &w[i]))
			die("pthread_create failed");
	pthread_mutex_lock(&mu);
	while (done_workers < threads)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	t1 = bench_stop();

	usleep(idle_ms * 1000);
	hwm_before = proc_status_kb("VmHWM");
	rss_idle = proc_status_kb("VmRSS");
	p = malloc(64);
	touch(p, 64, 1);
	free(p);
	p = malloc(1 << 20);
	touch(p, 1 << 20, 1);
	free(p);

	for (int i = 0; i < threads; i++) {
		ops += w[i].ops;
		live += w[i].live_bytes;
	}
	snprintf(extra, sizeof(extra), " live_kb=%zu rss_idle_kb=%ld hwm_burst_kb=%ld",
		 live / 1024, rss_idle, hwm_before);
	bench_report("idle-rss", threads, ops, t1 - t0, extra);

	pthread_mutex_lock(&mu);
	release_workers = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		for (size_t k = 0; k < w[i].nkeep; k++)
			free(w[i].keep[k]);
		free(w[i].keep);
	}
	free(tids);
	free(w);
	return 0;
}
