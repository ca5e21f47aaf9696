// SPDX-License-Identifier: MIT
/*
 * share_alloc: past the cores a thread's default cache capacities are its
 * share of the budget among the threads that allocate, not among all the
 * threads with a heap (lib/heap.c, thread_share).
 *
 * A thread that only frees other threads' blocks (a consumer) attaches a
 * heap but never refills, so it holds none of the budget. Until pc19 it
 * counted, and a producer that attached after the consumers had a share
 * (producer-consumer at 2 pairs: the second producer had 1/2 or 2/3 of
 * the first's capacities; Documentation/benchmarks.md, "producer-consumer
 * at 2 pairs: the second producer's capacities"). Checked here, with a
 * budget of 4 KiB (a class's capacity is 4 KiB of blocks unshrunk; a
 * refill takes half of it):
 *   - with 8 x CPUs + 1 threads attached that only freed (one block of the
 *     main thread's each), a new thread's 64 mallocs of 48 B take at most
 *     4 refills: the whole share (only the main thread and it allocate:
 *     2-3 refills; counting the helpers, as before pc19, 7);
 *   - once those threads have each allocated too, a new thread's 64
 *     mallocs of 32 B (a class not used before) take more than 3 (5-8):
 *     the share is cut as before, where the whole would take one or two
 *     refills.
 * Skipped when the CPUs are too many to outnumber with helper threads.
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"

#define NB	64
#define BS	64	/* the main thread's blocks, freed by the helpers */
#define BS1	48	/* 85 blocks unshrunk: 2-3 refills for NB */
#define BS2	32	/* 128 unshrunk: 1 refill; the first thread's heap,
			 * adopted by the second, has none of them kept */
#define BUDGET	"4096"	/* HAKMEM_TCACHE_BYTES */
#define MAX_HELPERS	129

static void *mine[MAX_HELPERS];
static unsigned nh;
static pthread_barrier_t hold;

/* Attach by freeing another thread's block; allocate only when told. */
static void *helper(void *arg)
{
	void *p;

	free(arg);
	pthread_barrier_wait(&hold);	/* all attached, none allocated */
	pthread_barrier_wait(&hold);	/* now allocate */
	p = malloc(16);
	if (!p)
		tap_bail("malloc failed");
	((volatile char *)p)[0] = 1;	/* keep the pair: the compiler drops it */
	free(p);
	pthread_barrier_wait(&hold);	/* all allocated */
	pthread_barrier_wait(&hold);	/* test done */
	return NULL;
}

static unsigned long long refills;

/* A new thread's NB mallocs of *arg bytes: the refills they took. */
static void *measure(void *arg)
{
	size_t bs = *(size_t *)arg;
	void *v[NB];
	struct hak_stats s0, s1;
	unsigned i;

	hak_stats_get(&s0);
	for (i = 0; i < NB; i++) {
		v[i] = malloc(bs);
		if (!v[i])
			tap_bail("malloc failed");
		memset(v[i], (int)i, bs);
	}
	hak_stats_get(&s1);
	for (i = 0; i < NB; i++)
		free(v[i]);
	refills = s1.refills - s0.refills;
	return NULL;
}

static unsigned long long measured(size_t bs)
{
	pthread_t t;

	if (pthread_create(&t, NULL, measure, &bs))
		tap_bail("pthread_create: %s", strerror(errno));
	pthread_join(t, NULL);
	return refills;
}

int main(int argc, char **argv)
{
	pthread_t helpers[MAX_HELPERS];
	struct hak_stats s0, s1;
	unsigned long long r;
	unsigned i;
	int n;

	(void)argc;
	/*
	 * The budget is read once, at the first malloc (which may come before
	 * main): run again with it in the environment.
	 */
	if (!getenv("HAKMEM_TCACHE_BYTES") || strcmp(getenv("HAKMEM_TCACHE_BYTES"), BUDGET)) {
		setenv("HAKMEM_TCACHE_BYTES", BUDGET, 1);
		execv("/proc/self/exe", argv);
		tap_bail("execv: %s", strerror(errno));
	}
	n = proc_cpus();
	tap_plan(2);
	nh = 8u * (unsigned)n + 1;
	if (nh > MAX_HELPERS)
		tap_skip_all("%d CPUs: too many to outnumber", n);
	for (i = 0; i < nh; i++) {
		mine[i] = malloc(BS);	/* the main thread allocates: it counts */
		if (!mine[i])
			tap_bail("malloc failed");
	}
	if (pthread_barrier_init(&hold, NULL, nh + 1))
		tap_bail("barrier: %s", strerror(errno));
	hak_stats_get(&s0);
	for (i = 0; i < nh; i++)
		if (pthread_create(&helpers[i], NULL, helper, mine[i]))
			tap_bail("pthread_create: %s", strerror(errno));
	pthread_barrier_wait(&hold);
	hak_stats_get(&s1);
	/* the main thread's own (pthread_create allocates there) */
	tap_diag("%llu refills while the helpers attached",
		 (unsigned long long)(s1.refills - s0.refills));

	r = measured(BS1);
	tap_ok(r <= 4, "%u threads that only freed, %d CPUs: %u mallocs of %u B took %llu refills",
	       nh, n, NB, BS1, r);

	pthread_barrier_wait(&hold);	/* the helpers allocate */
	pthread_barrier_wait(&hold);
	r = measured(BS2);
	tap_ok(r > 3, "%u threads that allocated, %d CPUs: %u mallocs of %u B took %llu refills",
	       nh, n, NB, BS2, r);

	pthread_barrier_wait(&hold);
	for (i = 0; i < nh; i++)
		pthread_join(helpers[i], NULL);
	pthread_barrier_destroy(&hold);
	tap_finish();
}
