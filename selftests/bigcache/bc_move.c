// SPDX-License-Identifier: MIT
/*
 * The page move of realloc growth (lib/large.c move_block, lib/os.c
 * __hak_os_move) under threads that map and unmap at the same time.
 *
 * Stress: GROWERS threads grow chains of large blocks by realloc from
 * 1 MiB past 16 MiB (10..60% a step, each step's new bytes written with
 * the chain's pattern, the whole block checked page by page at every step
 * and before the free), while MAPPERS threads take and give back address
 * space: raw mmap/munmap of 1..8 MiB (each page stamped and checked
 * before the munmap) and large malloc/free (the BigCache hands these
 * blocks' ranges to the growers, which is how a block comes to span two
 * kernel mappings; a grower also splits its block's mapping now and then
 * with MADV_DONTFORK on its upper part, so that many growths take the
 * move). A second unmap of a moved block's old range would take
 * a mapper's mapping (it faults) and a move over someone else's mapping
 * would change its stamps: both are caught. Bounded in time
 * (BC_MOVE_MS, 2,500 ms by default, 1,000 with HAKMEM_SELFTEST_QUICK=1),
 * once without whole blocks (lib/large.c grow_whole: past 2 MiB a chain
 * would otherwise grow by mremap of a mapping of its own and never move)
 * and once with them (their mremaps, kept mappings and takes under the
 * same churn; a split whole mapping fails its mremap and realloc copies).
 *
 * With CONFIG_HAK_FAULT_INJECT, the move's failure paths: the injected
 * failure unmaps dst first (as mremap does before it finds the source
 * unfit); dst is mapped back and the block copied into it; when another
 * "thread" (the hook) has taken a page of the hole, that page is left
 * alone and the block is copied into a new mapping.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include "bc_test.h"
#include "os.h"
#include "../lib/coarse_sleep.h"

#define MIB		(1ul << 20)
#define GROWERS		3
#define MAPPERS		2
#define TOP		(24 * MIB)

static unsigned run_ms = 2500;
static volatile int stop;
static unsigned long bad, grows, chains, maps;

/* One word per page: the chain's seed and the page's index. */
static inline uint64_t stamp(uint64_t seed, size_t page)
{
	return seed * 0x9e3779b97f4a7c15ULL ^ page;
}

static void stamp_pages(unsigned char *p, size_t from, size_t to, uint64_t seed)
{
	for (size_t i = from / BC_PAGE; i * BC_PAGE < to; i++)
		if (i * BC_PAGE >= from)
			*(uint64_t *)(p + i * BC_PAGE) = stamp(seed, i);
}

static size_t check_pages(const unsigned char *p, size_t n, uint64_t seed)
{
	size_t wrong = 0;

	for (size_t i = 0; i * BC_PAGE < n; i++)
		if (*(const uint64_t *)(p + i * BC_PAGE) != stamp(seed, i))
			wrong++;
	return wrong;
}

