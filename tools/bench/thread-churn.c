// SPDX-License-Identifier: MIT
/*
 * thread-churn: many short-lived threads, each allocating a little, the
 * shape of thread-per-request servers and of thread pools that shrink.
 *
 *   usage: thread-churn threads total_threads blocks seed
 *
 * Threads are started in waves of <threads>.  Each thread first frees the
 * blocks its predecessor in the same lane left behind (blocks of a thread
 * that has exited), then allocates <blocks> blocks of 16..1024 bytes, frees
 * half of them and leaves the other half for its successor.  This measures
 * how cheaply an allocator sets up and tears down per-thread state and how
 * it reclaims memory of dead threads.  One operation = one thread.
 */
#include <pthread.h>
#include "bench.h"

struct lane {
	void **left;		/* blocks handed to the next thread */
	size_t nleft;
	size_t blocks;
	struct rng rng;
};

static void *churn_thread(void *arg)
{
	struct lane *l = arg;
	void *tmp[512];
	size_t n = l->blocks;

	for (size_t i = 0; i < l->nleft; i++)
		free(l->left[i]);
	l->nleft = 0;
	for (size_t i = 0; i < n; i++) {
		size_t sz = rng_range(&l->rng, 16, 1024);

		tmp[i] = malloc(sz);
		if (!tmp[i])
			die("malloc failed");
		touch(tmp[i], sz, (unsigned char)i);
	}
	for (size_t i = 0; i < n; i++) {
		if (i & 1)
			free(tmp[i]);
		else
			l->left[l->nleft++] = tmp[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct lane *lanes;
	unsigned long total, seed, done = 0;
	size_t blocks;
	int threads;
	double t0, t1;
	char extra[64];

	if (argc != 5) {
		fprintf(stderr, "usage: %s threads total_threads blocks seed\n",
			argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	total = arg_long(argv[2], "total_threads");
	blocks = arg_long(argv[3], "blocks");
	seed = arg_long(argv[4], "seed");
	if (threads < 1 || !blocks || blocks > 512)
		die("bad arguments (blocks must be 1..512)");

	lanes = xmalloc(sizeof(*lanes) * threads);
	for (int i = 0; i < threads; i++) {
		lanes[i].left = xmalloc(sizeof(void *) * blocks);
		lanes[i].nleft = 0;
		lanes[i].blocks = blocks;
		rng_seed(&lanes[i].rng, seed * 131 + i);
	}

	t0 = bench_start();
	while (done < total) {
		run_threads(threads, churn_thread, lanes, sizeof(*lanes));
		done += threads;
	}
	t1 = bench_stop();

	snprintf(extra, sizeof(extra), " blocks=%zu", blocks);
	bench_report("thread-churn", threads, (double)done, t1 - t0, extra);
	for (int i = 0; i < threads; i++) {
		for (size_t b = 0; b < lanes[i].nleft; b++)
			free(lanes[i].left[b]);
		free(lanes[i].left);
	}
	free(lanes);
	return 0;
}
