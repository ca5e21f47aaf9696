/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the L2.5 pool selftests (header-only, not a test).
 * The tests link libhakmem.a statically, so malloc is hakmem's, and they
 * read the pool's own counters through hak_l25_stats().
 */
#ifndef HAK_SELFTEST_L25_H
#define HAK_SELFTEST_L25_H

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "superslab.h"
#include "boxes/l25_pool/l25.h"
#include "../lib/tap.h"
#include "../lib/proc.h"

#define L25_TEST_MAX	((size_t)CONFIG_HAK_L25_MAX_KIB << 10)

/* The pool's largest class: (5..8) << (13 + n / 4) up to L25_TEST_MAX. */
static inline size_t lt_top_class(void)
{
	size_t top = 0, s;
	unsigned c;

	for (c = 0; ; c++) {
		s = ((size_t)(c & 3) + 5) << ((c >> 2) + 13);
		if (s > L25_TEST_MAX)
			return top;
		top = s;
	}
}

/* Hide a value from the optimiser (no folding of malloc/free pairs). */
static inline size_t lt_opaque(size_t n)
{
	volatile size_t v = n;

	return v;
}

static inline unsigned char lt_pat(const void *base, size_t i)
{
	uintptr_t a = (uintptr_t)base;

	return (unsigned char)((a >> 12) ^ (i * 131u) ^ (i >> 9));
}

/* Fill every byte (or, with sparse, the first and last 64 and one per page). */
static inline void lt_fill(void *p, size_t n, int sparse)
{
	unsigned char *c = p;
	size_t i;

	if (!sparse) {
		for (i = 0; i < n; i++)
			c[i] = lt_pat(p, i);
		return;
	}
	for (i = 0; i < n && i < 64; i++)
		c[i] = lt_pat(p, i);
	for (i = 4096; i < n; i += 4096)
		c[i] = lt_pat(p, i);
	for (i = n > 64 ? n - 64 : 0; i < n; i++)
		c[i] = lt_pat(p, i);
}

/* 1 when the first n bytes of q hold the pattern written at p. */
static inline int lt_check(const void *q, const void *p, size_t n)
{
	const unsigned char *c = q;

	for (size_t i = 0; i < n; i++)
		if (c[i] != lt_pat(p, i))
			return 0;
	return 1;
}

static inline int lt_check_sparse(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n && i < 64; i++)
		if (c[i] != lt_pat(p, i))
			return 0;
	for (i = 4096; i < n; i += 4096)
		if (c[i] != lt_pat(p, i))
			return 0;
	for (i = n > 64 ? n - 64 : 0; i < n; i++)
		if (c[i] != lt_pat(p, i))
			return 0;
	return 1;
}

static inline double lt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* xorshift64 */
static inline uint64_t lt_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#endif /* HAK_SELFTEST_L25_H */
