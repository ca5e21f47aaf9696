// SPDX-License-Identifier: MIT
/*
 * idle_shared: an owner one thread found idle counts as idle for every
 * thread (lib/heap.c, owner_idle and the heap's idle_at), until it refills.
 *
 * The main thread allocates 2 * NB blocks and waits; a thread C allocates
 * NB blocks and waits too (alive, so its heap is not pooled). A first
 * freer (it allocates: it refilled a bin) frees NB of the main thread's
 * blocks, so after HAK_IDLE_FREES of them the main thread counts as idle.
 * Then a second freer frees the other NB of the main thread's blocks, each
 * after one of C's. Its own idle count restarts at every change of owner,
 * so before idle_at it never found the main thread idle and sent all 2 NB
 * home, to an owner that never collects (larson's successor threads: each
 * freed the sleeping main thread's blocks home and carved a new table's
 * worth of pages). Now only C's NB blocks go home.
 *
 * Then the main thread allocates again (a refill): no longer idle, so a
 * third freer (which frees only the main thread's blocks, never
 * HAK_IDLE_FREES of them) sends every one home. At the end every block
 * sent home is collected after the freers' exit and two trims.
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"

#define NB	200		/* < HAK_IDLE_FREES (256) */
#define BS	64

static void *mblk[3 * NB + 300];
static void *cblk[NB];
static pthread_barrier_t cbar;

static void *owner_c(void *arg)
{
	unsigned i;

	(void)arg;
	for (i = 0; i < NB; i++) {
		cblk[i] = malloc(BS);
		if (!cblk[i])
			tap_bail("malloc failed");
		memset(cblk[i], 2, BS);
	}
	pthread_barrier_wait(&cbar);	/* allocated */
	pthread_barrier_wait(&cbar);	/* its blocks were freed */
	return NULL;
}

struct freer {
	void **a, **b;			/* free a[i] (and b[i] before it) */
	unsigned n;
	uint64_t remote;
};

static void *freer(void *arg)
{
	struct freer *f = arg;
	struct hak_stats before, after;
	void *own = malloc(1000);	/* a class above the prewarm box's: a refill */
	unsigned i;

	((volatile char *)own)[0] = 1;
	free(own);
	hak_stats_get(&before);
	for (i = 0; i < f->n; i++) {
		if (f->b)
			free(f->b[i]);
		free(f->a[i]);
	}
	hak_stats_get(&after);
	f->remote = after.remote_frees - before.remote_frees;
	return NULL;
}

static uint64_t run(void **a, void **b, unsigned n)
{
	struct freer f = { a, b, n, 0 };
	pthread_t t;

	if (pthread_create(&t, NULL, freer, &f) || pthread_join(t, NULL))
		tap_bail("pthread: %s", strerror(errno));
	return f.remote;
}

int main(void)
{
	struct hak_stats st0, st;
	pthread_t c;
	uint64_t remote;
	unsigned i;

	tap_plan(4);
	malloc_trim(0);
	hak_stats_get(&st0);
	for (i = 0; i < 3 * NB + 300; i++) {
		mblk[i] = malloc(BS);
		if (!mblk[i])
			tap_bail("malloc failed");
		memset(mblk[i], 1, BS);
	}
	if (pthread_barrier_init(&cbar, NULL, 2) ||
	    pthread_create(&c, NULL, owner_c, NULL))
		tap_bail("pthread: %s", strerror(errno));
	pthread_barrier_wait(&cbar);

	/* 300 frees: past HAK_IDLE_FREES, the main thread counts as idle */
	remote = run(mblk, NULL, 300);
	tap_ok(remote < 300, "the first freer finds the main thread idle "
	       "(%llu of 300 sent home)", (unsigned long long)remote);

	remote = run(mblk + 300, cblk, NB);
	tap_ok(remote <= NB, "a second freer alternating with a live owner's "
	       "blocks caches the idle owner's at once (%llu of %u sent home, "
	       "at most %u)", (unsigned long long)remote, 2 * NB, NB);
	pthread_barrier_wait(&cbar);
	pthread_join(c, NULL);

	/* the main thread refills (a class it has no block of): not idle now */
	hak_stats_get(&st);
	for (i = 1; i <= 64; i++) {
		struct hak_stats st2;
		char *q = malloc(500 * i);

		if (!q)
			tap_bail("malloc failed");
		((volatile char *)q)[0] = 1;
		free(q);
		hak_stats_get(&st2);
		if (st2.refills != st.refills)
			break;
	}
	if (i > 64)
		tap_bail("the main thread did not refill");
	remote = run(mblk + 300 + NB, NULL, NB);
	tap_ok(remote == NB, "after the owner's refill a freer sends its blocks "
	       "home again (%llu of %u)", (unsigned long long)remote, NB);

	for (i = 300 + 2 * NB; i < 3 * NB + 300; i++)
		free(mblk[i]);
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
