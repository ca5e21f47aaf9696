// SPDX-License-Identifier: MIT
/*
 * api_realloc: realloc, reallocarray and calloc keep or clear contents.
 *
 * Proves that
 *  - growing a block step by step from 1 byte to 16 MiB, and shrinking it
 *    back, keeps every byte of the common prefix (across the tiny, mid and
 *    large/mmap ranges and every transition between them);
 *  - a random walk of reallocs over 8 live blocks keeps contents;
 *  - growing within malloc_usable_size keeps the pointer;
 *  - calloc returns zeroed memory, also when it reuses blocks that were
 *    filled with 0xff and freed (small, mid and large sizes), and
 *    calloc(0, n) / calloc(n, 0) return unique blocks;
 *  - reallocarray grows an array keeping its elements;
 *  - a block at the address of a large block another thread freed has its
 *    own usable size (not the per-thread memo's of the freed block).
 */
#include <pthread.h>
#include "core_test.h"

#define MAXSZ	((size_t)16 << 20)

static inline unsigned char vpat(size_t i, unsigned seed)
{
	return (unsigned char)((i * 2654435761u) >> 13 ^ seed ^ i);
}

static void vfill(unsigned char *p, size_t from, size_t to, unsigned seed)
{
	for (size_t i = from; i < to; i++)
		p[i] = vpat(i, seed);
}

static size_t vcheck(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != vpat(i, seed))
			return i;
	return n;
}

static size_t next_up(size_t n)
{
	return n + n / 4 + 7;
}

static void chains(void)
{
	unsigned char *p = malloc(1), *q;
	size_t n = 1, steps = 0, bad = 0;

	if (!p)
		tap_bail("malloc(1) failed");
	vfill(p, 0, 1, 1);
	while (n < MAXSZ) {
		size_t m = next_up(n);

		if (m > MAXSZ)
			m = MAXSZ;
		q = realloc(p, ct_opaque(m));
		if (!q)
			tap_bail("realloc(%zu -> %zu) failed", n, m);
		p = q;
		if (vcheck(p, n, 1) != n && bad++ < 3)
			tap_diag("grow %zu -> %zu: byte %zu differs", n, m, vcheck(p, n, 1));
		vfill(p, n, m, 1);
		n = m;
		steps++;
	}
	tap_ok(bad == 0, "grow chain 1 B -> 16 MiB in %zu reallocs keeps contents", steps);

	bad = 0;
	steps = 0;
	while (n > 1) {
		size_t m = n - n / 5 - 3;

		if (m < 1 || m > n)
			m = 1;
		q = realloc(p, ct_opaque(m));
		if (!q)
			tap_bail("realloc(%zu -> %zu) failed", n, m);
		p = q;
		if (vcheck(p, m, 1) != m && bad++ < 3)
			tap_diag("shrink %zu -> %zu: byte %zu differs", n, m, vcheck(p, m, 1));
		n = m;
		steps++;
	}
	tap_ok(bad == 0, "shrink chain 16 MiB -> 1 B in %zu reallocs keeps contents", steps);
	free(p);

	/* Every range boundary: 0 <-> large back and forth. */
	{
		static const size_t pts[] = { 1, 16, 17, 1024, 1025, 32768, 32769, 65536,
					      65537, 262144, 262145, 1 << 20, (1 << 20) + 1,
					      4 << 20, 16 << 20, 3, 70000, 5, 2 << 20, 100 };
		bad = 0;
		n = 0;
		p = NULL;
		for (size_t i = 0; i < ARRAY_SIZE_CT(pts); i++) {
			size_t m = pts[i], keep = n < m ? n : m;

			q = realloc(p, ct_opaque(m));
			if (!q)
				tap_bail("realloc(%zu -> %zu) failed", n, m);
			p = q;
			if (vcheck(p, keep, 2) != keep && bad++ < 3)
				tap_diag("jump %zu -> %zu: byte %zu differs", n, m,
					 vcheck(p, keep, 2));
			if (m > n)
				vfill(p, n, m, 2);
			n = m;
		}
		free(p);
		tap_ok(bad == 0, "jumps across every size-range boundary keep contents");
	}
}

