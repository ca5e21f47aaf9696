// SPDX-License-Identifier: MIT
/*
 * TLS prewarm: a thread's first refill (its first malloc that finds its
 * bin empty) fills the caches of the configured classes, so its next
 * allocations of those classes take the fast path; a thread that only
 * frees takes nothing. Proof by the refill counter (hak_stats_get, summed over all
 * threads: the main thread only waits in pthread_join meanwhile) and by
 * the thread's own bins (__hak_tc, linked statically).
 *
 * Each worker records what it saw in a struct; the main thread prints the
 * TAP lines after the join, so the worker itself allocates nothing but
 * what it measures.
 *
 * A thread that adopts a pooled heap starts with the bins its last thread
 * left (lib/heap.c, kept_save), trimmed to its capacities: its first
 * malloc of a class that was kept makes no refill and no prewarm; its
 * first refill tops the prewarmed classes up to BLOCKS, and every other
 * class holds what was left. Each worker records its bins as it leaves (left[]), and
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
	uint32_t warm[HAK_NCLASS];	/* bins right after the first refill */
	uint32_t cap[HAK_NCLASS];
	uint64_t refills_first;		/* refills made by the first malloc */
	uint64_t refills_warm;		/* ... by draining every prewarmed bin */
	uint64_t refills_after;		/* ... by one more malloc of class LO */
	uint64_t refills_cold;		/* ... by a first malloc outside the range */
	int cold_class;			/* -1: the range covers every class */
	void *gift;			/* free()d by the thread as its first call */
	int refill_class;		/* free-first thread: class it then allocates */
	uint64_t refills_then;		/* ... refills that malloc made */
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

static void snap_warm(struct seen *s)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++)
		s->warm[c] = __hak_tbin_count(&__hak_tc.bins[c]);
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
	if (s->refills_first)
		snap_warm(s);

	for (c = LO; c <= HI; c++)
		for (i = 0; i < s->count[c] && n < MAXBLK; i++)
			blk[n++] = hak_malloc(__hak_class_size[c]);
	r0 = refills();
	s->refills_warm = r0 - r1;

	q = hak_malloc(__hak_class_size[LO]);	/* bin LO is empty now */
	r1 = refills();
	s->refills_after = r1 - r0;
	if (!s->refills_first)
		snap_warm(s);		/* that was the thread's first refill */

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

	uint64_t r0;
	void *p;

	s->fresh = __hak_tc.heap == NULL;
	hak_free(s->gift);
	snap(s);
	/* Then a malloc of a class whose bin is empty: the first refill. */
	r0 = refills();
	p = hak_malloc(__hak_class_size[s->refill_class]);
	s->refills_then = refills() - r0;
	snap_warm(s);
	hak_free(p);
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
 * Every prewarmed class holds min(BLOCKS, cap) blocks, or what was kept if
 * more, in bins n (count or warm), class cd delta more (delta SKIP: class cd
 * is not checked).
 */
#define SKIP	INT32_MIN

static int prewarmed(const struct seen *s, const uint32_t *n, unsigned cd, int delta)
{
	unsigned c;

	for (c = LO; c <= HI; c++) {
		uint32_t want = expect(s, c);

		if (c == cd && delta == SKIP)
			continue;
		if (c == cd)
			want = (uint32_t)((int)want + delta);
		if (n[c] != want) {
			tap_diag("class %u (%u B): %u blocks, want %u (cap %u)", c,
				 (unsigned)__hak_class_size[c], n[c], want, s->cap[c]);
			return 0;
		}
	}
	return 1;
}

