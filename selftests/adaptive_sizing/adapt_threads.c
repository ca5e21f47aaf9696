// SPDX-License-Identifier: MIT
/*
 * Adaptive sizing past the cores: while threads outnumber the CPUs by more
 * than one, each thread's budget is its share (budget x CPUs / threads),
 * at least CONFIG_HAK_ADAPTIVE_BUDGET_MIN_KIB.
 *   alone: one thread (the early one) grows its 32 KiB class by hot loops
 *          while it is the only live thread: its budget is the whole, and
 *          its charge (sum of capacity x block size) goes past the floor
 *          it will have later;
 *   many:  2 x CPUs + 4 threads attach and wait for each other, then each
 *          runs hot loops on 64 B and 1 KiB blocks. Every thread's budget
 *          is now below the whole and at least the floor; once it has run
 *          (its windows closed), each thread's charge (but for the core's
 *          lifted bins, AT_LIFT) and the bytes it caches are within it,
 *          the early thread's too (its idle 32 KiB
 *          class dropped to 16 blocks in one step, and its cache gave the
 *          blocks back); the hot classes still grew (larson's lanes keep
 *          room);
 *   after: the others exit and the early thread's budget is the whole
 *          again.
 * Workers record, the main thread prints the TAP lines after the joins.
 */
#include <string.h>
#include "boxes/adaptive_sizing/adaptive.h"
#include "adapt_test.h"

#define N		1500
#define MAX_THREADS	1028
/*
 * Past the cores the core may raise a bin's capacity above the box's, for
 * one refill, to take a slab's free list whole (lib/heap.c, refill_limit:
 * at most 2 x HAK_TCACHE_BYTES of a class): the two hot classes' worth.
 */
#define AT_LIFT		(2 * 2 * (size_t)CONFIG_HAK_TCACHE_BYTES)

struct seen {
	size_t budget, cap_bytes, held_bytes;
	uint32_t start_cap, peak_cap;	/* of the 1 KiB class */
	int sane;
	void *blk[N];
};

static pthread_barrier_t all_live, all_done;
static struct seen seen[MAX_THREADS];
static size_t early_alone_budget, early_alone_bytes, early_after_budget;
static uint32_t early_big_cap, early_big_count, early_big_peak;
static int early_done_many;
static pthread_mutex_t early_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t early_cv = PTHREAD_COND_INITIALIZER;

static void hot(struct seen *s, size_t size, unsigned rounds)
{
	unsigned c = __hak_class_of(size), r, i;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < N; i++) {
			s->blk[i] = hak_malloc(size);
			if (!s->blk[i])
				tap_bail("malloc(%zu) failed", size);
		}
		if (size == 1024 && __hak_tc.bins[c].cap > s->peak_cap)
			s->peak_cap = __hak_tc.bins[c].cap;
		for (i = 0; i < N; i++)
			hak_free(s->blk[i]);
		if (size == 1024 && __hak_tc.bins[c].cap > s->peak_cap)
			s->peak_cap = __hak_tc.bins[c].cap;
	}
}

/* The many-threads phase, once every thread is live. */
static void many(struct seen *s)
{
	s->start_cap = __hak_tc.bins[__hak_class_of(1024)].cap;
	hot(s, 64, 4);
	hot(s, 1024, 8);
	hot(s, 64, 4);
	s->budget = hak_adapt_budget();
	s->cap_bytes = at_cap_bytes();
	s->held_bytes = at_held_bytes();
	s->sane = at_bins_sane();
}

static void *worker(void *arg)
{
	struct seen *s = arg;

	hak_free(hak_malloc(16));	/* attach */
	pthread_barrier_wait(&all_live);
	many(s);
	pthread_barrier_wait(&all_done);
	return NULL;
}

