// SPDX-License-Identifier: MIT
/*
 * api_errors: errno and failure semantics of the whole malloc API, as
 * glibc defines them.
 *
 * Proves that
 *  - every allocating function fails with NULL and errno = ENOMEM for
 *    sizes that cannot be satisfied, including sizes that overflow only
 *    once rounded up (pvalloc/valloc to a page, aligned calls to their
 *    alignment) - never a crash, never a tiny block;
 *  - calloc and reallocarray reject nmemb * size overflow with ENOMEM;
 *  - a failed realloc leaves the old block intact and still owned;
 *  - posix_memalign returns EINVAL for an alignment that is not a power of
 *    two multiple of sizeof(void *) (errno untouched, *memptr untouched)
 *    and returns ENOMEM on exhaustion (*memptr untouched);
 *  - aligned_alloc/memalign with an impossible alignment give EINVAL;
 *    aligned_alloc with a non-power-of-two alignment gives EINVAL (glibc
 *    2.38+; 2.36 rounds it up, so that case is skipped on the system
 *    malloc), memalign rounds such an alignment up to a power of two (or
 *    rejects it with EINVAL; both are accepted);
 *  - realloc(p, 0) frees p and returns NULL, realloc(NULL, n) is malloc;
 *  - free(NULL) is a no-op, free keeps errno, malloc_usable_size(NULL) = 0;
 *  - free_sized/free_aligned_sized work (hakmem builds only: glibc 2.36
 *    does not have them).
 */
#include "core_test.h"

#if CT_HAKMEM
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
#endif

static size_t page;

/* A call that must fail with ENOMEM. */
static void expect_enomem(void *p, int err, const char *what)
{
	tap_ok(p == NULL && err == ENOMEM, "%s -> NULL, ENOMEM (got %p, errno %d)",
	       what, p, err);
	free(p);
}

#define ENOMEM_CASE(call, what) do {		\
	void *__p;				\
	int __e;				\
	errno = 0;				\
	__p = (call);				\
	__e = errno;				\
	expect_enomem(__p, __e, what);		\
} while (0)

