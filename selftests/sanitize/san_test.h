/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the selftests/sanitize programs (header-only, not a test):
 * a per-thread random generator, and a byte pattern derived from a block's
 * address and size, written at allocation and checked just before free.
 * Everything here allocates through hak_* only.
 */
#ifndef HAK_SELFTEST_SAN_H
#define HAK_SELFTEST_SAN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <hakmem/hakmem.h>

#include "../lib/tap.h"

static inline uint64_t san_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* A size: mostly tiny, some up to 32 KiB, a few mid (to 300 KiB) and large. */
static inline size_t san_size(uint64_t *s)
{
	uint64_t r = san_rand(s);

	switch (r % 128) {
	case 0:
		return 256 * 1024 + (r >> 8) % (2 << 20);	/* large */
	case 1: case 2:
		return 32 * 1024 + (r >> 8) % (256 * 1024);	/* mid */
	case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10:
		return 1 + (r >> 8) % (32 * 1024);
	default:
		return 1 + (r >> 8) % 512;
	}
}

/* a is the block's address as an integer, so a stale one may be used too */
static inline unsigned char san_pat_at(uintptr_t a, size_t n, size_t i)
{
	return (unsigned char)((a >> 4) ^ (a >> 13) ^ n ^ (i * 167u) ^ (i >> 9));
}

static inline unsigned char san_pat(const void *p, size_t n, size_t i)
{
	return san_pat_at((uintptr_t)p, n, i);
}

/*
 * Stamp the first and last 64 bytes and every 4 KiB in between: enough to
 * catch a block handed out twice or overwritten, cheap for big blocks.
 */
#define SAN_EDGE	64

static inline void san_fill(void *p, size_t n)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (i == SAN_EDGE && n > 2 * SAN_EDGE) {
			for (i = SAN_EDGE; i < n - SAN_EDGE; i += 4096)
				c[i] = san_pat(p, n, i);
			i = n - SAN_EDGE;
		}
		c[i] = san_pat(p, n, i);
	}
}

/* 1 when intact. */
static inline int san_check(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (i == SAN_EDGE && n > 2 * SAN_EDGE) {
			for (i = SAN_EDGE; i < n - SAN_EDGE; i += 4096)
				if (c[i] != san_pat(p, n, i))
					return 0;
			i = n - SAN_EDGE;
		}
		if (c[i] != san_pat(p, n, i))
			return 0;
	}
	return 1;
}

/*
 * Scale factor: the first argument, else $HAKMEM_SAN_SCALE (for runs
 * through the selftest runner, which passes no arguments), else 1.
 */
static inline unsigned long san_scale(int argc, char **argv)
{
	const char *e = getenv("HAKMEM_SAN_SCALE");
	unsigned long s = argc > 1 ? strtoul(argv[1], NULL, 0) : e ? strtoul(e, NULL, 0) : 1;

	return s ? s : 1;
}

/*
 * HAKMEM_SAN_THREADS=T: how many worker threads a program runs instead of
 * its default (clamped to 2..SAN_MAX_THREADS), so the stress can run the
 * sanitizer builds at 16 and 64 threads (tools/stress.sh -t) the way the
 * core programs run under the plain builds.
 */
#define SAN_MAX_THREADS	64

static inline unsigned san_threads(unsigned dflt)
{
	const char *e = getenv("HAKMEM_SAN_THREADS");
	unsigned long t = e ? strtoul(e, NULL, 0) : dflt;

	if (t < 2)
		t = 2;
	return t > SAN_MAX_THREADS ? SAN_MAX_THREADS : (unsigned)t;
}

#endif /* HAK_SELFTEST_SAN_H */
