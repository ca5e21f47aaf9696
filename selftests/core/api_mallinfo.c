// SPDX-License-Identifier: MIT
/*
 * api_mallinfo: the old mallinfo(), whose fields are int.
 *
 * Proves that
 *  - with a small heap every field of mallinfo() is the field of
 *    mallinfo2() taken at the same moment;
 *  - (hakmem) past 2 GiB a figure is clamped to INT_MAX, never wrapped to a
 *    negative or small count (glibc truncates: a program would read a few
 *    hundred MiB of mapped blocks, or a negative figure): hblkhd with a
 *    2.5 GiB block live, untouched;
 *  - after that block is freed the fields are back under 2 GiB.
 */
#include <limits.h>

#include "core_test.h"

#define GIB	((size_t)1 << 30)

/* mallinfo's int against mallinfo2's size_t, clamped as hakmem does. */
static int same(int v, size_t v2)
{
	return (size_t)v == (v2 > INT_MAX ? (size_t)INT_MAX : v2);
}

static int all_same(const struct mallinfo *mi, const struct mallinfo2 *m2)
{
	return same(mi->arena, m2->arena) && same(mi->ordblks, m2->ordblks) &&
	       same(mi->smblks, m2->smblks) && same(mi->hblks, m2->hblks) &&
	       same(mi->hblkhd, m2->hblkhd) && same(mi->usmblks, m2->usmblks) &&
	       same(mi->fsmblks, m2->fsmblks) && same(mi->uordblks, m2->uordblks) &&
	       same(mi->fordblks, m2->fordblks) && same(mi->keepcost, m2->keepcost);
}

int main(void)
{
	struct mallinfo2 m2, m2b;
	struct mallinfo mi;
	void *small = ct_launder(malloc(ct_opaque(1000)));
	void *big;
	int tries;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	tap_plan(3);
	/* nothing allocates between the two calls; a thread of the allocator
	 * (background purge) may move a figure: take the pair again then */
	for (tries = 0; tries < 10; tries++) {
		m2 = mallinfo2();
		mi = mallinfo();
		m2b = mallinfo2();
		if (!memcmp(&m2, &m2b, sizeof(m2)))
			break;
	}
	tap_ok(all_same(&mi, &m2), "small heap: mallinfo() is mallinfo2() field by field "
	       "(arena %d, uordblks %d, hblkhd %d)", mi.arena, mi.uordblks, mi.hblkhd);

	big = ct_launder(malloc(ct_opaque(5 * GIB / 2)));
	if (!big || !CT_HAKMEM) {
		tap_skip("%s", big ? "glibc truncates the fields" : "no 2.5 GiB block here");
	} else {
		mi = mallinfo();
		m2 = mallinfo2();
		tap_ok(m2.hblkhd >= 5 * GIB / 2 && mi.hblkhd == INT_MAX && all_same(&mi, &m2),
		       "2.5 GiB block live: hblkhd clamped to INT_MAX, the other fields "
		       "mallinfo2's (hblkhd %d, mallinfo2 hblkhd %zu)", mi.hblkhd, m2.hblkhd);
	}
	free(big);
	mi = mallinfo();
	tap_ok(mi.hblkhd >= 0 && mi.hblkhd < INT_MAX && mi.uordblks >= 0 &&
	       mi.uordblks < INT_MAX, "freed: back under 2 GiB (hblkhd %d, uordblks %d)",
	       mi.hblkhd, mi.uordblks);
#pragma GCC diagnostic pop
	free(small);
	tap_finish();
}
