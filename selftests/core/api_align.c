// SPDX-License-Identifier: MIT
/*
 * api_align: alignment and usable size across the whole small/mid range.
 *
 * Proves that
 *  - for every size 0..65536 (with HAKMEM_SELFTEST_QUICK=1: every size up
 *    to 4096, then a sample with every power-of-two and 1 KiB boundary
 *    +/-1) malloc returns a 16-byte aligned block with
 *    malloc_usable_size(p) >= n, and every byte up to the usable size is
 *    writable without disturbing 255 other live blocks;
 *  - for every power-of-two alignment 1 B .. 1 MiB and the sizes 0, 1,
 *    align-1, align, align+1 and 100 KiB, posix_memalign, aligned_alloc and
 *    memalign return blocks with that alignment (and at least 16), usable
 *    size >= n, writable;
 *  - valloc is page aligned, pvalloc is page aligned and rounds the size up
 *    to whole pages;
 *  - malloc(0) returns distinct, freeable pointers.
 */
#include "core_test.h"

#define MAX_SIZE	65536
#define RING		256

static size_t page;

/* Fill the whole usable size with the byte 'v' and read back three spots. */
static int touch(void *p, size_t n, unsigned char v)
{
	size_t u = malloc_usable_size(p);
	unsigned char *c = p;

	if (u < n)
		return 0;
	memset(p, v, u);
	return u == 0 || (c[0] == v && c[u / 2] == v && c[u - 1] == v);
}

static int still(void *p, unsigned char v)
{
	size_t u = malloc_usable_size(p);
	unsigned char *c = p;

	if (u == 0)
		return 1;
	for (size_t i = 0; i < u; i += 61)
		if (c[i] != v)
			return 0;
	return c[u - 1] == v;
}

/*
 * In quick mode: every size up to 4096, then every 13th size and every
 * power of two and multiple of 1024 with its neighbours.
 */
static int size_wanted(size_t n)
{
	size_t m = n + 1;

	if (!ct_quick() || n <= 4096 || n % 13 == 0)
		return 1;
	return (n & (n - 1)) == 0 || (m & (m - 1)) == 0 || ((n - 1) & (n - 2)) == 0 ||
	       n % 1024 <= 1 || m % 1024 == 0;
}

static void every_size(void)
{
	void *ring[RING] = { 0 };
	unsigned char tag[RING] = { 0 };
	unsigned long bad_null = 0, bad_align = 0, bad_usable = 0, bad_data = 0;
	size_t first_bad = (size_t)-1;

	for (size_t n = 0; n <= MAX_SIZE; n++) {
		unsigned slot = n % RING;
		void *p;

		if (!size_wanted(n))
			continue;
		if (ring[slot]) {
			if (!still(ring[slot], tag[slot])) {
				bad_data++;
				if (first_bad == (size_t)-1)
					first_bad = n - RING;
			}
			free(ring[slot]);
			ring[slot] = NULL;
		}
		p = malloc(ct_opaque(n));
		if (!p) {
			bad_null++;
			if (first_bad == (size_t)-1)
				first_bad = n;
			continue;
		}
		if (!ct_is_aligned(p, 16)) {
			bad_align++;
			if (first_bad == (size_t)-1)
				first_bad = n;
		}
		tag[slot] = (unsigned char)(n * 7 + 1);
		if (!touch(p, n, tag[slot])) {
			bad_usable++;
			if (first_bad == (size_t)-1)
				first_bad = n;
		}
		ring[slot] = p;
	}
	for (unsigned i = 0; i < RING; i++) {
		if (ring[i] && !still(ring[i], tag[i]))
			bad_data++;
		free(ring[i]);
	}
	if (first_bad != (size_t)-1)
		tap_diag("first failing size: %zu", first_bad);
	tap_ok(bad_null == 0, "malloc(n) != NULL for every n in 0..%d (%lu failed)",
	       MAX_SIZE, bad_null);
	tap_ok(bad_align == 0, "malloc(n) is 16-byte aligned for every n (%lu not)",
	       bad_align);
	tap_ok(bad_usable == 0,
	       "malloc_usable_size(p) >= n and writable to it for every n (%lu not)",
	       bad_usable);
	tap_ok(bad_data == 0,
	       "256 live neighbours keep their contents throughout (%lu damaged)",
	       bad_data);
}

enum { F_POSIX, F_ALIGNED, F_MEMALIGN, NFUNC };
static const char *const fname[NFUNC] = {
	"posix_memalign", "aligned_alloc", "memalign",
};

static void *alloc_aligned(int f, size_t a, size_t n, int *err)
{
	void *p = NULL;

	*err = 0;
	switch (f) {
	case F_POSIX:
		*err = posix_memalign(&p, a, n);
		if (*err)
			p = NULL;
		break;
	case F_ALIGNED:
		p = aligned_alloc(a, n);
		break;
	case F_MEMALIGN:
		p = memalign(a, n);
		break;
	}
	if (!p && !*err)
		*err = errno;
	return p;
}

