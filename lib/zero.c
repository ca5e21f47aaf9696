// SPDX-License-Identifier: MIT
/*
 * calloc of a large block that may hold old data (a cached block, or one
 * grown or filled from cached pages: lib/large.h, struct hak_large_dirty)
 * clears that part. A plain memset writes every page of it, so pages the
 * last user never wrote (a block calloc'ed, only read, freed and cached:
 * gdk-pixbuf's cve-2015-4491 test callocs 64 MiB, scales from it, frees
 * it, three times) were faulted in just to be zeroed: 85 MB peak where
 * glibc, which maps fresh pages for each, has 15.
 *
 * From ZERO_PROBE_MIN up the part is cleared in chunks of ZERO_VEC pages:
 *   - a chunk whose sampled pages (every ZERO_SAMPLE-th) all start with a
 *     nonzero word is taken as written all over and cleared with memset:
 *     the program most likely writes it again, and a memset costs a
 *     tenth of giving the pages back and faulting them in again
 *     (madvise + write: 2.4x to 13x memset + write, 256 KiB..64 MiB);
 *   - else mincore says which of its pages are resident, and each page is
 *     data (resident, not reading as 0: cleared with memset, in runs),
 *     zero (resident and reading as 0, such as the kernel's zero page
 *     after a read: left alone) or absent (never touched, or swapped out:
 *     given back with madvise(MADV_DONTNEED), in runs with the zero pages
 *     between them; they read as 0 and stay out of RSS until the program
 *     writes them).
 * Correctness does not rest on the sampling or on mincore: every page ends
 * up written with zeros, read as zero, or dropped (the block is private
 * anonymous memory, and nobody else touches it yet), so a guess that is
 * wrong costs time, never data. A refused madvise or mincore falls back to
 * memset. Cost when the block was written all over (the program's write
 * after the calloc included): 1.00-1.03x a plain memset at 1-16 MiB.
 *
 * Below ZERO_PROBE_MIN the memset alone is kept: small blocks are cheap
 * to fault, and most of them get written.
 *
 * Guard pages (hardened box) are never inside a block; a whole block's
 * mapping is never calloc'ed. Page accounting: the block stays mapped
 * (the large registry's bytes); the bytes given back are counted
 * (__hak_zero_purged, malloc_info's zero_purged). BigCache's own counter
 * still takes a block it caches later as resident whatever pages of it
 * are (it steers its purges by it); its reported resident bytes come from
 * mincore (hak_bigcache_resident).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <hak/compiler.h>
#include <asm/atomic.h>
#include "os.h"
#include "zero.h"

#define ZERO_PROBE_MIN	((size_t)1 << 20)
#define ZERO_VEC	1024	/* pages per chunk: one mincore call (4 MiB) */
#define ZERO_SAMPLE	16	/* a chunk's pages per sampled page */

typedef uint64_t __attribute__((may_alias)) zero_word;

static size_t zero_purged;	/* atomic: bytes given back, ever */

static inline bool first_word_zero(const char *p)
{
	return !*(const zero_word *)p;
}

/* Does the (readable) page at p read as 0? */
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
 * Clear the n whole pages at p with memset, in runs, leaving alone the
 * pages that read as 0 already (unwritten: a page mapped to the kernel's
 * zero page stays so).
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

/*
 * Does every ZERO_SAMPLE-th page of the n at p start with a nonzero word?
 * Then the chunk is taken as old data all over (the usual case: the last
 * user wrote it) and cleared with one memset: ZERO_SAMPLE times fewer
 * loads than a look at every page, and no system call.
 */
static bool looks_written(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i += ZERO_SAMPLE)
		if (first_word_zero(p + i * HAK_OS_PAGE))
			return false;
	return true;
}

enum { PAGE_ABSENT, PAGE_ZERO, PAGE_DATA };

/*
 * Clear the n <= ZERO_VEC whole pages at p. Each page is absent (not
 * resident), zero (resident, reads as 0: a page that held zeros, or the
 * kernel's zero page after a read) or data. Runs of data pages are
 * cleared with memset; a run of the others is given back with madvise
 * when it holds an absent page (the zero pages in it go too: a sampled
 * page that the look mapped to the zero page does not cut the run), and
 * is left alone when all of it reads as 0 already.
 */
static void zero_chunk(char *p, size_t n)
{
	unsigned char vec[ZERO_VEC];
	size_t i, j;
	bool data, absent;

	if (looks_written(p, n)) {
		memset(p, 0, n * HAK_OS_PAGE);
		return;
	}
	if (!__hak_os_resident(p, n * HAK_OS_PAGE, vec)) {
		clear_pages(p, n);
		return;
	}
	for (i = 0; i < n; i++)
		vec[i] = !(vec[i] & 1) ? PAGE_ABSENT :
			 page_zero(p + i * HAK_OS_PAGE) ? PAGE_ZERO : PAGE_DATA;
	for (i = 0; i < n; i = j) {
		char *q = p + i * HAK_OS_PAGE;

		data = vec[i] == PAGE_DATA;
		absent = vec[i] == PAGE_ABSENT;
		for (j = i + 1; j < n && (vec[j] == PAGE_DATA) == data; j++)
			absent |= vec[j] == PAGE_ABSENT;
		if (data)
			memset(q, 0, (j - i) * HAK_OS_PAGE);
		else if (absent && !__hak_os_purge(q, (j - i) * HAK_OS_PAGE))
			clear_pages(q, j - i);
		else if (absent)
			arch_fetch_add(&zero_purged, (j - i) * HAK_OS_PAGE);
	}
}

size_t __hak_zero_purged(void)
{
	return arch_load_relaxed(&zero_purged);
}

void __hak_zero_big(void *p, size_t len)
{
	char *s = p, *e = s + len, *a, *b;
	int saved;

	if (len < ZERO_PROBE_MIN) {
		memset(p, 0, len);
		return;
	}
	a = (char *)HAK_ALIGN_UP((uintptr_t)s, HAK_OS_PAGE);
	b = (char *)((uintptr_t)e & ~(HAK_OS_PAGE - 1));
	memset(s, 0, (size_t)(a - s));
	memset(b, 0, (size_t)(e - b));
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
