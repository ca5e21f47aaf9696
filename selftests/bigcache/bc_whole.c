// SPDX-License-Identifier: MIT
/*
 * Whole blocks (lib/large.c, grow_whole): a large block that realloc grows
 * past 2 MiB gets a mapping of its own and grows by mremap of it; freed,
 * the mapping is kept whole (not split by BigCache) and the next block
 * that grows past 2 MiB takes it and grows over its resident pages at the
 * same address with almost no page fault; a shrink cuts the mapping; a
 * decay pass and malloc_trim unmap kept mappings; a double free and a
 * free of a pointer inside a whole block abort. With guard pages
 * (hardened) the mapping holds the block's guard: after every step the
 * page right after the usable size is a guard and none is inside the
 * block, and the mapping's lengths count one page more. Not made under
 * valgrind: there it checks that none is.
 */
#include <sys/mman.h>
#include "minflt.h"
#include "bc_test.h"
#include "os.h"
#include "../lib/child.h"
#include "../lib/guardpage.h"
#include "boxes/bigcache/bc_internal.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"

#define MIB	(1u << 20)

/* Every page of [from, to) touched; the bytes bc_check() reads set. */
static void fill(unsigned char *p, size_t from, size_t to, unsigned seed)
{
	for (size_t i = (from + 508) / 509 * 509; i < to; i += 509)
		p[i] = (unsigned char)(i * 13 + seed);
}

/* A block's address as a number the use-after-free analysis leaves alone. */
static uintptr_t addr_of(const void *p)
{
	uintptr_t a;

	__asm__("" : "=r"(a) : "0"(p));
	return a;
}

