// SPDX-License-Identifier: MIT
/*
 * ss_apart: two heaps' slabs never share a superslab (lib/superslab.c,
 * ss_pick). When they did, one thread's refills and the remote pushes of
 * its freers wrote slab descriptors in the same header page (and read the
 * same page-map line) as another thread's on the other core:
 * producer-consumer at 2 pairs took 1.27 times mimalloc's CPU, 1.0 with
 * each heap's slabs in superslabs of their own (Documentation/design.md,
 * "Two heaps in one superslab").
 *
 * The main thread and two live threads each hold blocks of several small
 * classes at once; no 2 MiB region may hold blocks of two of them.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "core_test.h"

static const size_t sizes[] = { 16, 48, 128, 256, 512, 1024 };
#define NSZ	ARRAY_SIZE_CT(sizes)
#define PER	64		/* blocks of each size per thread */
#define NTH	3		/* main and two threads */
#define SS_SHIFT	21

static void *blk[NTH][NSZ * PER];
static pthread_barrier_t held, done;

static void take(unsigned t)
{
	unsigned i, k;

	for (i = 0; i < NSZ; i++)
		for (k = 0; k < PER; k++)
			if (!(blk[t][i * PER + k] = malloc(sizes[i])))
				tap_bail("malloc(%zu) failed", sizes[i]);
}

static void *run(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;

	take(t);
	pthread_barrier_wait(&held);	/* every thread holds its blocks */
	pthread_barrier_wait(&done);	/* main has looked */
	for (unsigned i = 0; i < NSZ * PER; i++)
		free(blk[t][i]);
	return NULL;
}

int main(void)
{
	pthread_t th[NTH];
	unsigned t, u, i, j, shared = 0;

	tap_plan(1);
	if (pthread_barrier_init(&held, NULL, NTH) || pthread_barrier_init(&done, NULL, NTH))
		tap_bail("pthread_barrier_init");
	take(0);
	for (t = 1; t < NTH; t++)
		if (pthread_create(&th[t], NULL, run, (void *)(uintptr_t)t))
			tap_bail("pthread_create");
	pthread_barrier_wait(&held);
	for (t = 0; t < NTH; t++)
		for (u = t + 1; u < NTH; u++)
			for (i = 0; i < NSZ * PER; i++)
				for (j = 0; j < NSZ * PER; j++)
					if ((uintptr_t)blk[t][i] >> SS_SHIFT ==
					    (uintptr_t)blk[u][j] >> SS_SHIFT)
						shared++;
	tap_ok(!shared, "%u threads, %zu blocks each: %u pairs of blocks of two threads in one 2 MiB superslab",
	       NTH, NSZ * PER, shared);
	pthread_barrier_wait(&done);
	for (t = 1; t < NTH; t++)
		pthread_join(th[t], NULL);
	for (i = 0; i < NSZ * PER; i++)
		free(blk[0][i]);
	tap_finish();
}