static void every_alignment(void)
{
	for (int f = 0; f < NFUNC; f++) {
		unsigned long tried = 0, bad = 0;

		for (size_t a = 1; a <= (1u << 20); a <<= 1) {
			size_t sizes[] = { 0, 1, a - 1, a, a + 1, 100 * 1024 };
			/* posix_memalign needs a multiple of sizeof(void *). */
			size_t ea = a;

			if (f == F_POSIX && a < sizeof(void *))
				ea = sizeof(void *);
			for (size_t i = 0; i < ARRAY_SIZE_CT(sizes); i++) {
				size_t n = sizes[i];
				int err;
				void *p = alloc_aligned(f, ct_opaque(ea), ct_opaque(n), &err);

				tried++;
				if (!p || !ct_is_aligned(p, ea) || !ct_is_aligned(p, 16) ||
				    !touch(p, n, (unsigned char)(a + n))) {
					if (bad++ < 5)
						tap_diag("%s(align %zu, size %zu) = %p err %d usable %zu",
							 fname[f], ea, n, p, err,
							 p ? malloc_usable_size(p) : 0);
				}
				free(p);
			}
		}
		tap_ok(bad == 0, "%s honours every power-of-two alignment 1..1MiB (%lu/%lu bad)",
		       fname[f], bad, tried);
	}

	/* Many live over-aligned blocks at once, interleaved with malloc. */
	{
		enum { N = 64 };
		void *p[N], *q[N];
		unsigned long bad = 0;

		for (int i = 0; i < N; i++) {
			size_t a = (size_t)16 << (i % 13);

			p[i] = aligned_alloc(a, ct_opaque(a * (1 + i % 3)));
			q[i] = malloc(ct_opaque((size_t)i * 37));
			if (!p[i] || !ct_is_aligned(p[i], a) || !q[i])
				bad++;
			else
				ct_fill(p[i], a * (1 + i % 3));
		}
		for (int i = 0; i < N; i++) {
			size_t a = (size_t)16 << (i % 13);

			if (p[i] && ct_check(p[i], a * (1 + i % 3)) != a * (1 + i % 3))
				bad++;
			free(p[i]);
			free(q[i]);
		}
		tap_ok(bad == 0, "64 live aligned blocks (16B..64KiB) interleaved with malloc keep contents");
	}
}

static void page_calls(void)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 4095, 4096, 4097,
					8191, 65536, 100 * 1024, 1 << 20, (3 << 20) + 5 };
	unsigned long bad_v = 0, bad_p = 0;

	for (size_t i = 0; i < ARRAY_SIZE_CT(sizes); i++) {
		size_t n = sizes[i];
		void *v = valloc(ct_opaque(n));
		void *pv = pvalloc(ct_opaque(n));
		size_t rounded = (n + page - 1) & ~(page - 1);

		if (!v || !ct_is_aligned(v, page) || !touch(v, n, 0x5a)) {
			if (bad_v++ < 3)
				tap_diag("valloc(%zu) = %p", n, v);
		}
		if (!pv || !ct_is_aligned(pv, page) || !touch(pv, rounded, 0xa5)) {
			if (bad_p++ < 3)
				tap_diag("pvalloc(%zu) = %p usable %zu, want >= %zu", n, pv,
					 pv ? malloc_usable_size(pv) : 0, rounded);
		}
		free(v);
		free(pv);
	}
	tap_ok(bad_v == 0, "valloc returns page-aligned blocks of at least n bytes");
	tap_ok(bad_p == 0, "pvalloc returns page-aligned blocks rounded up to whole pages");
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void zero_size(void)
{
	enum { N = 1000 };
	static void *p[N];
	unsigned long nulls = 0, dups = 0;

	for (int i = 0; i < N; i++) {
		p[i] = malloc(ct_opaque(0));
		if (!p[i])
			nulls++;
	}
	qsort(p, N, sizeof(p[0]), cmp_ptr);
	for (int i = 1; i < N; i++)
		if (p[i] && p[i] == p[i - 1])
			dups++;
	tap_ok(nulls == 0 && dups == 0,
	       "1000 x malloc(0): all non-NULL and distinct (%lu NULL, %lu dup)", nulls, dups);
	for (int i = 0; i < N; i++)
		free(p[i]);
	p[0] = malloc(ct_opaque(0));
	p[1] = realloc(NULL, ct_opaque(0));
	tap_ok(p[0] && p[1] && p[0] != p[1] && ct_is_aligned(p[0], 16),
	       "malloc(0) and realloc(NULL, 0) give distinct aligned blocks after frees");
	free(p[0]);
	free(p[1]);
}

int main(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	tap_plan(12);
	every_size();
	every_alignment();
	page_calls();
	zero_size();
	tap_finish();
}