/* Is [lo, hi) inside one line of /proc/self/maps? */
static int one_mapping(uintptr_t lo, uintptr_t hi)
{
	char *l = bc_maps();

	while (l && *l) {
		char *end;
		uintptr_t a = strtoul(l, &end, 16), b = strtoul(end + 1, NULL, 16);

		if (a <= lo && hi <= b)
			return 1;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return 0;
}

/* With guard pages, steps of grow_chain after which no guard followed the block. */
static unsigned unguarded_steps;

/*
 * Grow p (n bytes, filled with seed) to to bytes by 5% steps, filling;
 * with guard pages, each step checks the page after the usable size.
 */
static unsigned char *grow_chain(unsigned char *p, size_t n, size_t to, unsigned seed,
				 int *moved)
{
	*moved = 0;
	while (n < to) {
		size_t m = n + n / 20 + 4096;
		unsigned char *q;

		if (m > to)
			m = to;
		q = bc_launder(realloc(p, m));
		if (!q)
			tap_bail("realloc(%zu) failed", m);
		*moved += q != p;
		if (hak_hd_guard_len() && !page_is_guard(addr_of(q) + malloc_usable_size(q)))
			unguarded_steps++;
		fill(q, n, m, seed);
		p = q;
		n = m;
	}
	return p;
}

/*
 * With guard pages: the page after p's usable size is a guard, and no page
 * of the block is one (the guard moved, not left behind).
 */
static int guarded(const void *p)
{
	uintptr_t a = addr_of(p), end = a + malloc_usable_size((void *)p), first;

	if (!hak_hd_guard_len())
		return 1;
	return page_is_guard(end) && !guards_in(a, end, &first);
}

static void *volatile stash;

static void double_free(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	unsigned char *p = bc_launder(malloc(MIB));

	stash = bc_launder(realloc(p, 3 * MIB));
	free(stash);
	free((unsigned char *)stash + n);
}

static void test_whole(void)
{
	struct hak_large_stats st0 = bc_large_stats(), st;
	size_t kept, g = hak_hd_guard_len();
	unsigned char *p, *q, *k;
	uintptr_t a;
	int moved;
	long f0;

	p = bc_launder(malloc(MIB + MIB / 2));
	fill(p, 0, MIB + MIB / 2, 1);
	q = bc_launder(realloc(p, 2 * MIB + 4096));
	st = bc_large_stats();
	tap_ok(q && bc_check(q, MIB + MIB / 2, 1) && st.whole_maps == st0.whole_maps + 1 &&
	       guarded(q),
	       "past 2 MiB: one fresh whole mapping (%zu), contents kept%s",
	       st.whole_maps - st0.whole_maps, g ? ", guard after it" : "");
	fill(q, MIB + MIB / 2, 2 * MIB + 4096, 1);
	q = grow_chain(q, 2 * MIB + 4096, 24 * MIB, 1, &moved);
	st = bc_large_stats();
	tap_ok(bc_check(q, 24 * MIB, 1) && st.whole_maps == st0.whole_maps + 1 &&
	       st.moves == st0.moves && !unguarded_steps,
	       "grown to 24 MiB by mremap: contents kept, no other mapping, %d moves, "
	       "%u steps without a guard after the block", moved, unguarded_steps);
	tap_ok(one_mapping((uintptr_t)q, (uintptr_t)q + malloc_usable_size(q)) && guarded(q),
	       "the block is inside one kernel mapping%s", g ? ", its guard after it" : "");
	a = addr_of(q);
	free(q);
	st = bc_large_stats();
	kept = st.whole_bytes;
	tap_ok(st.wholes_kept == 1 && kept >= 24 * MIB,
	       "freed, its mapping is kept whole (%zu kept, %zu MiB)", st.wholes_kept, kept >> 20);

	/* The next block past 2 MiB takes it and grows over its pages. */
	q = bc_launder(malloc(MIB + MIB / 2));
	fill(q, 0, MIB + MIB / 2, 2);
	k = bc_launder(realloc(q, 2 * MIB + 4096));
	st = bc_large_stats();
	tap_ok((uintptr_t)k == a && st.whole_takes == st0.whole_takes + 1 && st.wholes_kept == 0 &&
	       st.whole_maps == st0.whole_maps + 1 && bc_check(k, MIB + MIB / 2, 2) && guarded(k),
	       "the next block past 2 MiB takes the kept mapping (same address, contents kept%s)",
	       g ? ", the guard moved after it" : "");
	fill(k, MIB + MIB / 2, 2 * MIB + 4096, 2);
	f0 = process_minflt();
	a = addr_of(k);
	k = grow_chain(k, 2 * MIB + 4096, 20 * MIB, 2, &moved);
	f0 = process_minflt() - f0;
	tap_ok((uintptr_t)k == a && !moved && bc_check(k, 20 * MIB, 2) && f0 < 64 && guarded(k) &&
	       !unguarded_steps,
	       "grown to 20 MiB over the kept pages: same address, %ld page faults for %u pages%s",
	       f0, 20 * MIB / 4096, g ? ", the guard after it" : "");
	tap_ok(malloc_usable_size(k) <= 20 * MIB + 10 * MIB,
	       "its usable size stays within half again the request (%zu KiB)",
	       malloc_usable_size(k) >> 10);

	/* A shrink cuts the mapping to the block. */
	a = addr_of(k);
	k = bc_launder(realloc(k, 3 * MIB));
	tap_ok(k && bc_check(k, 3 * MIB, 2) && malloc_usable_size(k) == 3 * MIB &&
	       bc_range_free((uintptr_t)k + 3 * MIB + g, a + 20 * MIB) && guarded(k),
	       "shrunk to 3 MiB: contents kept, the rest of the mapping unmapped%s",
	       g ? " (but the guard after it)" : "");
	a = addr_of(k);
	free(k);
	st = bc_large_stats();
	tap_ok(st.wholes_kept == 1 && st.whole_bytes == 3 * MIB + g, "freed, kept again (%zu bytes)",
	       st.whole_bytes);
	__hak_large_decay(__hak_now_ms(), 1000000);
	tap_ok(bc_large_stats().wholes_kept == 1, "a decay pass keeps a young one");
	__hak_large_decay(__hak_now_ms() + 2000, 1000);
	tap_ok(bc_large_stats().wholes_kept == 0 && bc_range_free(a, a + 3 * MIB + g),
	       "a decay pass after the delay unmaps it");

	/* malloc_trim gives every kept mapping back. */
	k = bc_launder(realloc(bc_launder(malloc(MIB)), 4 * MIB));
	a = addr_of(k);
	free(k);
	tap_ok(bc_large_stats().wholes_kept == 1, "one more kept");
	malloc_trim(0);
	tap_ok(bc_large_stats().wholes_kept == 0 && bc_range_free(a, a + 4 * MIB + g),
	       "malloc_trim unmaps it");
}

static void test_bad_free(void)
{
	struct child_result r;

	child_run(double_free, (void *)0, &r);
	tap_ok(child_aborted(&r), "a double free of a whole block aborts");
	child_run(double_free, (void *)(uintptr_t)MIB, &r);
	tap_ok(child_aborted(&r), "a free inside a freed whole block aborts");
}

int main(void)
{
	struct hak_large_stats st0;
	unsigned char *p;

	tap_plan(0);
	bc_set_max(256 * MIB);
	__hak_bigcache_set_decay(0);
	if (hak_vg_running()) {
		st0 = bc_large_stats();
		p = bc_launder(realloc(bc_launder(malloc(MIB)), 8 * MIB));
		free(p);
		tap_ok(bc_large_stats().whole_maps == st0.whole_maps &&
		       bc_large_stats().wholes_kept == 0,
		       "no whole block under valgrind");
		tap_finish();
	}
	test_whole();
	test_bad_free();
	tap_finish();
}