static void random_walk(void)
{
	enum { NB = 8, STEPS = 3000 };
	unsigned char *b[NB] = { 0 };
	size_t sz[NB] = { 0 };
	unsigned seed[NB] = { 0 };
	unsigned long bad = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int s = 0; s < STEPS; s++) {
		int i;
		size_t m, keep;
		unsigned char *q;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (int)(x % NB);
		switch ((x >> 8) % 16) {
		case 0:
			m = (x >> 16) % (4u << 20);		/* large */
			break;
		case 1: case 2: case 3:
			m = (x >> 16) % (256u << 10);		/* mid */
			break;
		default:
			m = (x >> 16) % 2048;			/* small */
			break;
		}
		keep = sz[i] < m ? sz[i] : m;
		q = realloc(b[i], ct_opaque(m));
		if (!q && m)
			tap_bail("realloc(%zu) failed", m);
		if (!m) {
			/* realloc(p, 0) freed p (or malloc'ed when p was NULL) */
			if (!b[i])
				free(q);
			b[i] = NULL;
			sz[i] = 0;
			continue;
		}
		b[i] = q;
		if (vcheck(q, keep, seed[i]) != keep && bad++ < 3)
			tap_diag("walk step %d: block %d %zu -> %zu lost byte %zu", s, i, sz[i],
				 m, vcheck(q, keep, seed[i]));
		if (m > sz[i])
			vfill(q, sz[i], m, seed[i]);
		sz[i] = m;
	}
	for (int i = 0; i < NB; i++) {
		if (b[i] && vcheck(b[i], sz[i], seed[i]) != sz[i])
			bad++;
		free(b[i]);
	}
	tap_ok(bad == 0, "random walk of %d reallocs over %d blocks keeps contents", STEPS, NB);
}

static void grow_in_place(void)
{
	static const size_t sz[] = { 1, 5, 13, 24, 100, 1000, 3000, 10000, 40000,
				     100000, 300000, 1000000, 5000000 };
	unsigned long bad = 0, tried = 0;

	for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++) {
		unsigned char *p = malloc(ct_opaque(sz[i])), *q;
		size_t u = malloc_usable_size(p);
		uintptr_t old;

		vfill(p, 0, sz[i], 3);
		/* every size between n and usable keeps the pointer */
		for (size_t m = sz[i]; m <= u; m += (u - sz[i]) / 7 + 1) {
			uintptr_t was = (uintptr_t)ct_launder(p);

			q = realloc(p, m);
			tried++;
			if ((uintptr_t)q != was) {
				if (bad++ < 3)
					tap_diag("realloc(%#lx [n %zu usable %zu], %zu) moved to %p",
						 (unsigned long)was, sz[i], u, m, (void *)q);
				if (!q)
					tap_bail("realloc failed");
				p = q;
			}
		}
		/*
		 * Exactly the usable size. glibc moves an mmapped chunk here
		 * (its usable size counts the next chunk's header word), so on
		 * the system malloc only the heap sizes are held to it.
		 */
		if (CT_HAKMEM || sz[i] < 128 * 1024) {
			old = (uintptr_t)ct_launder(p);
			q = realloc(p, u);
			tried++;
			if ((uintptr_t)q != old && bad++ < 3)
				tap_diag("realloc(p [usable %zu], %zu) moved", u, u);
			if (!q)
				tap_bail("realloc failed");
			p = q;
		}
		if (vcheck(p, sz[i], 3) != sz[i])
			bad++;
		free(p);
	}
	tap_ok(bad == 0, "growing within malloc_usable_size keeps the pointer (%lu/%lu moved)",
	       bad, tried);
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void calloc_zeroes(void)
{
	static const size_t sz[] = { 1, 8, 16, 24, 48, 100, 512, 1000, 4096, 5000,
				     32768, 65536, 100000, 262144, 1 << 20, 3 << 20, 16 << 20 };
	unsigned long bad = 0;

	for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++) {
		unsigned char *p = ct_launder(calloc(1, ct_opaque(sz[i])));

		if (!p || !all_zero(p, sz[i])) {
			if (bad++ < 3)
				tap_diag("calloc(1, %zu) = %p not zeroed", sz[i], (void *)p);
		}
		free(p);
	}
	tap_ok(bad == 0, "fresh calloc blocks are zero, 1 B .. 16 MiB");

	/* Reuse: the same size right after a dirty free. */
	bad = 0;
	for (int round = 0; round < 4; round++) {
		for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++) {
			unsigned char *p = malloc(ct_opaque(sz[i]));
			size_t u = malloc_usable_size(p);

			memset(p, 0xff, u);
			free(p);
			p = ct_launder(calloc(ct_opaque(sz[i]), 1));
			if (!p || !all_zero(p, sz[i])) {
				if (bad++ < 3)
					tap_diag("calloc(%zu, 1) after dirty free not zeroed", sz[i]);
			}
			free(p);
		}
	}
	tap_ok(bad == 0, "calloc zeroes reused memory (malloc, fill 0xff, free, calloc)");

	/* Many small dirty blocks, then calloc them back. */
	bad = 0;
	for (size_t s = 8; s <= 2048; s = s * 3 / 2 + 8) {
		enum { N = 512 };
		unsigned char *v[N];

		for (int i = 0; i < N; i++) {
			v[i] = malloc(ct_opaque(s));
			memset(v[i], 0xff, malloc_usable_size(v[i]));
		}
		for (int i = 0; i < N; i++)
			free(v[i]);
		for (int i = 0; i < N; i++) {
			v[i] = ct_launder(calloc(ct_opaque(s / 8), 8));
			if (!v[i] || !all_zero(v[i], s / 8 * 8))
				bad++;
		}
		for (int i = 0; i < N; i++)
			free(v[i]);
	}
	tap_ok(bad == 0, "512 dirty blocks per size class come back zeroed from calloc");

	{
		void *a = calloc(0, 16), *b = calloc(16, 0), *c = calloc(0, 0);

		tap_ok(a && b && c && a != b && b != c && a != c,
		       "calloc(0, n), calloc(n, 0), calloc(0, 0) return distinct blocks");
		free(a);
		free(b);
		free(c);
	}
}

