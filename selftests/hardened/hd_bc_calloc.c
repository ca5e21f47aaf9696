// SPDX-License-Identifier: MIT
/*
 * hd_bc_calloc: with the hardened box, calloc of a block that BigCache
 * joins from purged cached neighbours reads as 0 all over, the guard
 * pages that were between them included. A split of a cached block makes
 * the head's guard out of the tail's first page; with guard markers
 * (MADV_GUARD_INSTALL, Linux 6.13 on) that page's data goes, but a guard
 * made with mprotect (older kernels, valgrind, an mlock()ed range) kept
 * it: purged, the head and the tail were joined again as a block that
 * "reads as zero", and calloc handed out the old bytes of that page
 * (rv26, 2026-12-05). hd_fallback runs this again with mprotect guards.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include "tap.h"
#include "box.h"
#ifdef CONFIG_HAK_BIGCACHE
#include "boxes/bigcache/bc_internal.h"

#define PAGE	4096UL
#define N	1200000UL	/* above the L2.5 pool's largest maximum (1 MiB) */
#define TRY	6

static void *keep[TRY];

/*
 * Two neighbouring large blocks written with byte c, then freed into
 * BigCache (the others stay live in keep[], so nothing cached adjoins
 * them); *lo: the lower one, *len: their length. False when no two were
 * neighbours.
 */
static int two_cached(uintptr_t *lo, size_t *len, int c)
{
	int i, j;

	malloc_trim(0);
	for (i = 0; i < TRY; i++)
		keep[i] = malloc(N);
	*len = malloc_usable_size(keep[0]);
	for (i = 0; i < TRY; i++)
		for (j = 0; j < TRY; j++)
			if ((uintptr_t)keep[j] == (uintptr_t)keep[i] + *len + PAGE) {
				*lo = (uintptr_t)keep[i];
				memset(keep[i], c, *len);
				memset(keep[j], c, *len);
				free(keep[i]);
				free(keep[j]);
				keep[i] = keep[j] = NULL;
				return 1;
			}
	return 0;
}

/* Offset of the first nonzero byte of [p, p + n), or n. */
static size_t first_nonzero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return i;
	return n;
}

/* The head of a split freed, purged, joined again over its guard: calloc. */
static void joined_calloc(void)
{
	size_t len, want, at;
	unsigned char *p, *q;
	uintptr_t lo;

	__hak_bigcache_set_decay(0);
	__hak_bigcache_force_pressure(0);
	if (!two_cached(&lo, &len, 0xa5))
		tap_skip_all("two fresh large blocks are not neighbours here");

	/* joined and split: the head's guard is the second block's first pages */
	want = len + PAGE + (256UL << 10);
	p = malloc(want);
	if ((uintptr_t)p != lo)
		tap_skip_all("the two cached neighbours were not joined (%p, %#lx)",
			     (void *)p, (unsigned long)lo);
	tap_ok(malloc_usable_size(p) == want, "the head of %zu bytes handed out", want);
	memset(p, 0x5a, want);

	/* freed under pressure: the head and the tail are purged */
	__hak_bigcache_force_pressure(1);
	free(p);
	__hak_bigcache_force_pressure(0);

	/* head, guard, tail joined again: purged all over, says BigCache */
	q = calloc(1, 2 * len + PAGE);
	tap_ok((uintptr_t)q == lo, "head, guard and tail joined for the calloc (%p)", (void *)q);
	at = q ? first_nonzero(q, 2 * len + PAGE) : 0;
	tap_ok(q && at == 2 * len + PAGE,
	       "calloc's block of %zu bytes reads as 0 (first nonzero byte at %zu; the old guard at %zu)",
	       2 * len + PAGE, at, want);
	free(q);
	for (int i = 0; i < TRY; i++)
		free(keep[i]);
	__hak_bigcache_force_pressure(-1);
}
#endif

int main(void)
{
	tap_plan(0);
	if (!hak_hd_guard_len())
		tap_skip_all("no guard pages in this build");
#ifdef CONFIG_HAK_BIGCACHE
	joined_calloc();
#else
	tap_skip_all("no BigCache in this build: nothing is joined");
#endif
	tap_finish();
}
