// SPDX-License-Identifier: MIT
/*
 * bigcache_learn: threads that replace large buffers with pauses longer
 * than the purge delay while the process stays busy. Each of T threads,
 * R rounds: four buffers of 4-25 MiB taken, written in full and freed,
 * then PAUSE ms of small-block work (NS blocks of SZ bytes taken and freed
 * every 5 ms: tcache refills, so the allocator's slow paths keep running
 * and the core's passes are busy ones; with perf_defconfig's grown bins
 * pass NS=8192, more than a bin holds). With BigCache purging at the
 * configured delay every round faults every buffer in again; with the
 * learned delay (branch bc31; Documentation/design.md, "BigCache follows
 * the learned delay") the buffers stay once the delay has grown.
 * Build: cc -O2 -pthread -o X tools/repro/bigcache_learn.c
 * Run: perf stat -e task-clock,page-faults env LD_PRELOAD=build/d/libhakmem.so
 *      ./X [T=2] [R=12] [PAUSE=700] [NS=2048] [SZ=1024]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB	(1u << 20)

static int rounds = 12, pause_ms = 700, nsmall = 2048, small_sz = 1024;

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(size_t)arg * 7919u + 1;
	void **small = calloc((size_t)nsmall, sizeof(*small));
	int r, i;

	if (!small)
		abort();
	for (r = 0; r < rounds; r++) {
		char *b[4];
		double t0;

		for (i = 0; i < 4; i++) {
			size_t n = 4 * MIB + (size_t)(rand_r(&seed) % (21 * MIB));

			b[i] = malloc(n);
			if (!b[i])
				abort();
			memset(b[i], r + i, n);
		}
		for (i = 0; i < 4; i++)
			free(b[i]);
		t0 = now_ms();
		while (now_ms() - t0 < pause_ms) {
			for (i = 0; i < nsmall; i++) {
				small[i] = malloc((size_t)small_sz);
				if (!small[i])
					abort();
				((volatile char *)small[i])[0] = 1;
			}
			for (i = 0; i < nsmall; i++)
				free(small[i]);
			usleep(5000);
		}
	}
	free(small);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2, i;
	pthread_t t[64];

	if (argc > 2)
		rounds = atoi(argv[2]);
	if (argc > 3)
		pause_ms = atoi(argv[3]);
	if (argc > 4)
		nsmall = atoi(argv[4]);
	if (argc > 5)
		small_sz = atoi(argv[5]);
	if (threads < 1 || threads > 64 || nsmall < 1 || small_sz < 1) {
		fprintf(stderr, "usage: %s [T<=64] [R] [PAUSE_MS] [NS] [SZ]\n", argv[0]);
		return 2;
	}
	for (i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(size_t)i))
			abort();
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return 0;
}
