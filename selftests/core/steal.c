// SPDX-License-Identifier: MIT
/*
 * steal: blocks freed to a thread that has stopped allocating are reused
 * by the threads that still allocate, without a block being handed out
 * twice.
 *
 * The main thread allocates blocks and keeps them; workers free them
 * (each fewer than 256, so every free goes home to the main thread's
 * slabs as a remote free); the main thread then sleeps (idle). Thieves
 * allocate the same size meanwhile, several at once:
 *  - every block a thief gets is written with a pattern of its own and
 *    checked after all thieves are done (a block handed out twice shows);
 *  - all the pointers the thieves hold are distinct;
 *  - with hakmem, much of what the thieves get is the main thread's freed
 *    blocks (a refill that finds nothing of its own takes an idle heap's
 *    free blocks before new pages: lib/heap.c, "taking blocks from idle
 *    heaps"), so the memory freed to the sleeping thread is not lost;
 *  - each thief then frees another thief's blocks and its own (remote
 *    frees to the idle owner, cached or sent home), and the main thread,
 *    awake again, allocates and frees as before: no corruption, no abort.
 * Runs under plain glibc too (the reuse check is then skipped).
 */
#include <pthread.h>
#include <time.h>

#include "core_test.h"

#define SIZE		256
#define PER_WORKER	200	/* under the idle-owner threshold of 256 */
#define THIEVES		4
#define TOTAL		(PER_WORKER * THIEVES)

static void *orig[TOTAL];	/* the main thread's blocks, freed by workers */
static void *got[THIEVES][TOTAL];
static unsigned ngot[THIEVES];
static pthread_barrier_t bar;

static void fill(void *p, unsigned tag)
{
	memset(p, (int)(0x40 + tag), SIZE);
}

static int check(const void *p, unsigned tag)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < SIZE; i++)
		if (b[i] != (unsigned char)(0x40 + tag))
			return 0;
	return 1;
}

static void *worker(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg, i;

	for (i = 0; i < PER_WORKER; i++)
		free(orig[w * PER_WORKER + i]);
	return NULL;
}

static void *thief(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg, i;

	for (i = 0; i < PER_WORKER; i++) {
		void *p = malloc(SIZE);

		if (!p)
			break;
		fill(p, t);
		got[t][ngot[t]++] = p;
	}
	pthread_barrier_wait(&bar);
	/* everyone is done: free the next thief's first half, then ours */
	pthread_barrier_wait(&bar);
	for (i = 0; i < ngot[(t + 1) % THIEVES] / 2; i++)
		free(got[(t + 1) % THIEVES][i]);
	pthread_barrier_wait(&bar);
	for (i = ngot[t] / 2; i < ngot[t]; i++)
		free(got[t][i]);
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static int is_orig(const void *p, void *const *sorted)
{
	return bsearch(&p, sorted, TOTAL, sizeof(void *), cmp_ptr) != NULL;
}

int main(void)
{
	static void *sorted[TOTAL], *all[THIEVES * TOTAL], *again[2 * TOTAL];
	pthread_t th[THIEVES];
	struct timespec idle = { 0, 120 * 1000 * 1000 };
	unsigned t, i, n = 0, reused = 0, bad = 0, dups = 0;
	void *keep = malloc(SIZE);	/* keeps the main thread's slab in use */

	tap_plan(5);
	for (i = 0; i < TOTAL; i++) {
		orig[i] = malloc(SIZE);
		if (!orig[i])
			tap_bail("malloc: out of memory");
		fill(orig[i], 99);
	}
	memcpy(sorted, orig, sizeof(orig));
	qsort(sorted, TOTAL, sizeof(void *), cmp_ptr);
	for (t = 0; t < THIEVES; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
			tap_bail("pthread_create failed");
	for (t = 0; t < THIEVES; t++)
		pthread_join(th[t], NULL);
	/* The main thread goes idle: its slabs hold TOTAL free blocks. */
	nanosleep(&idle, NULL);

	pthread_barrier_init(&bar, NULL, THIEVES + 1);
	for (t = 0; t < THIEVES; t++)
		if (pthread_create(&th[t], NULL, thief, (void *)(uintptr_t)t))
			tap_bail("pthread_create failed");
	pthread_barrier_wait(&bar);
	for (t = 0; t < THIEVES; t++) {
		for (i = 0; i < ngot[t]; i++) {
			all[n++] = got[t][i];
			bad += !check(got[t][i], t);
			reused += is_orig(got[t][i], sorted);
		}
	}
	tap_ok(n == THIEVES * PER_WORKER && !bad,
	       "%u thieves got %u blocks, every pattern intact (%u bad)", THIEVES, n, bad);
	qsort(all, n, sizeof(void *), cmp_ptr);
	for (i = 1; i < n; i++)
		dups += all[i] == all[i - 1];
	tap_ok(!dups, "no block handed out twice (%u duplicates)", dups);
	/*
	 * Thieves that find the idle heap's scan lock taken by another one
	 * carve instead (try-lock only): 262 to 618 of 800 seen, 0 before.
	 */
	if (CT_HAKMEM)
		tap_ok(reused >= n / 8,
		       "the idle thread's freed blocks are reused: %u of %u", reused, n);
	else
		tap_skip("reuse of an idle thread's blocks (hakmem only)");
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	for (t = 0; t < THIEVES; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);

	/* Awake again: the main thread allocates over what came back. */
	bad = dups = 0;
	for (i = 0; i < 2 * TOTAL; i++) {
		again[i] = malloc(SIZE);
		if (!again[i])
			tap_bail("malloc: out of memory");
		fill(again[i], 7);
	}
	for (i = 0; i < 2 * TOTAL; i++)
		bad += !check(again[i], 7);
	qsort(again, 2 * TOTAL, sizeof(void *), cmp_ptr);
	for (i = 1; i < 2 * TOTAL; i++)
		dups += again[i] == again[i - 1];
	tap_ok(!bad && !dups, "the owner, awake, allocates %u blocks: %u bad, %u duplicates",
	       2 * TOTAL, bad, dups);
	for (i = 0; i < 2 * TOTAL; i++)
		free(again[i]);
	free(keep);
	malloc_trim(0);
	tap_ok(1, "everything freed and trimmed without a report");
	tap_finish();
}
