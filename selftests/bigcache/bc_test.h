/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the selftests/bigcache programs (header-only, not a
 * test). They are linked statically with libhakmem.a, so they may read the
 * box's statistics and change its bound at run time (__hak_opt +
 * hak_bigcache_init(), as the HAKMEM_BIGCACHE_MAX option does at start).
 */
#ifndef HAK_SELFTEST_BIGCACHE_H
#define HAK_SELFTEST_BIGCACHE_H

#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <hakmem/hakmem.h>

#include "../lib/tap.h"
#include "../lib/guardpage.h"
#include "../lib/coarse_sleep.h"
#include "init.h"
#include "boxes/bigcache/bigcache.h"
#include "large.h"
#include "os.h"

#define BC_PAGE		4096UL

/*
 * The growth rule's tests (bc_pay, bc_pay_back): the decay delay they set
 * (nothing decays in them) and a sleep past a quarter of it (idle for the
 * rule). A block stays young for that quarter, 2 s: with 1 s, a loaded
 * machine (load 30-50) sometimes took longer than that between a free and
 * the next pass, and a young block was paid.
 */
#define BC_PAY_DELAY_MS	8000
#define BC_PAY_IDLE_MS	2100

/* Milliseconds on the monotonic clock (timing of decay and churn tests). */
static inline unsigned long bc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000 + (unsigned long)ts.tv_nsec / 1000000;
}

static inline struct hak_bigcache_stats bc_stats(void)
{
	struct hak_bigcache_stats st;

	hak_bigcache_stats(&st);
	return st;
}

static inline struct hak_stats bc_core_stats(void)
{
	struct hak_stats st;

	hak_stats_get(&st);
	return st;
}

static inline struct hak_large_stats bc_large_stats(void)
{
	struct hak_large_stats st;

	__hak_large_stats(&st);
	return st;
}

/* Set the cache's bound now (0 turns the cache off); empties it first. */
static inline void bc_set_max(size_t bytes)
{
	malloc_trim(0);
	__hak_opt.bigcache_max = bytes;
	hak_bigcache_init();
}

/* Hide a pointer from the optimiser (malloc/free pairs are not elided). */
/* The bytes a test's fill wrote every 509th byte of p[0, n) still there. */
static inline int bc_check(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 509)
		if (p[i] != (unsigned char)(i * 13 + seed))
			return 0;
	return 1;
}

static inline void *bc_launder(void *p)
{
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	return p;
}

/*
 * The smallest request (of a few candidates) served by the large path:
 * 32 KiB + 1 by default, more when the L2.5 pool box takes mid sizes.
 */
static inline size_t bc_large_min(void)
{
	static const size_t cand[] = {
		(32u << 10) + 1, 64u << 10, 128u << 10, 256u << 10,
		512u << 10, 1u << 20, 2u << 20, 4u << 20,
	};
	size_t i;

	for (i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		size_t before = bc_core_stats().large_blocks, after;
		void *p = bc_launder(malloc(cand[i]));

		after = bc_core_stats().large_blocks;
		free(p);
		if (after > before)
			return cand[i];
	}
	tap_bail("no request up to 4 MiB reaches the large path");
}

static inline size_t bc_page_up(size_t n)
{
	return (n + BC_PAGE - 1) & ~(BC_PAGE - 1);
}

/*
 * Resident pages of [p, p + n) (p page-aligned; mincore faults nothing in),
 * SIZE_MAX when mincore refuses. Asked a chunk at a time, so any length
 * fits the one buffer.
 */
static inline size_t bc_resident(const void *p, size_t n)
{
	static unsigned char vec[256];
	size_t pages = bc_page_up(n) / BC_PAGE, done, i, k, r = 0;

	for (done = 0; done < pages; done += k) {
		k = pages - done < sizeof(vec) ? pages - done : sizeof(vec);
		if (mincore((char *)p + done * BC_PAGE, k * BC_PAGE, vec))
			return SIZE_MAX;
		for (i = 0; i < k; i++)
			r += vec[i] & 1;
	}
	return r;
}

/* The first nonzero byte of p[0, n), or n. */
static inline size_t bc_nonzero_at(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return i;
	return n;
}

/* Resident set size of this process in bytes. */
static inline size_t bc_rss(void)
{
	unsigned long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * /proc/self/maps read whole without stdio (its buffer would be an
 * allocation) into a static buffer; NULL if it cannot be opened.
 */
static inline char *bc_maps(void)
{
	static char buf[1 << 16];
	size_t n = 0;
	ssize_t r;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return NULL;
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = 0;
	return buf;
}

/* Does any mapping of this process overlap [lo, hi)? */
static inline int bc_range_free(uintptr_t lo, uintptr_t hi)
{
	char *l = bc_maps();

	if (!l)
		return 0;
	while (*l) {
		char *end;
		uintptr_t a = strtoul(l, &end, 16), b = strtoul(end + 1, NULL, 16);

		if (a < hi && b > lo)
			return 0;
		l = strchr(l, '\n');
		if (!l)
			break;
		l++;
	}
	return 1;
}

/*
 * Is the page at a a guard page (mapped, inaccessible: PROT_NONE or a
 * MADV_GUARD_INSTALL marker, selftests/lib/guardpage.h)?
 */
static inline int bc_page_none(uintptr_t a)
{
	return page_is_guard(a);
}

/* xorshift64*: a seeded generator per thread. */
static inline uint64_t bc_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* A size log-uniformly distributed in [lo, hi]. */
static inline size_t bc_log_size(uint64_t *s, size_t lo, size_t hi)
{
	unsigned lo_b = 63 - (unsigned)__builtin_clzl(lo);
	unsigned hi_b = 63 - (unsigned)__builtin_clzl(hi);
	unsigned b = lo_b + (unsigned)(bc_rand(s) % (hi_b - lo_b + 1));
	size_t n = ((size_t)1 << b) + (bc_rand(s) & (((size_t)1 << b) - 1));

	return n < lo ? lo : n > hi ? hi : n;
}

/*
 * A page of a move's destination hole, mapped by "another thread" (the
 * fault-injection hook hak_test_os_move_hole, called after an injected
 * move failure unmapped the hole and before it is mapped back): bc_move
 * and fi_fill check that this page is left alone. NULL if not had.
 */
static char *bc_hole_page __attribute__((unused));

static inline void bc_take_hole(void *dst, size_t len)
{
	char *want = (char *)dst + (len / 2 & ~(BC_PAGE - 1));

	bc_hole_page = mmap(want, BC_PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (bc_hole_page != want) {
		if (bc_hole_page != MAP_FAILED)
			munmap(bc_hole_page, BC_PAGE);
		bc_hole_page = NULL;
		return;
	}
	memset(bc_hole_page, 0x5a, BC_PAGE);
}

/* Whole MiB in b bytes, for messages. */
static inline size_t bc_mib(size_t b)
{
	return b >> 20;
}

/* One decay pass of the box, now (the growth rule's tests: bc_pay, bc_pay_back). */
static inline void bc_pass(void)
{
	(void)hak_bigcache_decay(__hak_now_ms(), (unsigned)__hak_opt.purge_delay_ms);
}

/* n bytes of the program's own (not the allocator's), every page written. */
static inline void *bc_own(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap %zu MiB", bc_mib(n));
	memset(p, 7, n);
	return p;
}

#endif /* HAK_SELFTEST_BIGCACHE_H */
