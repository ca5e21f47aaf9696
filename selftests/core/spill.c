// SPDX-License-Identifier: MIT
/*
 * spill: a full thread-cache bin sends its newest blocks to their slabs
 * and keeps the older ones (lib/heap.c, __hak_tcache_overflow;
 * Documentation/design.md, "The free path and its invariants").
 *
 * Freeing a run of 64 B blocks in order, proves that
 *  - the bin never holds more than its capacity after a free;
 *  - an overflow happens only on a full bin and leaves cap + 1 - n blocks,
 *    n = min(32, cap + 1 - cap / 2);
 *  - the n blocks that left are the newest n freed, each now on its slab's
 *    free list, not in the bin;
 *  - the block freed first (the oldest) stays in the bin throughout.
 */
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "tcache.h"
#include "superslab.h"
#include "bin_list.h"

#define SZ		64
#define NBLK		3000
#define SPILL_MAX	32

static void *blk[NBLK];

int main(void)
{
	unsigned c = __hak_class_of(SZ), i, k;
	unsigned over = 0, bad_cap = 0, bad_count = 0, bad_new = 0, bad_old = 0;
	struct hak_tbin *b = &__hak_tc.bins[c];

	tap_plan(5);
	for (i = 0; i < NBLK; i++)
		blk[i] = malloc(SZ);
	for (i = 0; i < NBLK; i++) {
		uint32_t cap = b->cap, before = __hak_tbin_count(b), after, n;

		free(blk[i]);
		after = __hak_tbin_count(b);
		if (after > b->cap)
			bad_cap++;
		if (after > before)
			continue;
		over++;
		n = cap + 1 - cap / 2;
		if (n > SPILL_MAX)
			n = SPILL_MAX;
		if (before != cap || after != cap + 1 - n)
			bad_count++;
		for (k = 0; k < n && k <= i; k++) {
			void *p = blk[i - k];
			struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)p));

			if (bl_on_list(b->head, p, after + 1) || !bl_on_list(s->free, p, s->carved))
				bad_new++;
		}
		if (!bl_on_list(b->head, blk[0], after + 1))
			bad_old++;
	}
	tap_ok(over > 0, "%u frees of %d B overflowed the bin %u times (capacity %u)",
	       NBLK, SZ, over, b->cap);
	tap_ok(bad_cap == 0, "the bin never held more than its capacity (%u times)", bad_cap);
	tap_ok(bad_count == 0,
	       "each overflow came on a full bin and left cap + 1 - min(32, cap + 1 - cap / 2) (%u wrong)",
	       bad_count);
	tap_ok(bad_new == 0,
	       "the blocks that left were the newest, each on its slab's free list (%u wrong)",
	       bad_new);
	tap_ok(bad_old == 0, "the oldest block stayed in the bin (%u overflows without it)",
	       bad_old);
	tap_finish();
}