/* Every bin of n holds what the last thread left, class cd delta more. */
static int only_kept(const struct seen *s, const uint32_t *n, unsigned cd, int delta)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		uint32_t want = prev_left[c] < s->cap[c] ? prev_left[c] : s->cap[c];

		if (c == cd)
			want = (uint32_t)((int)want + delta);
		if (n[c] != want) {
			tap_diag("class %u (%u B): %u blocks, want %u kept", c,
				 (unsigned)__hak_class_size[c], n[c], want);
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
	int round;

	tap_plan(0);
	__hak_opt.purge_delay_ms = 2000;	/* before any thread: see the top */
	tap_diag("prewarm classes %u..%u (%u..%u B), %u blocks each", LO, HI,
		 (unsigned)__hak_class_size[LO], (unsigned)__hak_class_size[HI], NBLK);

	for (round = 0; round < 2; round++) {
		struct seen *s = round ? &b : &a;
		const char *who = round ? "second thread (adopted heap)" : "new thread";
		int kept_lo;

		memset(s, 0, sizeof(*s));
		if (round)
			usleep(400 * 1000);
		run(worker_malloc, s);
		if (!s->fresh)
			tap_diag("%s had a heap before its first malloc", who);
		kept_lo = prev_left[s->first] && s->cap[s->first];
		if (!kept_lo) {
			/* The first malloc is the first refill: it prewarms. */
			tap_ok(s->refills_first == 1,
			       "%s: first malloc (class %u, bin empty) refilled once (%llu)", who,
			       s->first, (unsigned long long)s->refills_first);
			tap_ok(prewarmed(s, s->count, s->first, -1),
			       "%s: then every prewarmed class holds min(%u, cap) blocks, or what was kept",
			       who, NBLK);
		} else {
			/* Served from the kept bin: no refill, nothing prewarmed yet. */
			tap_ok(s->refills_first == 0,
			       "%s: first malloc (class %u, kept) made no refill (%llu)", who,
			       s->first, (unsigned long long)s->refills_first);
			tap_ok(only_kept(s, s->count, s->first, -1),
			       "%s: no refill, no prewarm: every bin holds what was kept", who);
		}
		tap_ok(others_empty(s, HAK_NCLASS),
		       "%s: no other class was filled (beyond what the last thread left)", who);
		tap_ok(s->refills_warm == 0,
		       "%s: allocating every block of the prewarmed bins made no refill (%llu)", who,
		       (unsigned long long)s->refills_warm);
		tap_ok(s->refills_after == 1,
		       "%s: the next malloc of a drained class refills once (%llu)", who,
		       (unsigned long long)s->refills_after);
		if (kept_lo) {
			/*
			 * That refill was the thread's first: every prewarmed bin,
			 * drained, got min(BLOCKS, cap) blocks (LO one fewer).
			 */
			uint32_t keep[HAK_NCLASS];

			memcpy(keep, prev_left, sizeof(keep));
			memset(prev_left, 0, sizeof(prev_left));
			tap_ok(prewarmed(s, s->warm, s->first, -1),
			       "%s: its first refill prewarmed every drained class to min(%u, cap)",
			       who, NBLK);
			memcpy(prev_left, keep, sizeof(keep));
		} else {
			tap_skip("%s: the first malloc was the first refill", who);
		}
		if (s->cold_class >= 0)
			tap_ok(s->refills_cold == (prev_left[s->cold_class] ? 0 : 1),
			       "%s: first malloc of class %d (not prewarmed) refills unless kept (%llu)",
			       who, s->cold_class, (unsigned long long)s->refills_cold);
		else
			tap_skip("every class is prewarmed");
		memcpy(prev_left, s->left, sizeof(prev_left));
	}

	/*
	 * A thread whose first call is free() takes nothing: it may never
	 * allocate (a consumer). Its first refill prewarms.
	 */
	memset(&f, 0, sizeof(f));
	f.gift = hak_malloc(__hak_class_size[HI]);
	f.refill_class = -1;
	for (round = HAK_NCLASS - 1; round >= 0 && f.refill_class < 0; round--)
		if (!prev_left[round] && __hak_class_size[round] <= 4096)
			f.refill_class = round;
	if (f.refill_class < 0)
		tap_bail("no class with an empty kept bin");
	run(worker_free, &f);
	/*
	 * The gift is the main thread's block: it goes home to its owner's
	 * slab (with the owner's free mark, so the owner sees a double free
	 * of it), not into this thread's cache.
	 */
	tap_ok(f.gift && only_kept(&f, f.count, HAK_NCLASS, 0),
	       "thread whose first call is free(): not prewarmed, another thread's block sent home");
	tap_ok(f.refills_then == 1,
	       "free-first thread: its first malloc (class %d, bin empty) refilled once (%llu)",
	       f.refill_class, (unsigned long long)f.refills_then);
	tap_ok(prewarmed(&f, f.warm, (unsigned)f.refill_class, -1),
	       "free-first thread: that first refill prewarmed every class to min(%u, cap), or what was kept",
	       NBLK);
	tap_finish();
}