static void reallocarray_grows(void)
{
	uint32_t *a = NULL, *q;
	size_t n = 0, bad = 0;

	for (size_t m = 1; m <= (1u << 20); m = m * 2 + 1) {
		q = reallocarray(a, ct_opaque(m), sizeof(*a));
		if (!q)
			tap_bail("reallocarray(%zu, 4) failed", m);
		a = q;
		for (size_t i = 0; i < n; i++)
			if (a[i] != (uint32_t)(i * 2654435761u))
				bad++;
		for (size_t i = n; i < m; i++)
			a[i] = (uint32_t)(i * 2654435761u);
		n = m;
	}
	q = reallocarray(a, 10, sizeof(*a));
	if (q) {
		a = q;
		for (size_t i = 0; i < 10; i++)
			if (a[i] != (uint32_t)(i * 2654435761u))
				bad++;
	} else {
		bad++;
	}
	free(a);
	tap_ok(bad == 0, "reallocarray grows an array to 4 MiB and shrinks it, keeping elements");
}

/*
 * The large registry remembers, per thread, the usable size of the blocks
 * it looked up (lib/large.c). A block freed by another thread and an
 * address mapped again with another length must not be answered from that
 * memo: look a 2 MiB block up here, free it in a thread, take blocks of
 * other lengths until one lands at the same address (BigCache hands out
 * the head of the cached range; without it the kernel often reuses the
 * hole) and check its usable size against its length, and that realloc
 * within the memo's stale size but beyond the real one moves or grows it.
 */
static void *free_in_thread(void *p)
{
	free(p);
	return NULL;
}

static void memo_after_remote_free(void)
{
	size_t big = 2u << 20, small = 300u << 10;
	int tries, same = 0, bad = 0;

	for (tries = 0; tries < 16; tries++) {
		unsigned char *p, *q, *r;
		pthread_t t;
		size_t u;

		malloc_trim(0);	/* an empty cache: p's range is the one to reuse */
		p = malloc(big);
		if (!p)
			tap_bail("malloc(2 MiB) failed");
		for (int k = 0; k < 4; k++) {	/* in-place reallocs fill the memo */
			unsigned char *np = realloc(p, big - 4096 * (size_t)k);

			if (!np)
				tap_bail("realloc failed");
			bad += np != p;
			p = np;
		}
		if (malloc_usable_size(p) < big - 4096 * 3)
			bad++;
		if (pthread_create(&t, NULL, free_in_thread, p) || pthread_join(t, NULL))
			tap_bail("pthread failed");
		q = malloc(small + 4096 * (size_t)tries);
		if (!q)
			tap_bail("malloc failed");
		u = malloc_usable_size(q);
		if (q == p) {
			same++;
			if (u >= big - 4096 * 3) {
				tap_diag("block at the freed address says usable %zu (asked %zu)",
					 u, small + 4096 * (size_t)tries);
				bad++;
			}
		}
		memset(q, 0x5a, u);
		r = realloc(q, u + 4096);	/* past its end: must not stay within u */
		if (!r)
			tap_bail("realloc failed");
		if (malloc_usable_size(r) < u + 4096)
			bad++;
		for (size_t i = 0; i < u; i += 4093)
			if (r[i] != 0x5a)
				bad++;
		free(r);
	}
	tap_ok(bad == 0, "usable size after another thread freed the block (%d of 16 at the same address)",
	       same);
}

int main(void)
{
	tap_plan(11);
	chains();
	random_walk();
	grow_in_place();
	calloc_zeroes();
	reallocarray_grows();
	memo_after_remote_free();
	tap_finish();
}