static void *early(void *arg)
{
	struct seen *s = arg;
	unsigned big = __hak_class_of(32768);

	hak_free(hak_malloc(16));	/* attach */
	hot(s, 32768, 6);
	early_big_peak = __hak_tc.bins[big].cap;
	early_alone_bytes = at_cap_bytes();
	__atomic_store_n(&early_alone_budget, hak_adapt_budget(), __ATOMIC_RELEASE);
	pthread_barrier_wait(&all_live);
	many(s);
	early_big_cap = __hak_tc.bins[big].cap;
	early_big_count = __hak_tbin_count(&__hak_tc.bins[big]);
	pthread_barrier_wait(&all_done);
	/* the others exit: wait for the main thread's word */
	pthread_mutex_lock(&early_mu);
	while (!early_done_many)
		pthread_cond_wait(&early_cv, &early_mu);
	pthread_mutex_unlock(&early_mu);
	early_after_budget = hak_adapt_budget();
	return NULL;
}

int main(void)
{
	static pthread_t tid[MAX_THREADS];
	size_t lo = AT_BUDGET_MIN < AT_BUDGET ? AT_BUDGET_MIN : AT_BUDGET;
	unsigned n, i, over = 0, over_held = 0, below = 0, grew = 0, sane = 1;
	int cpus;

	tap_plan(0);
	n = at_past_cores(&cpus, MAX_THREADS);
	tap_diag("%d CPUs, %u threads, budget %zu, at least %zu", cpus, n, AT_BUDGET, lo);
	if (pthread_barrier_init(&all_live, NULL, n) || pthread_barrier_init(&all_done, NULL, n))
		tap_bail("pthread_barrier_init failed");

	/* alone: the early thread grows while it is the only live one */
	if (pthread_create(&tid[0], NULL, early, &seen[0]))
		tap_bail("pthread_create failed");
	while (!__atomic_load_n(&early_alone_budget, __ATOMIC_ACQUIRE))
		sched_yield();
	for (i = 1; i < n; i++)
		if (pthread_create(&tid[i], NULL, worker, &seen[i]))
			tap_bail("pthread_create failed");
	for (i = 1; i < n; i++)
		if (pthread_join(tid[i], NULL))
			tap_bail("pthread_join failed");
	pthread_mutex_lock(&early_mu);
	early_done_many = 1;
	pthread_cond_signal(&early_cv);
	pthread_mutex_unlock(&early_mu);
	if (pthread_join(tid[0], NULL))
		tap_bail("pthread_join failed");

	tap_ok(early_alone_budget == AT_BUDGET,
	       "alone: the budget is the whole (%zu)", early_alone_budget);
	tap_ok(early_alone_bytes > lo && early_big_peak > 4 * AT_CAP_MIN,
	       "alone: the 32 KiB class grew to %u, charge %zu, past the floor %zu",
	       early_big_peak, early_alone_bytes, lo);
	for (i = 0; i < n; i++) {
		const struct seen *s = &seen[i];

		if (s->budget >= AT_BUDGET || s->budget < lo)
			below++;
		if (s->cap_bytes > s->budget + AT_LIFT)
			over++;
		if (s->held_bytes > s->budget)
			over_held++;
		if (s->peak_cap > s->start_cap)
			grew++;
		if (!s->sane)
			sane = 0;
	}
	tap_diag("early thread: budget %zu, charge %zu; a worker: budget %zu, charge %zu, 1 KiB class %u -> %u",
		 seen[0].budget, seen[0].cap_bytes, seen[1].budget, seen[1].cap_bytes,
		 seen[1].start_cap, seen[1].peak_cap);
	tap_ok(!below, "many: every thread's budget in [%zu, %zu) (%u outside)", lo, AT_BUDGET,
	       below);
	tap_ok(!over, "many: every thread's charge within its budget (+ %zu of lifted bins; %u over)",
	       (size_t)AT_LIFT, over);
	tap_ok(!over_held, "many: every thread's cached bytes within its budget (%u over)",
	       over_held);
	tap_ok(early_big_cap == AT_CAP_MIN && early_big_count <= AT_CAP_MIN,
	       "many: the early thread's idle 32 KiB class dropped to %u blocks (cap %u, %u cached)",
	       AT_CAP_MIN, early_big_cap, early_big_count);
	tap_ok(grew == n, "many: the hot 1 KiB class still grew in every thread (%u of %u)", grew,
	       n);
	tap_ok(sane, "many: every capacity in 16..2048, count <= cap");
	tap_ok(early_after_budget == AT_BUDGET,
	       "after: the others gone, the early thread's budget is the whole again (%zu)",
	       early_after_budget);
	tap_finish();
}
