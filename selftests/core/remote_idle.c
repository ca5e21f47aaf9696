// SPDX-License-Identifier: MIT
/*
 * remote_idle: which thread caches the blocks of an owner that looks idle
 * (lib/heap.c, owner_idle and heap_allocates). The main thread allocates
 * NB blocks of 64 B and waits while another thread frees them all, so
 * after 256 of those frees, with its last tick 10 ms older than the
 * freer's (ct_idle_wait), the main thread counts as idle to the freer.
 *
 *   - A thread that only frees (it never refilled a bin: a consumer)
 *     sends every block home, one remote free each, and never overflows
 *     its cache: caching them would only flush them again (past the cores
 *     a producer waiting for a CPU looks idle to its consumer).
 *   - A thread that allocates too keeps caching them, to serve them
 *     again (larson's lanes and the main thread that filled their tables):
 *     fewer than NB remote frees are counted while it runs.
 *   Both run beside a crowd of parked threads (selftests/lib/crowd.h), the
 *   CPU count plus two, so that they also hold if the caching is kept to
 *   when threads outnumber the CPUs (Documentation/benchmarks.md, "larson
 *   1 thread: the idle owner's blocks").
 *
 * Then every block is back where it belongs: the freer's cache is kept
 * with its pooled heap at its exit, a trim sends it home and a second one
 * collects it: every remote free counted was collected by its owner.
 *
 * And none of those frees changes errno (the remote free saves it only
 * around what may set it: the thread's first free, which attaches a heap,
 * and a hand-over).
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "../lib/crowd.h"

#define NB	1000
#define BS	64

static void *blk[NB];

struct freer {
	int allocates;			/* refill one bin first */
	unsigned errno_lost;		/* frees that changed errno */
	pthread_barrier_t bar;
	struct hak_stats before, after;
};

static void *freer(void *arg)
{
	struct freer *f = arg;
	unsigned i;

	if (f->allocates) {
		/* A class above the TLS prewarm box's: this thread refills. */
		void *own = malloc(1000);

		((volatile char *)own)[0] = 1;
		free(own);
	}
	hak_stats_get(&f->before);
	for (i = 0; i < NB; i++) {
		errno = EDOM;
		free(blk[i]);
		if (errno != EDOM)
			f->errno_lost++;
		if (!i)
			ct_idle_wait();	/* the owner's idle time, after the first */
	}
	hak_stats_get(&f->after);
	pthread_barrier_wait(&f->bar);	/* the main thread reads the counters */
	pthread_barrier_wait(&f->bar);
	return NULL;
}

static unsigned errno_lost;

static void run(int allocates, uint64_t *remote, uint64_t *overflows)
{
	struct freer f = { .allocates = allocates };
	pthread_t t;
	unsigned i;

	for (i = 0; i < NB; i++) {
		blk[i] = malloc(BS);
		if (!blk[i])
			tap_bail("malloc failed");
		memset(blk[i], (int)i, BS);
	}
	if (pthread_barrier_init(&f.bar, NULL, 2) ||
	    pthread_create(&t, NULL, freer, &f))
		tap_bail("pthread: %s", strerror(errno));
	pthread_barrier_wait(&f.bar);
	*remote = f.after.remote_frees - f.before.remote_frees;
	*overflows = f.after.overflows - f.before.overflows;
	pthread_barrier_wait(&f.bar);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&f.bar);
	errno_lost += f.errno_lost;
}

int main(void)
{
	struct hak_stats st0, st;
	uint64_t remote, overflows;
	struct crowd crowd;

	tap_plan(4);
	malloc_trim(0);
	hak_stats_get(&st0);

	if (crowd_start(&crowd))
		tap_bail("crowd: %s", strerror(errno));
	run(0, &remote, &overflows);
	tap_ok(remote == NB && overflows == 0,
	       "past the cores (%u CPUs, %u more threads), a thread that only frees sends "
	       "all %u blocks of an idle owner home (%llu remote frees, %llu overflows)",
	       proc_cpus(), crowd.n, NB, (unsigned long long)remote,
	       (unsigned long long)overflows);

	run(1, &remote, &overflows);
	tap_ok(remote < NB,
	       "a thread that allocates caches an idle owner's blocks "
	       "(%llu of %u sent home while it ran)", (unsigned long long)remote, NB);
	crowd_stop(&crowd);

	tap_ok(errno_lost == 0, "errno kept by all %u cross-thread frees (%u changed it)",
	       2 * NB, errno_lost);

	malloc_trim(0);		/* flushes the pooled freers' caches home */
	malloc_trim(0);		/* and collects what they sent */
	hak_stats_get(&st);
	tap_ok(st.remote_frees - st0.remote_frees == st.remote_collected - st0.remote_collected,
	       "every block sent home collected after the freers' exit and a trim "
	       "(%llu sent, %llu collected)",
	       (unsigned long long)(st.remote_frees - st0.remote_frees),
	       (unsigned long long)(st.remote_collected - st0.remote_collected));
	tap_finish();
}
