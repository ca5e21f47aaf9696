// SPDX-License-Identifier: MIT
/*
 * shed: a bin trimmed to keep blocks (__hak_tcache_trim, the adaptive
 * box's shrink) sends its newest blocks to their slabs and keeps its
 * oldest keep, in their order (lib/heap.c, bin_shed; Documentation/
 * design.md, "The adaptive shrink's trim").
 *
 * Fills the 64 B bin by freeing blocks, records its list, trims it to a
 * quarter and proves that
 *  - the bin then holds exactly keep blocks;
 *  - they are the keep oldest of the recorded list, in the same order;
 *  - every block that left is on its slab's free list, not in the bin.
 */
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "tcache.h"
#include "superslab.h"
#include "bin_list.h"

#define SZ		64
#define NBLK		4096

static void *blk[NBLK], *was[NBLK];

int main(void)
{
	unsigned c = __hak_class_of(SZ), i, n = 0, freed, keep, bad_kept = 0, bad_gone = 0;
	struct hak_tbin *b = &__hak_tc.bins[c];
	void *q;

	tap_plan(4);
	for (i = 0; i < NBLK; i++)
		blk[i] = malloc(SZ);
	/* free until just before the bin would overflow */
	for (i = 0; i < NBLK && __hak_tbin_count(b) < b->cap; i++)
		free(blk[i]);
	freed = i;
	for (q = b->head; q && n < NBLK; q = __hak_link(q))
		was[n++] = q;
	keep = n / 4;
	tap_ok(n == __hak_tbin_count(b) && n >= 8, "the bin holds %u blocks (capacity %u)", n,
	       b->cap);
	__hak_tcache_trim(c, keep);
	tap_ok(__hak_tbin_count(b) == keep, "trimmed to %u: holds %u", keep, __hak_tbin_count(b));
	for (i = 0, q = b->head; i < keep; i++, q = q ? __hak_link(q) : NULL)
		if (q != was[n - keep + i])
			bad_kept++;
	tap_ok(bad_kept == 0 && !q, "the %u oldest stayed, in order (%u wrong)", keep, bad_kept);
	for (i = 0; i < n - keep; i++) {
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)was[i]));

		if (bl_on_list(b->head, was[i], keep + 1) || !bl_on_list(s->free, was[i], s->carved))
			bad_gone++;
	}
	tap_ok(bad_gone == 0, "the %u newest are on their slabs' free lists (%u wrong)", n - keep,
	       bad_gone);
	for (i = freed; i < NBLK; i++)
		free(blk[i]);
	tap_finish();
}