static void *grower(void *arg)
{
	uint64_t r = (uintptr_t)arg * 7919 + 1;

	while (!stop) {
		uint64_t seed = bc_rand(&r);
		size_t n = MIB, m;
		unsigned char *p = malloc(n), *q;

		if (!p)
			break;
		stamp_pages(p, 0, n, seed);
		while (n < TOP && !stop) {
			m = n + n * (10 + bc_rand(&r) % 51) / 100;
			q = realloc(p, m);
			if (!q) {
				__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
				break;
			}
			p = q;
			/*
			 * Now and then split the block's mapping (other flags on
			 * its upper part): its next growth cannot be a resize.
			 */
			if (bc_rand(&r) % 4 == 0) {
				size_t cut = (bc_rand(&r) % (n / BC_PAGE)) * BC_PAGE;

				madvise(p + cut, n - cut, MADV_DONTFORK);
			}
			if (check_pages(p, n, seed))
				__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
			stamp_pages(p, n, m, seed);
			n = m;
			__atomic_add_fetch(&grows, 1, __ATOMIC_RELAXED);
		}
		if (check_pages(p, n, seed))
			__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		madvise(p, n, MADV_DOFORK);
		free(p);
		__atomic_add_fetch(&chains, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *mapper(void *arg)
{
	uint64_t r = (uintptr_t)arg * 104729 + 3;

	while (!stop) {
		size_t n = (1 + bc_rand(&r) % 8) * MIB;
		uint64_t seed = bc_rand(&r);
		bool raw = bc_rand(&r) & 1;
		unsigned char *p;

		if (raw) {
			p = mmap(NULL, n, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				continue;
		} else {
			p = malloc(n);
			if (!p)
				continue;
		}
		stamp_pages(p, 0, n, seed);
		sched_yield();
		if (check_pages(p, n, seed))
			__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		if (raw)
			munmap(p, n);
		else
			free(p);
		__atomic_add_fetch(&maps, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_stress(void)
{
	pthread_t t[GROWERS + MAPPERS];
	struct hak_large_stats l0 = bc_large_stats(), l1;
	unsigned long t0 = bc_now_ms();
	int i;

	stop = 0;
	for (i = 0; i < GROWERS; i++)
		pthread_create(&t[i], NULL, grower, (void *)(uintptr_t)(i + 1));
	for (i = 0; i < MAPPERS; i++)
		pthread_create(&t[GROWERS + i], NULL, mapper, (void *)(uintptr_t)(i + 1));
	while (bc_now_ms() - t0 < run_ms)
		tst_sleep_ms(20);
	stop = 1;
	for (i = 0; i < GROWERS + MAPPERS; i++)
		pthread_join(t[i], NULL);
	l1 = bc_large_stats();
	tap_ok(bad == 0 && chains > 0 && maps > 0,
	       "%d threads grow chains past 16 MiB%s while %d map and unmap: %lu chains, %lu growths, %lu mappings, %lu moves, %lu refused, %lu whole takes, %lu wrong pages or failures",
	       GROWERS, __hak_large_whole_min == SIZE_MAX ? "" : " (whole blocks)", MAPPERS,
	       chains, grows, maps, l1.moves - l0.moves, l1.move_fails - l0.move_fails,
	       l1.whole_takes - l0.whole_takes, bad);
	chains = grows = maps = 0;
}

/* A block over two mappings (MADV_DONTFORK half), grown with nothing cached. */
static unsigned char *two_mappings(size_t *len, uint64_t seed)
{
	unsigned char *p;

	malloc_trim(0);
	p = malloc(4 * MIB);
	if (!p)
		return NULL;
	*len = malloc_usable_size(p);
	stamp_pages(p, 0, *len, seed);
	if (madvise(p + 2 * MIB, *len - 2 * MIB, MADV_DONTFORK)) {
		free(p);
		return NULL;
	}
	return p;
}

static void test_inject(void)
{
	struct hak_large_stats l0, l1;
	unsigned char *p, *q;
	size_t len, i;
	int ok;

	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT)) {
		tap_skip("CONFIG_HAK_FAULT_INJECT is off: no injected move failures");
		tap_skip("CONFIG_HAK_FAULT_INJECT is off: no hole taken by another thread");
		tap_skip("CONFIG_HAK_FAULT_INJECT is off: no copied block to check");
		return;
	}
	/* the resize comes first (it fails on two mappings anyway), then the move */
	p = two_mappings(&len, 11);
	l0 = bc_large_stats();
	hak_test_os_fail(HAK_OS_REMAP, 1, 1);
	q = p ? realloc(p, 8 * MIB) : NULL;
	hak_test_os_fail(HAK_OS_REMAP, 0, 0);
	l1 = bc_large_stats();
	tap_ok(q && check_pages(q, len, 11) == 0 && l1.move_fails == l0.move_fails + 1 &&
	       l1.moves == l0.moves,
	       "a move that fails after dst was unmapped: dst mapped back, the block copied");
	free(q);

	p = two_mappings(&len, 12);
	hak_test_os_move_hole = bc_take_hole;
	bc_hole_page = NULL;
	hak_test_os_fail(HAK_OS_REMAP, 1, 1);
	q = p ? realloc(p, 8 * MIB) : NULL;
	hak_test_os_fail(HAK_OS_REMAP, 0, 0);
	hak_test_os_move_hole = NULL;
	ok = q && check_pages(q, len, 12) == 0 && bc_hole_page;
	for (i = 0; ok && i < BC_PAGE; i++)
		ok = (unsigned char)bc_hole_page[i] == 0x5a;
	ok = ok && (bc_hole_page < (char *)q || bc_hole_page >= (char *)q + malloc_usable_size(q));
	tap_ok(ok, "a hole taken by another thread: its page left alone, the block copied elsewhere");
	if (q) {
		stamp_pages(q, 0, 8 * MIB, 13);
		tap_ok(check_pages(q, 8 * MIB, 13) == 0, "the copied block holds 8 MiB");
	} else {
		tap_ok(0, "the copied block holds 8 MiB");
	}
	free(q);
	if (bc_hole_page)
		munmap(bc_hole_page, BC_PAGE);
	malloc_trim(0);
}

int main(void)
{
	const char *e = getenv("BC_MOVE_MS"), *quick = getenv("HAKMEM_SELFTEST_QUICK");

	if (quick && *quick == '1')
		run_ms = 1000;
	if (e)
		run_ms = (unsigned)strtoul(e, NULL, 0);
	tap_plan(0);
	bc_set_max(256 * MIB);
	/* the page move first: no whole blocks (lib/large.c, grow_whole) */
	__hak_large_whole_min = SIZE_MAX;
	test_inject();
	test_stress();
	/* the same churn over whole blocks: grown by mremap, kept, taken */
	__hak_large_whole_min = 2u << 20;
	test_stress();
	tap_finish();
}
