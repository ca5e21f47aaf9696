// SPDX-License-Identifier: MIT
/*
 * hd_l25_lazy: with the hardened box, an L2.5 region gets the guard page
 * of a block slot when that block is first handed out, not all of them
 * when the region is given its class (a region of 200 KiB blocks had its
 * nine guards made by nine mprotect calls for the one or two blocks a
 * program used). Checked page by page (selftests/lib/guardpage.h: mprotect
 * guards and page-table markers alike): a fresh region holds exactly one
 * guard after its first block, right after the block's usable end, two
 * after a second block, still two when a freed block is handed out again,
 * and each block's guard is where an overflow off its end runs. The purge
 * of a free block's slot (madvise(MADV_DONTNEED) over the block and its
 * guard) keeps the guard: the block is not guarded again when it is next
 * handed out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include "tap.h"
#include "guardpage.h"
#include "box.h"
#include "boxes/hardened/hardened.h"

#define REGION	(2UL << 20)

/* Is the page right after p's usable bytes a guard (one page)? */
static int guarded_end(void *p)
{
	uintptr_t end = (uintptr_t)p + malloc_usable_size(p), first;

	return guards_in(end, end + hak_hd_guard_len(), &first) == 1 && first == end;
}

int main(void)
{
	uintptr_t r, first, end;
	void *p, *q, *q2, *s;

	tap_plan(9);
	p = malloc(200000);
	r = (uintptr_t)p & ~(REGION - 1);
	if (!IS_ENABLED(CONFIG_HAK_L25_POOL) || !p || !hak_hd_guard_len())
		tap_skip_all("no L2.5 pool with guard pages in this build");
	tap_ok(guards_in(r, r + REGION, &first) == 1,
	       "a fresh region holds one guard after its first block");
	tap_ok(guarded_end(p), "that guard is right after the block's usable end");
	q = malloc(200000);
	tap_ok(q && ((uintptr_t)q & ~(REGION - 1)) == r &&
	       guards_in(r, r + REGION, &first) == 2,
	       "a second block of the region adds its guard");
	tap_ok(q && guarded_end(q), "the second block's guard is right after it");
	free(q);
	q2 = malloc(200000);
	tap_ok(q2 && guards_in(r, r + REGION, &first) == 2 && guarded_end(q2),
	       "a block handed out again keeps its guard, none is added");
	s = malloc(60000);
	r = (uintptr_t)s & ~(REGION - 1);
	tap_ok(s && guards_in(r, r + REGION, &first) == 1 && guarded_end(s),
	       "another class's fresh region: one guard, after its block");
	free(p);
	free(q2);
	free(s);
	p = malloc(200000);
	tap_ok(p && guarded_end(p), "a block freed and taken again is still guarded");

	/* A free block's slot purged (its guard inside the range), then reused. */
	q = malloc(200000);
	memset(p, 1, 200000);
	memset(q, 1, 200000);
	r = (uintptr_t)q;
	end = r + malloc_usable_size(q);
	__asm__ __volatile__("" : "+r"(r));	/* a number now, not q */
	free(q);
	malloc_trim(0);
	{
		unsigned char v = 1;

		tap_ok(mincore((void *)r, 4096, &v) == 0 && !(v & 1) &&
		       guards_in(end, end + hak_hd_guard_len(), &first) == 1 && first == end,
		       "a free block's slot purged (not resident): its guard stays");
	}
	q2 = malloc(200000);
	tap_ok((uintptr_t)q2 == r && guarded_end(q2), "handed out again after the purge: still guarded");
	free(q2);
	free(p);
	tap_finish();
}
