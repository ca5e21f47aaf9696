// SPDX-License-Identifier: MIT
/*
 * api_align_mix: every aligned entry point among live malloc neighbours.
 *
 * An aligned block may be an address inside a larger block (hakmem's
 * header box cuts it from a small slot), so freeing it must touch nothing
 * outside the bytes it owns. For posix_memalign, aligned_alloc, memalign
 * (also with alignments that are not powers of two), valloc and pvalloc,
 * each alignment 16 B .. 64 KiB (a page for valloc/pvalloc) and the sizes
 * 0, 1, 15, 16, 17, a - 16, a - 1, a, a + 1 and 3a, proves that
 *  - every block is aligned, has a usable size of at least n and is
 *    writable at both ends of it (api_align writes all of it);
 *  - allocating and freeing 128 of them (16 when each is over 4 KiB; in
 *    LIFO, FIFO or interleaved order, some with free_aligned_sized) in the
 *    holes of a pool of 256 (32) malloc(n + a - 16) blocks of which every
 *    other or every third one is live, leaves
 *    every live neighbour's contents and malloc_usable_size unchanged,
 *    and the neighbours then free cleanly (the fail-fast box checks each).
 * The pool's size is the one an aligned request of n bytes takes its slot
 * from in hakmem, so the aligned blocks land next to live blocks in any
 * carve order (the hardened box randomises it). Before the fix, an aligned
 * block of size 0 could be the very end of its slot, and its free wrote
 * the free mark into the next block's header (fail-fast: "not a block
 * boundary", class 0): this test caught it in every configuration with the
 * header box, where api_align did in 4 of 30 runs of one box combination.
 */
#include "core_test.h"

#if CT_HAKMEM
void free_aligned_sized(void *p, size_t align, size_t size);
#endif

#define POOL	256
#define NALIGN	(POOL / 2)

enum { F_POSIX, F_ALIGNED, F_MEMALIGN, F_VALLOC, F_PVALLOC, NFUNC };
static const char *const fname[NFUNC] = {
	"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
};

static size_t page;
static unsigned long cases, bad_alloc, bad_neigh, bad_usable, bad_cases;

/*
 * A neighbour's first and last 64 bytes carry the pattern: what a stray
 * write next to a block reaches (its header, the end of the block before
 * it), without filling 32 KiB blocks byte by byte.
 */
static void fill_ends(void *p, size_t u)
{
	size_t e = u < 128 ? u : 64;

	ct_fill(p, e);
	if (u > e)
		ct_fill((char *)p + u - e, e);
}

static int ends_intact(const void *p, size_t u)
{
	size_t e = u < 128 ? u : 64;

	return ct_check(p, e) == e && (u <= e || ct_check((const char *)p + u - e, e) == e);
}

static void *get(int f, size_t a, size_t n)
{
	void *p = NULL;

	switch (f) {
	case F_POSIX:
		if (posix_memalign(&p, a, n))
			p = NULL;
		break;
	case F_ALIGNED:
		p = aligned_alloc(a, n);
		break;
	case F_MEMALIGN:
		p = memalign(a, n);
		break;
	case F_VALLOC:
		p = valloc(n);
		break;
	case F_PVALLOC:
		p = pvalloc(n);
		break;
	}
	return p;
}

/* The alignment memalign gives for a (the next power of two, at least 16). */
static size_t pow2_at_least(size_t a)
{
	size_t p = 16;

	while (p < a)
		p <<= 1;
	return p;
}

/* Index of the k-th block to free among m, in order variant v. */
static unsigned order(unsigned v, unsigned k, unsigned m)
{
	switch (v % 3) {
	case 0:
		return m - 1 - k;			/* LIFO */
	case 1:
		return k;				/* FIFO */
	default:
		return k < (m + 1) / 2 ? 2 * k : 2 * (k - (m + 1) / 2) + 1;	/* evens, odds */
	}
}

