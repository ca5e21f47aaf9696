// SPDX-License-Identifier: MIT
/*
 * TLS prewarm: a fresh thread's first malloc fills the caches of the
 * configured classes, so its next allocations of those classes take the
 * fast path. Proof by the refill counter (hak_stats_get, summed over all
 * threads: the main thread only waits in pthread_join meanwhile) and by
 * the thread's own bins (__hak_tc, linked statically).
 *
 * Each worker records what it saw in a struct; the main thread prints the
 * TAP lines after the join, so the worker itself allocates nothing but
 * what it measures.
 *
 * A thread that adopts a pooled heap starts with the bins its last thread
 * left (lib/heap.c, kept_save), trimmed to its capacities: prewarm only
 * tops the prewarmed classes up to BLOCKS, and every other class holds
 * what was left. Each worker records its bins as it leaves (left[]), and
 * the next thread's expectations start from them.
 *
 * Time-based decay may hand a pooled heap's kept bins back after a delay,
 * and an owner's bins unused for an eighth of it: the test sets a delay
 * of 2 s, so no heap sits pooled that long, and waits 400 ms (past an
 * eighth) before the second thread, whose adopted bins must survive its
 * first call all the same: they were just handed over, not left unused.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "init.h"
#include "size_class.h"
#include "tcache.h"
#include "tap.h"

#define LO	__hak_class_of(CONFIG_HAK_TLS_PREWARM_MIN_SIZE)
#define HI	__hak_class_of(CONFIG_HAK_TLS_PREWARM_MAX_SIZE)
#define NBLK	CONFIG_HAK_TLS_PREWARM_BLOCKS
#define MAXBLK	(NBLK * (HAK_NCLASS + 1))

struct seen {
	int fresh;			/* no heap before the first call */
	unsigned first;			/* class of the first malloc */
	uint32_t count[HAK_NCLASS];	/* bins right after the first call */
	uint32_t cap[HAK_NCLASS];
	uint64_t refills_first;		/* refills made by the first malloc */
	uint64_t refills_warm;		/* ... by draining every prewarmed bin */
	uint64_t refills_after;		/* ... by one more malloc of class LO */
	uint64_t refills_cold;		/* ... by a first malloc outside the range */
	int cold_class;			/* -1: the range covers every class */
	void *gift;			/* free()d by the thread as its first call */
	uint32_t left[HAK_NCLASS];	/* bins as the thread exits */
};

/* Bins the previous worker left (none before the first). */
static uint32_t prev_left[HAK_NCLASS];

static void *blk[MAXBLK];

static uint64_t refills(void)
{
	struct hak_stats st;

	hak_stats_get(&st);
	return st.refills;
}

static void snap(struct seen *s)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		s->count[c] = __hak_tbin_count(&__hak_tc.bins[c]);
		s->cap[c] = __hak_tc.bins[c].cap;
	}
}

static void snap_left(struct seen *s)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++)
		s->left[c] = __hak_tbin_count(&__hak_tc.bins[c]);
}

/* First call malloc: then drain every prewarmed bin. */
static void *worker_malloc(void *arg)
{
	struct seen *s = arg;
	unsigned c, n = 0, i;
	uint64_t r0, r1;
	void *p, *q;

	s->fresh = __hak_tc.heap == NULL;
	s->first = LO;
	r0 = refills();
	p = hak_malloc(__hak_class_size[s->first]);
	r1 = refills();
	s->refills_first = r1 - r0;
	snap(s);

	for (c = LO; c <= HI; c++)
		for (i = 0; i < s->count[c] && n < MAXBLK; i++)
			blk[n++] = hak_malloc(__hak_class_size[c]);
	r0 = refills();
	s->refills_warm = r0 - r1;

	q = hak_malloc(__hak_class_size[LO]);	/* bin LO is empty now */
	r1 = refills();
	s->refills_after = r1 - r0;

	s->cold_class = -1;
	for (c = 0; c < HAK_NCLASS; c++)
		if ((c < LO || c > HI) && s->cold_class < 0)
			s->cold_class = (int)c;
	if (s->cold_class >= 0) {
		void *r = hak_malloc(__hak_class_size[s->cold_class]);

		s->refills_cold = refills() - r1;
		hak_free(r);
	}
	hak_free(q);
	while (n)
		hak_free(blk[--n]);
	hak_free(p);
	snap_left(s);
	return NULL;
}

/* First call free (of a block the main thread allocated). */
static void *worker_free(void *arg)
{
	struct seen *s = arg;

	s->fresh = __hak_tc.heap == NULL;
	hak_free(s->gift);
	snap(s);
	snap_left(s);
	return NULL;
}

