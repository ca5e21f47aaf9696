// SPDX-License-Identifier: MIT
/*
 * mark_suspect: a live block whose second word holds the free mark, freed
 * by another thread while its owner's blocks may sit where the owner
 * cannot look (lib/heap.c, "Double and invalid frees": parked suspects).
 *
 * Past 254 heaps two heaps share a tag and every heap counts as lent, so
 * a free that finds the mark and cannot prove the block free parks it
 * (park_suspect) instead of freeing or reporting it. In a child that first
 * starts 260 threads at once (260 heaps), an owner thread allocates a
 * 64-byte block, writes the mark (__hak_free_key) into its second word,
 * and another thread frees it. Proves that
 *  - that free is no report: the program goes on and exits 0, and the
 *    owner's next 4096 blocks of the class never include the parked block
 *    (out of circulation, never handed out twice);
 *  - a second free of the parked block is reported, one line naming it
 *    ("double free (block already freed by another thread)"), and aborts;
 *  - an ordinary double free across threads in that state is still
 *    reported (the second free finds the block where it was cached).
 * runner: serial (260 threads at once)
 */
#include <pthread.h>

#include "core_test.h"
#include "superslab.h"
#include "../lib/child.h"

#define NHEAPS	260
#define NBLK	4096

static pthread_barrier_t crowd_bar;

/* One of the crowd: a heap of its own, held until all have one. */
static void *crowd(void *arg)
{
	void *volatile p = malloc(32);

	(void)arg;
	pthread_barrier_wait(&crowd_bar);
	free(p);
	return NULL;
}

/* 260 heaps at once: the tags wrap, every heap counts as lent. */
static int make_crowd(void)
{
	static pthread_t t[NHEAPS];
	pthread_attr_t a;
	unsigned i;

	if (pthread_attr_init(&a) || pthread_attr_setstacksize(&a, 64 << 10) ||
	    pthread_barrier_init(&crowd_bar, NULL, NHEAPS + 1))
		return -1;
	for (i = 0; i < NHEAPS; i++)
		if (pthread_create(&t[i], &a, crowd, NULL))
			return -1;
	pthread_barrier_wait(&crowd_bar);
	for (i = 0; i < NHEAPS; i++)
		pthread_join(t[i], NULL);
	return 0;
}

struct owner_job {
	void *p;		/* the marked block */
	int freed_twice;	/* scenario: free it twice */
	int plain;		/* scenario: an ordinary block, freed by owner then freer */
};

static void *freer(void *arg)
{
	struct owner_job *j = arg;

	free(j->p);
	if (j->freed_twice)
		free(j->p);
	return NULL;
}

static void scenario(void *arg)
{
	struct owner_job j = *(struct owner_job *)arg;
	static void *blk[NBLK];
	pthread_t t;
	void *volatile v;
	int seen = 0;

	if (make_crowd())
		_exit(20);
	v = malloc(64);	/* this thread's heap, the map's address known */
	free(v);
	j.p = malloc(64);
	if (!j.p)
		_exit(21);
	memset(j.p, 0x11, 64);
	if (j.plain) {
		free(j.p);	/* into this thread's cache */
	} else {
		((uintptr_t *)j.p)[1] = __hak_free_key();
	}
	fprintf(stderr, "block %p\n", j.p);
	if (pthread_create(&t, NULL, freer, &j) || pthread_join(t, NULL))
		_exit(22);
	for (int i = 0; i < NBLK; i++) {
		blk[i] = malloc(64);
		seen |= blk[i] == j.p;
	}
	for (int i = 0; i < NBLK; i++)
		free(blk[i]);
	_exit(seen ? 23 : 0);
}

/* The block the child named on its first stderr line, and the rest. */
static const char *after_block(const char *err, char *addr, size_t len)
{
	const char *nl = strchr(err, '\n');

	if (sscanf(err, "block %31s", addr) != 1 || !nl || len < 32)
		return NULL;
	return nl + 1;
}

int main(void)
{
	struct child_result r;
	struct owner_job j = { 0 };
	char addr[32];
	const char *rest;

	if (!CT_HAKMEM || !HAK_FREE_CHECKS)
		tap_skip_all("the free mark is hakmem's (free checks on)");
	tap_plan(3);

	child_run(scenario, &j, &r);
	rest = after_block(r.err, addr, sizeof(addr));
	tap_ok(child_exited_ok(&r) && rest && !*rest,
	       "a live block holding the mark, freed by another thread with every heap "
	       "lent: no report, never handed out again (status %#x)", r.status);
	if (!child_exited_ok(&r))
		tap_diag("stderr: %s", r.err);

	j.freed_twice = 1;
	child_run(scenario, &j, &r);
	rest = after_block(r.err, addr, sizeof(addr));
	tap_ok(child_aborted(&r) && rest && strstr(rest, "hakmem: ") && strstr(rest, addr) &&
	       strstr(rest, "already freed by another thread") && child_err_lines(&r) == 2,
	       "the parked block freed again: one report naming it, abort");
	if (!child_aborted(&r))
		tap_diag("status %#x, stderr: %s", r.status, r.err);

	j.freed_twice = 0;
	j.plain = 1;
	child_run(scenario, &j, &r);
	rest = after_block(r.err, addr, sizeof(addr));
	tap_ok(child_aborted(&r) && rest && strstr(rest, "hakmem: ") && strstr(rest, addr) &&
	       strstr(rest, "double free") && child_err_lines(&r) == 2,
	       "a block in its owner's cache freed by another thread: reported, abort");
	if (!child_aborted(&r))
		tap_diag("status %#x, stderr: %s", r.status, r.err);
	tap_finish();
}