static void one_case(int f, size_t a, size_t n, unsigned v)
{
	static void *pool[POOL], *x[NALIGN];
	static size_t pu[POOL];
	size_t eff = f == F_MEMALIGN ? pow2_at_least(a) : f >= F_VALLOC ? page : a;
	size_t nb = n + eff > 16 ? n + eff - 16 : 1;
	size_t want = f == F_PVALLOC ? (n ? (n + page - 1) & ~(page - 1) : page) : n;
	/*
	 * Many of them where a block can share a slot with another (small
	 * sizes); a few where each is a mapping of its own.
	 */
	unsigned npool = nb <= 4096 ? POOL : POOL / 8, nx;
	unsigned long bad_here = 0;

	if (nb > 32768)
		nb = 32768;
	if (ct_quick())
		npool /= 4;
	nx = npool / 2;
	cases++;
	for (unsigned i = 0; i < npool; i++) {
		pool[i] = malloc(ct_opaque(nb));
		if (!pool[i]) {
			bad_alloc++;
			continue;
		}
		pu[i] = malloc_usable_size(pool[i]);
		fill_ends(pool[i], pu[i]);
	}
	/* Holes: odd (or every third) blocks go back, their neighbours stay. */
	for (unsigned i = 0; i < npool; i++)
		if (v & 1 ? i % 3 == 1 : i % 2 == 1) {
			free(pool[i]);
			pool[i] = NULL;
		}
	for (unsigned i = 0; i < nx; i++) {
		size_t u;

		x[i] = get(f, ct_opaque(a), ct_opaque(n));
		if (!x[i] || !ct_is_aligned(x[i], eff) || !ct_is_aligned(x[i], 16) ||
		    (u = malloc_usable_size(x[i])) < want) {
			if (bad_alloc++ < 5)
				tap_diag("%s(align %zu, size %zu) = %p usable %zu", fname[f], a, n,
					 x[i], x[i] ? malloc_usable_size(x[i]) : 0);
			continue;
		}
		memset(x[i], 0x5a, u < 128 ? u : 64);	/* api_align writes all */
		memset((char *)x[i] + u - (u < 128 ? u : 64), 0x5a, u < 128 ? u : 64);
	}
	for (unsigned k = 0; k < nx; k++) {
		unsigned i = order(v, k, nx);

#if CT_HAKMEM
		if (f == F_ALIGNED && v % 4 == 3) {
			free_aligned_sized(x[i], a, n);
			continue;
		}
#endif
		free(x[i]);
	}
	for (unsigned i = 0; i < npool; i++) {
		if (!pool[i])
			continue;
		if (malloc_usable_size(pool[i]) != pu[i]) {
			bad_usable++;
			bad_here++;
		} else if (!ends_intact(pool[i], pu[i])) {
			bad_neigh++;
			bad_here++;
		}
	}
	if (bad_here && bad_cases++ < 5)
		tap_diag("%s(align %zu, size %zu): %lu live neighbours changed", fname[f], a, n,
			 bad_here);
	for (unsigned k = 0; k < npool; k++)
		free(pool[order(v + 1, k, npool)]);
}

static void run(int f, size_t a, unsigned *v)
{
	size_t e = f == F_MEMALIGN ? pow2_at_least(a) : a;
	size_t sizes[] = { 0, 1, 15, 16, 17, e - 16, e - 1, e, e + 1, 3 * e };

	for (size_t i = 0; i < ARRAY_SIZE_CT(sizes); i++)
		one_case(f, a, sizes[i], (*v)++);
}

int main(void)
{
	static const size_t odd[] = { 24, 48, 96, 200, 1000, 3000 };
	unsigned v = 0;

	page = (size_t)sysconf(_SC_PAGESIZE);
	tap_plan(3);
	for (int f = F_POSIX; f <= F_MEMALIGN; f++)
		for (size_t a = 16; a <= 65536; a <<= 1)
			run(f, a, &v);
	for (size_t i = 0; i < ARRAY_SIZE_CT(odd); i++)
		run(F_MEMALIGN, odd[i], &v);
	run(F_VALLOC, page, &v);
	run(F_PVALLOC, page, &v);
	tap_ok(bad_alloc == 0, "%lu cases of 5 aligned entry points: every block aligned, "
	       "usable >= n, writable (%lu bad)", cases, bad_alloc);
	tap_ok(bad_usable == 0, "freeing the aligned blocks leaves the usable size of "
	       "every live neighbour alone (%lu changed)", bad_usable);
	tap_ok(bad_neigh == 0, "freeing the aligned blocks leaves the contents of every "
	       "live neighbour alone (%lu damaged)", bad_neigh);
	tap_finish();
}
