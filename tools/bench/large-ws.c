// SPDX-License-Identifier: MIT
/*
 * large-ws: random access over a large working set of small blocks (TLB
 * reach: what hugepages are for).
 *
 *   usage: large-ws threads total_mib accesses seed
 *
 * Each thread allocates its share of total_mib MiB in blocks of 16..256
 * bytes, then makes its share of accesses: a random block is read and
 * written (its first word incremented); one access in 16 frees the block
 * and allocates a new one of a random size in its place. Throughput is of
 * the access phase; one operation is one access. Reports AnonHugePages of
 * /proc/self/smaps_rollup (anon_huge_kb) with the RSS.
 */
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

struct worker {
	size_t bytes;
	unsigned long accesses;
	struct rng rng;
	double secs;
};

static pthread_barrier_t start_line;

static long smaps_kb(const char *key)
{
	return proc_file_kb("/proc/self/smaps_rollup", key);
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	size_t n = w->bytes / 136 + 1, i;
	uint64_t **blk = xmalloc(sizeof(*blk) * n), sum = 0;
	double t0;

	for (i = 0; i < n; i++) {
		blk[i] = malloc(rng_range(&r, 16, 256));
		if (!blk[i])
			die("malloc failed");
		blk[i][0] = i;
	}
	pthread_barrier_wait(&start_line);
	t0 = now_sec();
	for (unsigned long a = 0; a < w->accesses; a++) {
		size_t k = rng_next(&r) % n;

		if ((a & 15) == 15) {
			free(blk[k]);
			blk[k] = malloc(rng_range(&r, 16, 256));
			if (!blk[k])
				die("malloc failed");
			blk[k][0] = a;
		} else {
			sum += blk[k][0]++;
		}
	}
	w->secs = now_sec() - t0;
	pthread_barrier_wait(&start_line);
	for (i = 0; i < n; i++)
		free(blk[i]);
	free(blk);
	if (sum == 42)
		fputc(' ', stderr);
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	pthread_t *tids;
	int threads;
	size_t mib;
	unsigned long accesses, seed;
	double secs = 0;
	char extra[128];
	long huge, rss;

	if (argc != 5) {
		fprintf(stderr, "usage: %s threads total_mib accesses seed\n", argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	mib = arg_long(argv[2], "total_mib");
	accesses = arg_long(argv[3], "accesses");
	seed = arg_long(argv[4], "seed");
	if (threads < 1)
		die("bad arguments");
	w = xmalloc(sizeof(*w) * threads);
	tids = xmalloc(sizeof(*tids) * threads);
	pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		w[i].bytes = (mib << 20) / threads;
		w[i].accesses = accesses / threads;
		rng_seed(&w[i].rng, seed * 6151 + i);
		if (pthread_create(&tids[i], NULL, worker_thread, &w[i]))
			die("pthread_create failed");
	}
	pthread_barrier_wait(&start_line);	/* filled */
	pthread_barrier_wait(&start_line);	/* accessed */
	huge = smaps_kb("AnonHugePages");
	rss = proc_status_kb("VmRSS");
	for (int i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		if (w[i].secs > secs)
			secs = w[i].secs;
	}
	snprintf(extra, sizeof(extra), " anon_huge_kb=%ld rss_ws_kb=%ld", huge, rss);
	bench_report("large-ws", threads, (double)accesses, secs, extra);
	free(tids);
	free(w);
	return 0;
}