static void huge_sizes(void)
{
	const size_t max = ct_opaque(SIZE_MAX);
	const size_t half = ct_opaque(SIZE_MAX / 2 + 1);
	const size_t pd = ct_opaque(PTRDIFF_MAX);
	const size_t m100 = ct_opaque(SIZE_MAX - 100);
	const size_t mpage = ct_opaque(SIZE_MAX - page + 2);	/* rounds past SIZE_MAX */
	const size_t tb = ct_opaque((size_t)1 << 46);		/* 64 TiB: fits no VM */

	ENOMEM_CASE(malloc(max), "malloc(SIZE_MAX)");
	ENOMEM_CASE(malloc(m100), "malloc(SIZE_MAX - 100)");
	ENOMEM_CASE(malloc(half), "malloc(SIZE_MAX/2 + 1)");
	ENOMEM_CASE(malloc(pd), "malloc(PTRDIFF_MAX)");
	ENOMEM_CASE(malloc(tb), "malloc(64 TiB)");
	ENOMEM_CASE(calloc(1, max), "calloc(1, SIZE_MAX)");
	ENOMEM_CASE(calloc(ct_opaque(SIZE_MAX / 2), 3), "calloc(SIZE_MAX/2, 3) (overflow)");
	ENOMEM_CASE(calloc(ct_opaque((size_t)1 << 32), ct_opaque((size_t)1 << 32)),
		    "calloc(2^32, 2^32) (overflow to 0)");
	ENOMEM_CASE(calloc(ct_opaque((size_t)1 << 23), ct_opaque((size_t)1 << 23)),
		    "calloc(2^23, 2^23) (64 TiB)");
	ENOMEM_CASE(reallocarray(NULL, ct_opaque(SIZE_MAX / 2), 3),
		    "reallocarray(NULL, SIZE_MAX/2, 3) (overflow)");
	ENOMEM_CASE(realloc(NULL, max), "realloc(NULL, SIZE_MAX)");
	ENOMEM_CASE(valloc(max), "valloc(SIZE_MAX)");
	ENOMEM_CASE(valloc(mpage), "valloc(SIZE_MAX - page + 2)");
	ENOMEM_CASE(pvalloc(m100), "pvalloc(SIZE_MAX - 100) (overflows when rounded)");
	ENOMEM_CASE(pvalloc(mpage), "pvalloc(SIZE_MAX - page + 2)");
	ENOMEM_CASE(memalign(64, max), "memalign(64, SIZE_MAX)");
	ENOMEM_CASE(memalign(ct_opaque(1 << 20), m100), "memalign(1 MiB, SIZE_MAX - 100)");
	ENOMEM_CASE(memalign(ct_opaque(4096), mpage), "memalign(4096, SIZE_MAX - page + 2)");
	ENOMEM_CASE(aligned_alloc(4096, max), "aligned_alloc(4096, SIZE_MAX)");
	ENOMEM_CASE(aligned_alloc(ct_opaque(1 << 20), m100),
		    "aligned_alloc(1 MiB, SIZE_MAX - 100)");
	ENOMEM_CASE(aligned_alloc(ct_opaque(4096), tb), "aligned_alloc(4096, 64 TiB)");
	/* A power-of-two alignment no address space can honour. */
	ENOMEM_CASE(memalign(half, 64), "memalign(2^63, 64)");
	ENOMEM_CASE(aligned_alloc(half, 64), "aligned_alloc(2^63, 64)");

	/* posix_memalign reports through its return value; *memptr untouched. */
	{
		static const struct { size_t a, n; const char *what; } pm[] = {
			{ 16, SIZE_MAX, "posix_memalign(16, SIZE_MAX)" },
			{ 4096, SIZE_MAX - 100, "posix_memalign(4096, SIZE_MAX - 100)" },
			{ 1 << 20, SIZE_MAX - (1 << 19), "posix_memalign(1 MiB, SIZE_MAX - 512 KiB)" },
			{ 64, (size_t)1 << 46, "posix_memalign(64, 64 TiB)" },
			{ SIZE_MAX / 2 + 1, 64, "posix_memalign(2^63, 64)" },
		};
		for (size_t i = 0; i < ARRAY_SIZE_CT(pm); i++) {
			void *p = (void *)0x1234;
			int rc = posix_memalign(&p, ct_opaque(pm[i].a), ct_opaque(pm[i].n));

			tap_ok(rc == ENOMEM && (p == (void *)0x1234 || p == NULL),
			       "%s returns ENOMEM, *memptr untouched (rc %d, p %p)",
			       pm[i].what, rc, p);
			if (!rc)
				free(p);
		}
	}
}

static void failed_realloc_keeps_block(void)
{
	static const size_t start[] = { 24, 5000, 300 * 1024, 8 << 20 };

	for (size_t i = 0; i < ARRAY_SIZE_CT(start); i++) {
		size_t n = start[i];
		unsigned char *p = malloc(ct_opaque(n)), *q;
		uintptr_t base;
		int e, ok;

		if (!p)
			tap_bail("malloc(%zu) failed", n);
		ct_fill(p, n);
		errno = 0;
		q = ct_realloc(p, ct_opaque(SIZE_MAX - 64));
		e = errno;
		ok = q == NULL && e == ENOMEM && ct_check(p, n) == n;
		errno = 0;
		q = ct_reallocarray(p, ct_opaque(SIZE_MAX / 4), 8);
		ok = ok && q == NULL && errno == ENOMEM && ct_check(p, n) == n;
		errno = 0;
		q = ct_realloc(p, ct_opaque((size_t)1 << 46));
		ok = ok && q == NULL && errno == ENOMEM && ct_check(p, n) == n;
		/* still ours: growable, with the contents carried over */
		base = (uintptr_t)ct_launder(p);
		q = ct_realloc(p, n * 2);
		if (!q) {
			ok = 0;
		} else {
			for (size_t j = 0; j < n; j++)
				if (q[j] != ct_pat((void *)base, j)) {
					ok = 0;
					break;
				}
		}
		tap_ok(ok, "failed realloc/reallocarray of a %zu-byte block: ENOMEM, block intact and reusable",
		       n);
		free(q ? (void *)q : (void *)p);
	}
}

