// SPDX-License-Identifier: MIT
/*
 * calloc of a large block that may hold old data (a cached block, or one
 * grown or filled from cached pages: lib/large.h, struct hak_large_dirty)
 * clears that part. A memset writes every page of it, so the pages that
 * are not resident (a block calloc'ed, never written, freed and cached:
 * gdk-pixbuf's cve-2015-4491 test callocs 64 MiB twice; or swapped out)
 * are faulted in just to be zeroed: 85 MB peak where glibc, which maps
 * fresh zero pages, has 15. Here the part's page residency is read first
 * (mincore, about 1 us per MiB) and
 *   - a run of resident pages is cleared with memset: the program most
 *     likely writes them again (it did before), and a memset costs a
 *     tenth of giving them back and faulting them in again
 *     (madvise + write: 2.4x to 13x memset + write, 256 KiB..64 MiB);
 *   - a run of pages that are not resident is given back with
 *     madvise(MADV_DONTNEED): they read as 0 and stay out of RSS until
 *     the program touches them (a swapped-out page's swap slot is dropped).
 * Correctness does not rest on mincore: either way a page reads as 0
 * (the block is private anonymous memory and nobody else touches it), so
 * a page that changes residency in between costs time, never data. A
 * refused madvise or mincore falls back to memset.
 *
 * Below ZERO_PROBE_MIN the memset alone is cheaper than the mincore call
 * when the pages are resident, the common case of a program that
 * callocs and writes its buffers.
 *
 * Guard pages (hardened box) are never inside a block; a whole block's
 * mapping is never calloc'ed. Page accounting is unchanged: the block
 * stays mapped (the large registry's bytes), and BigCache counts a block
 * it caches as resident whatever pages of it were touched, as it does a
 * fresh block's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <hak/compiler.h>
#include "os.h"
#include "zero.h"

#define ZERO_PROBE_MIN	((size_t)1 << 20)
#define ZERO_VEC	1024	/* pages probed per mincore call (4 MiB) */

typedef uint64_t __attribute__((may_alias)) zero_word;

/*
 * Does the page at p read as 0? Its first word decides for a page of old
 * data (one load, which the memset then finds cached); a page whose first
 * word is 0 is read on.
 */
static bool page_zero(const char *p)
{
	const zero_word *w = (const zero_word *)p;
	size_t i;

	if (w[0])
		return false;
	for (i = 0; i < HAK_OS_PAGE / sizeof(*w); i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

/*
 * Clear the n whole pages at p: memset of the runs of pages that hold
 * data; a page that reads as 0 is left alone, unwritten (mapped to the
 * kernel's zero page, or a resident page that holds zeros).
 */
static void clear_pages(char *p, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (!page_zero(p + i * HAK_OS_PAGE)) {
			run++;
			continue;
		}
		if (run)
			memset(p + (i - run) * HAK_OS_PAGE, 0, run * HAK_OS_PAGE);
		run = 0;
	}
	if (run)
		memset(p + (n - run) * HAK_OS_PAGE, 0, run * HAK_OS_PAGE);
}

/* Clear the whole pages [p, p + len) of n <= ZERO_VEC pages, run by run. */
static void zero_chunk(char *p, size_t n)
{
	unsigned char vec[ZERO_VEC];
	size_t i = 0, j;

	if (!__hak_os_resident(p, n * HAK_OS_PAGE, vec)) {
		clear_pages(p, n);
		return;
	}
	while (i < n) {
		bool in = vec[i] & 1;
		char *q = p + i * HAK_OS_PAGE;

		for (j = i + 1; j < n && (vec[j] & 1) == in; j++)
			;
		if (in || !__hak_os_purge(q, (j - i) * HAK_OS_PAGE))
			clear_pages(q, j - i);
		i = j;
	}
}

void __hak_zero_big(void *p, size_t len)
{
	char *s = p, *e = s + len, *a, *b;
	int saved;

	a = (char *)HAK_ALIGN_UP((uintptr_t)s, HAK_OS_PAGE);
	b = (char *)((uintptr_t)e & ~(HAK_OS_PAGE - 1));
	if (a >= b) {
		memset(s, 0, len);
		return;
	}
	memset(s, 0, (size_t)(a - s));
	memset(b, 0, (size_t)(e - b));
	if (len < ZERO_PROBE_MIN) {
		clear_pages(a, (size_t)(b - a) / HAK_OS_PAGE);
		return;
	}
	saved = errno;
	while (a < b) {
		size_t n = (size_t)(b - a) / HAK_OS_PAGE;

		if (n > ZERO_VEC)
			n = ZERO_VEC;
		zero_chunk(a, n);
		a += n * HAK_OS_PAGE;
	}
	errno = saved;
}
