// SPDX-License-Identifier: MIT
/*
 * san_steal: refills that take an idle heap's free blocks, under the
 * sanitizers. Each round the main thread allocates blocks of a few sizes,
 * workers free them (fewer than 256 each: remote frees to the main
 * thread's slabs), the main thread sleeps past the idle threshold, and
 * four thieves allocate at once (taking the idle heap's scan lock, its
 * remote frees and its slabs' blocks: lib/heap.c), check their patterns,
 * free each other's blocks and their own; then the main thread allocates
 * and frees again. TSan sees the scan-lock handoffs, the unlocked hints
 * and the remote-free stacks; every block is checked before it is freed.
 *
 * Usage: san_steal [scale]   (rounds = 3 x scale)
 */
#include <pthread.h>
#include <time.h>

#include "san_test.h"

#define PER	200
#define THIEVES	4
#define TOTAL	(PER * THIEVES)

static const size_t sizes[] = { 24, 256, 3000 };
static void *orig[TOTAL];
static void *got[THIEVES][PER];
static size_t gotn[THIEVES][PER];
static pthread_barrier_t bar;
static unsigned long bad[THIEVES];

static void *worker(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg, i;

	for (i = w * PER; i < (w + 1) * PER; i++) {
		void *p = orig[i];

		if (!san_check(p, sizes[i % 3]))
			bad[w]++;
		hak_free(p);
	}
	return NULL;
}

static void *thief(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg, o = (t + 1) % THIEVES, i;

	for (i = 0; i < PER; i++) {
		gotn[t][i] = sizes[i % 3];
		got[t][i] = hak_malloc(gotn[t][i]);
		if (got[t][i])
			san_fill(got[t][i], gotn[t][i]);
	}
	pthread_barrier_wait(&bar);
	for (i = 0; i < PER / 2; i++) {
		if (got[o][i] && !san_check(got[o][i], gotn[o][i]))
			bad[t]++;
		hak_free(got[o][i]);
	}
	pthread_barrier_wait(&bar);
	for (i = PER / 2; i < PER; i++) {
		if (got[t][i] && !san_check(got[t][i], gotn[t][i]))
			bad[t]++;
		hak_free(got[t][i]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 3 * san_scale(argc, argv), r, total_bad = 0;
	struct timespec idle = { 0, 80 * 1000 * 1000 };
	pthread_t th[THIEVES];
	unsigned t, i;

	tap_plan(1);
	for (r = 0; r < rounds; r++) {
		void *keep = hak_malloc(256);

		for (i = 0; i < TOTAL; i++) {
			orig[i] = hak_malloc(sizes[i % 3]);
			if (!orig[i])
				tap_bail("hak_malloc failed");
			san_fill(orig[i], sizes[i % 3]);
		}
		for (t = 0; t < THIEVES; t++)
			if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
				tap_bail("pthread_create failed");
		for (t = 0; t < THIEVES; t++)
			pthread_join(th[t], NULL);
		nanosleep(&idle, NULL);
		pthread_barrier_init(&bar, NULL, THIEVES);
		for (t = 0; t < THIEVES; t++)
			if (pthread_create(&th[t], NULL, thief, (void *)(uintptr_t)t))
				tap_bail("pthread_create failed");
		for (t = 0; t < THIEVES; t++)
			pthread_join(th[t], NULL);
		pthread_barrier_destroy(&bar);
		for (i = 0; i < TOTAL; i++) {
			orig[i] = hak_malloc(sizes[i % 3]);
			if (orig[i])
				san_fill(orig[i], sizes[i % 3]);
		}
		for (i = 0; i < TOTAL; i++) {
			if (orig[i] && !san_check(orig[i], sizes[i % 3]))
				total_bad++;
			hak_free(orig[i]);
		}
		hak_free(keep);
	}
	for (t = 0; t < THIEVES; t++)
		total_bad += bad[t];
	tap_ok(!total_bad, "%lu rounds of thieves on an idle heap: %lu bad patterns",
	       rounds, total_bad);
	tap_finish();
}
