// SPDX-License-Identifier: MIT
/*
 * A refill of a grown bin, in one fresh thread (lib/heap.c, refill_want):
 *   a class of 512 B and more (1,280 B here) asks for at most 64 KiB of
 *   blocks, however far its capacity grew: a bin grown to hundreds of
 *   blocks used to carve half of them at once, resident whether or not the
 *   program asked for them (size-chain's peak RSS);
 *   a smaller class (256 B) still asks for half its capacity, more than
 *   64 KiB of blocks: its bins carry footprint's and larson's speed.
 * Each class is grown by rounds of HOT_N blocks allocated, then freed;
 * then the bin's blocks are allocated until it is empty, and one malloc
 * more refills it. The rounds may leave free blocks on the class's slabs
 * (a refill that took a slab's list whole, past the bin's room, shifts
 * when the box grows the bin and what its overflows send back), which a
 * refill takes first and then stops short: so the bin is emptied and
 * refilled again, at most MAX_TRIES times, until a refill finds no free
 * list and carves, taking exactly what it asks for. The worker records,
 * the main thread prints the TAP lines after the join.
 */
#include <string.h>
#include "adapt_test.h"
#include "superslab.h"

#define HOT_N		1500
#define BIG_SIZE	1200	/* the 1,280 B class */
#define SMALL_SIZE	250	/* the 256 B class */
#define MAX_TRIES	8

struct refill_seen {
	uint32_t cap;		/* the grown capacity */
	uint32_t cap_at;	/* the capacity the refill saw (it may grow it) */
	uint32_t got;		/* blocks the refill put on the bin */
	int refilled;		/* that malloc was one refill */
};

struct seen {
	struct refill_seen big, small;
};

static void *blk[4 * HOT_N];

/* most: the refill's bound in blocks (64 KiB of them), 0 for none */
static void measure(size_t size, uint32_t most, struct refill_seen *rs)
{
	unsigned c = __hak_class_of(size), r, i, n;
	struct hak_tbin *b = &__hak_tc.bins[c];
	uint64_t r0;

	for (r = 0; r < 10; r++) {
		for (i = 0; i < HOT_N; i++)
			blk[i] = hak_malloc(size);
		for (i = 0; i < HOT_N; i++)
			hak_free(blk[i]);
	}
	rs->cap = b->cap;
	n = 0;
	for (r = 0; r < MAX_TRIES; r++) {
		while (__hak_tbin_count(b) && n < 4 * HOT_N - 1)
			blk[n++] = hak_malloc(size);
		r0 = at_refills();
		blk[n++] = hak_malloc(size);
		rs->refilled = at_refills() - r0 == 1;
		rs->got = __hak_tbin_count(b) + 1;
		rs->cap_at = b->cap;
		if (rs->got >= (most && most < rs->cap_at / 2 ? most : rs->cap_at / 2) ||
		    n + b->cap >= 4 * HOT_N)
			break;
	}
	for (i = 0; i < n; i++)
		hak_free(blk[i]);
}

static void *worker(void *arg)
{
	struct seen *s = arg;

	hak_free(hak_malloc(16));	/* attach (class 0) */
	measure(BIG_SIZE, (uint32_t)(HAK_PAGE_SIZE / __hak_class_stride(__hak_class_of(BIG_SIZE))),
		&s->big);
	measure(SMALL_SIZE, 0, &s->small);
	return NULL;
}

int main(void)
{
	static struct seen s;
	size_t big = __hak_class_stride(__hak_class_of(BIG_SIZE));
	size_t small = __hak_class_stride(__hak_class_of(SMALL_SIZE));
	uint32_t most = (uint32_t)(HAK_PAGE_SIZE / big);

	tap_plan(0);
	memset(&s, 0, sizeof(s));
	at_run(worker, &s);

	tap_ok(s.big.cap / 2 > most, "%zu B class grown to %u blocks, half of it past 64 KiB",
	       big, s.big.cap);
	tap_ok(s.big.refilled && s.big.got >= 16 && s.big.got <= most,
	       "its refill takes %u blocks, 16..%u (64 KiB)", s.big.got, most);
	tap_ok(s.small.cap / 2 * small > HAK_PAGE_SIZE,
	       "%zu B class grown to %u blocks, half of it past 64 KiB", small, s.small.cap);
	tap_ok(s.small.refilled && s.small.got == s.small.cap_at / 2,
	       "its refill takes half its capacity, %u blocks (%u)", s.small.cap_at / 2,
	       s.small.got);
	tap_finish();
}