static void bad_alignments(void)
{
	static const size_t bad[] = { 0, 1, 2, 4, 3, 12, 24, 48, 100, 4095, 4097,
				      SIZE_MAX };
	unsigned long wrong = 0;

	/* posix_memalign: EINVAL, errno and *memptr untouched. */
	for (size_t i = 0; i < ARRAY_SIZE_CT(bad); i++) {
		void *p = (void *)0x4321;
		int rc;

		/* 1, 2, 4 are powers of two but not multiples of sizeof(void *) */
		errno = 1234;
		rc = posix_memalign(&p, ct_opaque(bad[i]), 64);
		if (rc != EINVAL || errno != 1234 || p != (void *)0x4321) {
			if (wrong++ < 5)
				tap_diag("posix_memalign(align %zu): rc %d errno %d p %p",
					 bad[i], rc, errno, p);
			if (!rc)
				free(p);
		}
	}
	tap_ok(wrong == 0, "posix_memalign returns EINVAL for bad alignments, errno and *memptr untouched");

	/* An alignment above SIZE_MAX/2+1 can never be a power of two. */
	errno = 0;
	{
		void *p = aligned_alloc(ct_opaque(SIZE_MAX), 64);
		int e = errno;

		tap_ok(!p && e == EINVAL, "aligned_alloc(SIZE_MAX, 64) -> NULL, EINVAL (%p, %d)", p, e);
		free(p);
		errno = 0;
		p = memalign(ct_opaque(SIZE_MAX), 64);
		e = errno;
		tap_ok(!p && e == EINVAL, "memalign(SIZE_MAX, 64) -> NULL, EINVAL (%p, %d)", p, e);
		free(p);
		errno = 0;
		p = memalign(ct_opaque(SIZE_MAX / 2 + 2), 64);
		e = errno;
		tap_ok(!p && e == EINVAL, "memalign(2^63 + 1, 64) -> NULL, EINVAL (%p, %d)", p, e);
		free(p);
	}

	/* aligned_alloc with a non-power-of-two alignment: EINVAL (glibc >= 2.38). */
#if !CT_HAKMEM && defined(__GLIBC__) && (__GLIBC__ == 2 && __GLIBC_MINOR__ < 38)
	tap_skip("aligned_alloc non-power-of-two -> EINVAL: glibc %d.%d rounds up instead",
		 __GLIBC__, __GLIBC_MINOR__);
#else
	{
		static const size_t np2[] = { 0, 3, 24, 48, 100, 4097 };

		wrong = 0;
		for (size_t i = 0; i < ARRAY_SIZE_CT(np2); i++) {
			void *p;

			errno = 0;
			p = aligned_alloc(ct_opaque(np2[i]), 64);
			if (p || errno != EINVAL) {
				if (wrong++ < 5)
					tap_diag("aligned_alloc(%zu, 64) = %p errno %d",
						 np2[i], p, errno);
				free(p);
			}
		}
		tap_ok(wrong == 0, "aligned_alloc with alignment 0/3/24/48/100/4097 -> NULL, EINVAL");
	}
#endif

	/*
	 * memalign with a non-power-of-two alignment: glibc rounds it up to
	 * the next power of two; EINVAL is also accepted.
	 */
	{
		static const size_t np2[] = { 3, 24, 48, 100, 4097 };
		static const size_t up[] = { 16, 32, 64, 128, 8192 };

		wrong = 0;
		for (size_t i = 0; i < ARRAY_SIZE_CT(np2); i++) {
			void *p;

			errno = 0;
			p = memalign(ct_opaque(np2[i]), 100);
			if (p ? !ct_is_aligned(p, up[i]) || malloc_usable_size(p) < 100
			      : errno != EINVAL) {
				if (wrong++ < 5)
					tap_diag("memalign(%zu, 100) = %p errno %d", np2[i], p, errno);
			}
			if (p)
				memset(p, 0x11, 100);
			free(p);
		}
		tap_ok(wrong == 0,
		       "memalign with a non-power-of-two alignment rounds it up (or EINVAL)");
	}
}

