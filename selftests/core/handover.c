// SPDX-License-Identifier: MIT
/*
 * Heap hand-over (Documentation/design.md, "Thread caches and heaps"): a
 * thread that frees the blocks of a pooled heap holding more than its own
 * takes that heap, so what it inherited from a thread that exited is its
 * own: freed without a remote push, and its memory reused, not new slabs
 * taken.
 *
 *   handover   thread A allocates NB blocks and starts B, then exits; B,
 *              already on a heap of its own, joins A (A's heap is pooled)
 *              and frees A's blocks: one hand-over, no remote free, the
 *              contents intact; B's NB new blocks map no new memory.
 *   no-handover the same with a C that holds more than A left: C keeps its
 *              heap (no hand-over).
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"

#define NB	4096
#define BS	128

struct pair {
	pthread_t prev;		/* the thread that allocated blk[] */
	size_t own;		/* blocks the successor allocates first */
	void *blk[NB];
	struct hak_stats st[4];
	unsigned long bad;
	int attached;		/* atomic: the successor has its own heap */
	int done;		/* atomic: the successor is through */
};

static void *successor(void *arg)
{
	struct pair *pr = arg;
	void **own = NULL;
	size_t i;

	own = malloc(pr->own ? pr->own * sizeof(*own) : 1);	/* attach */
	if (!own)
		abort();
	__atomic_store_n(&pr->attached, 1, __ATOMIC_RELEASE);
	for (i = 0; i < pr->own; i++) {
		own[i] = malloc(BS);
		if (!own[i])
			abort();
	}
	pthread_join(pr->prev, NULL);	/* its heap is pooled now */
	hak_stats_get(&pr->st[0]);
	for (i = 0; i < NB; i++) {
		if (ct_check(pr->blk[i], BS) != BS)
			pr->bad++;
		free(pr->blk[i]);
	}
	hak_stats_get(&pr->st[1]);
	for (i = 0; i < NB; i++) {
		pr->blk[i] = malloc(BS);
		if (!pr->blk[i])
			abort();
	}
	hak_stats_get(&pr->st[2]);
	for (i = 0; i < NB; i++)
		free(pr->blk[i]);
	for (i = 0; i < pr->own; i++)
		free(own[i]);
	free(own);
	__atomic_store_n(&pr->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *first(void *arg)
{
	struct pair *pr = arg;
	pthread_t t;
	size_t i;

	for (i = 0; i < NB; i++) {
		pr->blk[i] = malloc(BS);
		if (!pr->blk[i])
			abort();
		ct_fill(pr->blk[i], BS);
	}
	pr->prev = pthread_self();
	if (pthread_create(&t, NULL, successor, pr))
		abort();
	pthread_detach(t);
	/* exit only once B has a heap: else B may simply adopt ours */
	while (!__atomic_load_n(&pr->attached, __ATOMIC_ACQUIRE))
		usleep(100);
	return NULL;
}

/* A starts its successor and exits; wait for the successor. */
static void run(struct pair *pr, size_t own)
{
	pthread_t a;

	memset(pr, 0, sizeof(*pr));
	pr->own = own;
	if (pthread_create(&a, NULL, first, pr))
		abort();
	/* A is joined by its successor */
	while (!__atomic_load_n(&pr->done, __ATOMIC_ACQUIRE))
		usleep(1000);
}

int main(void)
{
	static struct pair pr;

	tap_plan(6);
	free(malloc(1));	/* main's heap first */

	run(&pr, 0);
	tap_ok(pr.st[1].heap_handovers == pr.st[0].heap_handovers + 1,
	       "handover: the successor took the pooled heap it freed into (%llu)",
	       (unsigned long long)(pr.st[1].heap_handovers - pr.st[0].heap_handovers));
	tap_ok(pr.st[1].remote_frees == pr.st[0].remote_frees,
	       "handover: %d frees of the inherited blocks, %llu remote",
	       NB, (unsigned long long)(pr.st[1].remote_frees - pr.st[0].remote_frees));
	tap_ok(pr.bad == 0, "handover: inherited blocks intact (%lu bad)", pr.bad);
	tap_ok(pr.st[2].mapped_bytes <= pr.st[1].mapped_bytes,
	       "handover: %d new blocks from memory already mapped (%zu -> %zu bytes)", NB,
	       pr.st[1].mapped_bytes, pr.st[2].mapped_bytes);

	run(&pr, 4 * NB);
	tap_ok(pr.st[1].heap_handovers == pr.st[0].heap_handovers,
	       "no-handover: a successor holding more keeps its heap (%llu)",
	       (unsigned long long)(pr.st[1].heap_handovers - pr.st[0].heap_handovers));
	tap_ok(pr.bad == 0, "no-handover: inherited blocks intact (%lu bad)", pr.bad);
	tap_finish();
	return 0;
}
