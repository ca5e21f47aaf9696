// SPDX-License-Identifier: MIT
/*
 * calloc that gets a cached block back clears it without faulting in its
 * pages that are not resident (lib/zero.c): they are given back with
 * madvise and read as 0, while resident ones are cleared in place, those
 * that read as 0 already (the kernel's zero page) without a write.
 * Found by gdk-pixbuf's cve-2015-4491 test under LD_PRELOAD: calloc of
 * 64 MiB, never written, freed (cached), calloc'ed again: the memset of
 * the whole cached block made it all resident (85 MB peak, glibc 15 MB).
 * Each case checks residency (mincore) before it reads the block: a read
 * of a page that is not resident maps the zero page, which mincore then
 * reports.
 */
#include <sys/mman.h>
#include "bc_test.h"
#include "os.h"
#include "boxes/bigcache/bc_internal.h"

#define MIB		((size_t)1 << 20)
#define BIG		(64 * MIB)

/*
 * A fresh block of n bytes: the cache emptied first (a block cleared in
 * place by an earlier case would be resident all over).
 */
static void *fresh(size_t n, bool zero)
{
	void *p;

	malloc_trim(0);
	p = bc_launder(zero ? calloc(1, n) : malloc(n));
	/* 4 KiB pages, so that mincore counts what was written (hugepage box) */
	if (p)
		madvise(p, bc_page_up(n), MADV_NOHUGEPAGE);
	return p;
}

/*
 * calloc(n) right after a block of n bytes was freed: the cached block,
 * or NULL when the cache did not hand it back, its case's skips (checks of
 * them) then reported.
 */
static unsigned char *recalloc(void *old, size_t n, unsigned checks)
{
	size_t hits = bc_stats().hits;
	unsigned char *q;

	free(old);
	q = bc_launder(calloc(1, n));
	if (q && (q != old || bc_stats().hits != hits + 1)) {
		free(q);
		q = NULL;
	}
	if (!q) {
		tap_skip("the cache did not hand the block back");
		while (--checks)
			tap_skip("(no block)");
	}
	return q;
}

/* Written only on its first page, freed, calloc'ed again: not resident. */
static void untouched(void)
{
	unsigned char *p = fresh(BIG, true), *q;
	size_t r;

	if (!p)
		tap_bail("calloc(%zu MiB) failed", BIG / MIB);
	p[0] = 1;
	q = recalloc(p, BIG, 2);
	if (!q)
		return;
	r = bc_resident(q, BIG);
	tap_ok(r <= 1, "calloc(64 MiB) of a cached block written on one page: %zu pages "
	       "resident (at most 1)", r);
	r = bc_nonzero_at(q, BIG);
	tap_ok(r == BIG, "and it reads as 0 (first nonzero byte at %zu of %zu)", r, BIG);
	free(q);
}

/*
 * Read all over, never written (gdk-pixbuf's case: a scale reads the
 * calloc'ed source): its pages map the kernel's zero page, which mincore
 * reports as resident but RSS does not count. Cleared without a write,
 * they stay out of RSS.
 */
static void read_only(void)
{
	volatile unsigned char *p = fresh(BIG, true);
	unsigned char *q;
	size_t i, rss;
	unsigned sum = 0;

	if (!p)
		tap_bail("calloc(%zu MiB) failed", BIG / MIB);
	for (i = 0; i < BIG; i += BC_PAGE)
		sum += p[i];
	rss = bc_rss();
	q = recalloc((void *)p, BIG, 2);
	if (!q)
		return;
	rss = bc_rss() - rss;
	tap_ok(sum == 0 && rss < 2 * MIB, "calloc(64 MiB) of a cached block that was only "
	       "read: RSS grew by %zu KiB (less than 2 MiB)", rss >> 10);
	i = bc_nonzero_at(q, BIG);
	tap_ok(i == BIG, "and it reads as 0 (first nonzero byte at %zu of %zu)", i, BIG);
	free(q);
}

/*
 * Written all over, n not a page multiple (the tail page is cleared in
 * part): cleared in place, every page stays resident.
 */
static void written(void)
{
	size_t n = BIG - 100, r;
	unsigned char *p = fresh(n, false), *q;

	if (!p)
		tap_bail("malloc(%zu) failed", n);
	memset(p, 0xa5, malloc_usable_size(p));
	q = recalloc(p, n, 2);
	if (!q)
		return;
	r = bc_resident(q, n);
	tap_ok(r == bc_page_up(n) / BC_PAGE, "a cached block written all over: cleared in "
	       "place, %zu of %zu pages resident", r, bc_page_up(n) / BC_PAGE);
	r = bc_nonzero_at(q, n);
	tap_ok(r == n, "and it reads as 0 up to its last byte (first nonzero byte at %zu of %zu)",
	       r, n);
	free(q);
}

/*
 * Written in stripes (every other MiB, and single pages in between): only
 * those stay resident, all of it reads as 0.
 */
static void stripes(void)
{
	unsigned char *p = fresh(BIG, true), *q;
	size_t i, want = 0, r;

	if (!p)
		tap_bail("calloc(%zu MiB) failed", BIG / MIB);
	for (i = 0; i < BIG; i += 2 * MIB) {
		memset(p + i, 0x5a, MIB);
		p[i + MIB + 7 * BC_PAGE + 1] = 1;
		want += MIB / BC_PAGE + 1;
	}
	q = recalloc(p, BIG, 2);
	if (!q)
		return;
	r = bc_resident(q, BIG);
	tap_ok(r == want, "a cached block written in stripes: %zu pages resident (%zu written)",
	       r, want);
	r = bc_nonzero_at(q, BIG);
	tap_ok(r == BIG, "and it reads as 0 (first nonzero byte at %zu of %zu)", r, BIG);
	free(q);
}

/* madvise refused (fault injection): the pages are cleared with memset. */
static void purge_refused(void)
{
	unsigned char *p = fresh(BIG, true), *q;
	unsigned long f0 = hak_test_os_failed(HAK_OS_PURGE);
	size_t r;

	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT)) {
		free(p);
		tap_skip("fault injection is not built (CONFIG_HAK_FAULT_INJECT)");
		return;
	}
	if (!p)
		tap_bail("calloc(%zu MiB) failed", BIG / MIB);
	memset(p + BIG / 2, 0x33, BIG / 2);
	hak_test_os_fail(HAK_OS_PURGE, 0, ~0UL);
	q = recalloc(p, BIG, 1);
	hak_test_os_fail(HAK_OS_PURGE, 0, 0);
	if (!q)
		return;
	r = bc_nonzero_at(q, BIG);
	tap_ok(r == BIG && hak_test_os_failed(HAK_OS_PURGE) > f0,
	       "madvise refused: the block is cleared with memset (first nonzero byte at %zu, "
	       "%lu refusals)", r, hak_test_os_failed(HAK_OS_PURGE) - f0);
	free(q);
}

int main(void)
{
	tap_plan(0);
	bc_set_max(512 * MIB);
	__hak_bigcache_set_decay(0);
	__hak_bigcache_force_pressure(0);	/* a put must not purge it */
	__hak_large_whole_min = SIZE_MAX;
	untouched();
	read_only();
	written();
	stripes();
	purge_refused();
	malloc_trim(0);
	tap_finish();
}