static void zero_and_null(void)
{
	void *p, *q;
	int e;

	p = malloc(100);
	memset(p, 1, 100);
	errno = 0;
	q = realloc(p, ct_opaque(0));
	e = errno;
	tap_ok(q == NULL && e == 0, "realloc(p, 0) frees p and returns NULL, errno untouched (%p, %d)",
	       q, e);
	/* The freed memory must be reusable; a leak would show in mallinfo, a
	 * double free elsewhere: just allocate the same size again. */
	p = malloc(100);
	tap_ok(p != NULL, "allocating again after realloc(p, 0) works");
	free(p);

	p = malloc(1 << 20);
	q = realloc(p, ct_opaque(0));
	tap_ok(q == NULL, "realloc(p, 0) of a 1 MiB block returns NULL");

	errno = 0;
	p = realloc(NULL, ct_opaque(300));
	tap_ok(p && ct_is_aligned(p, 16) && malloc_usable_size(p) >= 300 && errno == 0,
	       "realloc(NULL, 300) behaves as malloc(300)");
	memset(p, 2, 300);
	free(p);
	p = realloc(NULL, ct_opaque(0));
	tap_ok(p != NULL, "realloc(NULL, 0) returns a unique block like malloc(0)");
	free(p);
	p = reallocarray(NULL, 10, 10);
	tap_ok(p && malloc_usable_size(p) >= 100, "reallocarray(NULL, 10, 10) behaves as malloc(100)");
	free(p);

	errno = 4321;
	free(NULL);
	free(ct_launder(NULL));
	tap_ok(errno == 4321, "free(NULL) is a no-op and keeps errno");
	tap_ok(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) == 0");

	{
		static const size_t sz[] = { 1, 64, 1000, 40000, 300000, 4 << 20 };
		int ok = 1;

		for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++) {
			p = malloc(sz[i]);
			q = aligned_alloc(4096, sz[i]);
			errno = 777;
			free(p);
			ok = ok && errno == 777;
			errno = EAGAIN;
			free(q);
			ok = ok && errno == EAGAIN;
		}
		tap_ok(ok, "free keeps errno for small, mid, large and aligned blocks");
	}
}

static void sized_frees(void)
{
#if CT_HAKMEM
	static const size_t sz[] = { 0, 1, 16, 17, 200, 4096, 70000, 1 << 20, 5 << 20 };
	int ok = 1;

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++) {
			void *p = malloc(sz[i]);
			void *q = aligned_alloc(256, sz[i]);
			void *r = calloc(1, sz[i]);

			if (!p || !q || !r)
				ok = 0;
			else
				memset(p, 3, sz[i]);
			errno = 55;
			free_sized(p, sz[i]);
			free_aligned_sized(q, 256, sz[i]);
			free_sized(r, sz[i]);
			ok = ok && errno == 55;
		}
	}
	free_sized(NULL, 0);
	free_aligned_sized(NULL, 64, 0);
	tap_ok(ok, "free_sized/free_aligned_sized release blocks of every range and keep errno");
#else
	tap_skip("free_sized/free_aligned_sized: not in glibc %d.%d, tested with hakmem only",
		 __GLIBC__, __GLIBC_MINOR__);
#endif
}

int main(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	tap_plan(0);
	huge_sizes();
	failed_realloc_keeps_block();
	bad_alignments();
	zero_and_null();
	sized_frees();
	tap_finish();
}