static void run(void *(*fn)(void *), struct seen *s)
{
	pthread_t t;

	if (pthread_create(&t, NULL, fn, s) || pthread_join(t, NULL))
		tap_bail("pthread_create/join failed");
}

/* What class c's bin held after attach: the kept blocks, topped up. */
static uint32_t expect(const struct seen *s, unsigned c)
{
	uint32_t kept = prev_left[c] < s->cap[c] ? prev_left[c] : s->cap[c];
	uint32_t warm = s->cap[c] < NBLK ? s->cap[c] : NBLK;

	return kept > warm ? kept : warm;
}

/*
 * Every prewarmed class holds min(BLOCKS, cap) blocks, class cd delta more
 * (delta SKIP: class cd is not checked).
 */
#define SKIP	INT32_MIN

static int prewarmed(const struct seen *s, unsigned cd, int delta)
{
	unsigned c;

	for (c = LO; c <= HI; c++) {
		uint32_t want = expect(s, c);

		if (c == cd && delta == SKIP)
			continue;
		if (c == cd)
			want = (uint32_t)((int)want + delta);
		if (s->count[c] != want) {
			tap_diag("class %u (%u B): %u blocks, want %u (cap %u)", c,
				 (unsigned)__hak_class_size[c], s->count[c], want, s->cap[c]);
			return 0;
		}
	}
	return 1;
}

static int others_empty(const struct seen *s, unsigned except)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		uint32_t kept = prev_left[c] < s->cap[c] ? prev_left[c] : s->cap[c];

		if ((c < LO || c > HI) && c != except && s->count[c] != kept) {
			tap_diag("class %u not prewarmed holds %u blocks, %u left by the last thread",
				 c, s->count[c], kept);
			return 0;
		}
	}
	return 1;
}

int main(void)
{
	static struct seen a, b, f;
	unsigned gift_class;
	int round;

	tap_plan(0);
	__hak_opt.purge_delay_ms = 2000;	/* before any thread: see the top */
	tap_diag("prewarm classes %u..%u (%u..%u B), %u blocks each", LO, HI,
		 (unsigned)__hak_class_size[LO], (unsigned)__hak_class_size[HI], NBLK);

	for (round = 0; round < 2; round++) {
		struct seen *s = round ? &b : &a;
		const char *who = round ? "second thread (adopted heap)" : "new thread";

		memset(s, 0, sizeof(*s));
		if (round)
			usleep(400 * 1000);
		run(worker_malloc, s);
		if (!s->fresh)
			tap_diag("%s had a heap before its first malloc", who);
		tap_ok(s->refills_first == 0,
		       "%s: first malloc (class %u) made no refill (%llu)", who,
		       s->first, (unsigned long long)s->refills_first);
		tap_ok(prewarmed(s, s->first, -1),
		       "%s: every prewarmed class holds min(%u, cap) blocks, or what was kept", who, NBLK);
		tap_ok(others_empty(s, HAK_NCLASS),
		       "%s: no other class was filled (beyond what the last thread left)", who);
		tap_ok(s->refills_warm == 0,
		       "%s: allocating all prewarmed blocks made no refill (%llu)", who,
		       (unsigned long long)s->refills_warm);
		tap_ok(s->refills_after == 1,
		       "%s: the next malloc of a drained class refills once (%llu)", who,
		       (unsigned long long)s->refills_after);
		if (s->cold_class >= 0)
			tap_ok(s->refills_cold == (prev_left[s->cold_class] ? 0 : 1),
			       "%s: first malloc of class %d (not prewarmed) refills unless kept (%llu)",
			       who, s->cold_class, (unsigned long long)s->refills_cold);
		else
			tap_skip("every class is prewarmed");
		memcpy(prev_left, s->left, sizeof(prev_left));
	}

	/* A thread whose first call is free() is prewarmed too. */
	memset(&f, 0, sizeof(f));
	f.gift = hak_malloc(__hak_class_size[HI]);
	gift_class = HI;
	run(worker_free, &f);
	/*
	 * The gift is the main thread's block: it goes home to its owner's
	 * slab (with the owner's free mark, so the owner sees a double free
	 * of it), not into this thread's cache.
	 */
	tap_ok(f.gift && prewarmed(&f, gift_class, 0),
	       "thread whose first call is free(): prewarmed, another thread's block sent home");
	tap_ok(others_empty(&f, gift_class),
	       "free-first thread: no other class was filled (beyond what the last thread left)");
	tap_finish();
}
