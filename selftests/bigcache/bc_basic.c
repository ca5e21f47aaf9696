// SPDX-License-Identifier: MIT
/*
 * BigCache: which cached block serves which request (every size and class
 * boundary: whole up to len + len/4, split beyond), split tails merging back,
 * alignment, realloc across the small/mid/large borders keeping contents,
 * calloc of a reused dirty block, frees from another thread, fork.
 */
#include <pthread.h>
#include <sys/wait.h>
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"

static size_t lmin;	/* smallest large request, page-rounded */
/*
 * With the hardened box a split turns the tail's first page into the
 * head's guard page: a block is split only when a page more is left over.
 */
static const size_t guard = IS_ENABLED(CONFIG_HAK_HARDENED) ? BC_PAGE : 0;

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 61)
		p[i] = (unsigned char)(i * 7 + seed);
}

static int check(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 61)
		if (p[i] != (unsigned char)(i * 7 + seed))
			return 0;
	return 1;
}

/* Cache a block of `have` bytes, ask for `want`: did the cached one come back? */
static int reused(size_t have, size_t want, size_t *usable)
{
	void *p, *q = NULL;

	malloc_trim(0);
	p = bc_launder(malloc(have));
	memset(p, 0x5a, have);
	free(p);
	q = bc_launder(malloc(want));
	*usable = malloc_usable_size(q);
	free(q);
	return p == q;
}

static void test_boundaries(void)
{
	size_t u, b, i, bad = 0, splits0 = bc_stats().splits;
	/* Block lengths on every kind of boundary, in pages. */
	static const size_t pages[] = { 15, 16, 17, 18, 19, 20, 31, 32, 33, 36,
		40, 63, 64, 65, 72, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025,
		2047, 2048, 4095, 4096, 4097 };

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		size_t have = pages[i] * BC_PAGE, want;

		if (have < lmin)
			continue;
		/* Same length, one byte less, one page less: reused. */
		if (!reused(have, have, &u) || u != have)
			bad++, tap_diag("%zu pages: same size not reused", pages[i]);
		if (!reused(have, have - 1, &u) || u != have)
			bad++, tap_diag("%zu pages: size-1 not reused", pages[i]);
		/* The smallest request allowed: have <= want + want/4 (page-rounded). */
		want = have;
		while (want - BC_PAGE >= lmin &&
		       have <= (want - BC_PAGE) + (((want - BC_PAGE) / 4) & ~(BC_PAGE - 1)) + guard)
			want -= BC_PAGE;
		if (want >= lmin && (!reused(have, want, &u) || u != have))
			bad++, tap_diag("%zu pages: %zu not reused", pages[i], want);
		/* One page smaller than that: split, the head comes back exact. */
		if (want - BC_PAGE >= lmin &&
		    (!reused(have, want - BC_PAGE, &u) || u != want - BC_PAGE))
			bad++, tap_diag("%zu pages: %zu not split", pages[i], want - BC_PAGE);
		/* One byte more: the cached block is too short. */
		if (reused(have, have + 1, &u))
			bad++, tap_diag("%zu pages: +1 reused", pages[i]);
	}
	tap_ok(bad == 0 && bc_stats().splits > splits0,
	       "reuse at every boundary: whole up to len + len/4, split beyond (%zu splits)",
	       bc_stats().splits - splits0);

	/* Requests just around the large threshold still work and are exact. */
	bad = 0;
	for (b = lmin - 2 * BC_PAGE; b <= lmin + 2 * BC_PAGE; b += BC_PAGE / 2) {
		for (i = 0; i < 3; i++) {
			size_t n = b - 1 + i;
			unsigned char *p = malloc(n);

			if (!p || malloc_usable_size(p) < n)
				bad++;
			else
				fill(p, n, (unsigned)n);
			if (p && !check(p, n, (unsigned)n))
				bad++;
			free(p);
		}
	}
	tap_ok(bad == 0, "sizes around the large threshold (%zu)", lmin);
}

static void test_usable_bound(void)
{
	uint64_t s = 7;
	size_t i, bad = 0;
	void *slot[16] = { 0 };

	for (i = 0; i < 4000; i++) {
		size_t n = bc_log_size(&s, lmin, 4u << 20), k = i % 16, len;

		free(slot[k]);
		slot[k] = malloc(n);
		len = bc_page_up(n);
		if (!slot[k] || malloc_usable_size(slot[k]) < n ||
		    malloc_usable_size(slot[k]) > len + ((len / 4) & ~(BC_PAGE - 1)) + guard)
			bad++;
	}
	for (i = 0; i < 16; i++)
		free(slot[i]);
	tap_ok(bad == 0, "usable size within [n, page_up(n) * 1.25] in a churn");
	tap_ok(bc_stats().hits > 0, "the churn hit the cache (%zu hits)", bc_stats().hits);
}

/*
 * One cached block cut in three by three requests: freed, the pieces stay
 * three blocks (each keeps its boundaries, so a request of its size gets
 * it back whole); a request for the whole length joins them into one block
 * at the same place.
 */
static void test_merge(void)
{
	size_t n = 3 * lmin, merges0;
	unsigned char *p, *a, *b, *c;
	uintptr_t base;
	struct hak_bigcache_stats st;

	if (guard) {
		tap_skip("split and merge at these addresses: with the hardened box a guard page "
			 "follows every piece (selftests/hardened/hd_guard merges neighbours)");
		return;
	}
	malloc_trim(0);
	p = bc_launder(malloc(n));
	memset(p, 0x11, n);
	free(p);
	a = malloc(lmin);
	b = malloc(lmin);
	c = malloc(lmin);
	st = bc_stats();
	tap_ok(a == p && b == p + lmin && c == p + 2 * lmin && st.cached_bytes == 0,
	       "a cached block is split for smaller requests, head first");
	merges0 = st.merges;
	base = (uintptr_t)a;
	fill(a, lmin, 1);
	fill(c, lmin, 3);
	free(a);
	free(c);
	st = bc_stats();
	tap_ok(st.cached_blocks == 2 && st.merges == merges0,
	       "pieces with no cached neighbour stay apart (%zu blocks)", st.cached_blocks);
	free(b);
	st = bc_stats();
	tap_ok(st.cached_blocks == 3 && st.cached_bytes == n && st.merges == merges0,
	       "the middle piece keeps its boundaries: %zu block(s), %zu bytes",
	       st.cached_blocks, st.cached_bytes);
	b = bc_launder(malloc(lmin));
	tap_ok((uintptr_t)b == base + lmin && bc_stats().splits == st.splits,
	       "a request of a piece's length gets a piece back whole, not a cut");
	free(b);
	a = bc_launder(malloc(n));
	st = bc_stats();
	tap_ok(a == p && malloc_usable_size(a) == n && st.merges == merges0 + 2 &&
	       st.cached_blocks == 0,
	       "the whole length joins the three pieces, served at the same place (%zu merges)",
	       st.merges - merges0);
	free(a);
}

static void test_align(void)
{
	size_t a, bad = 0, n = lmin + 5 * BC_PAGE;
	void *p, *q = NULL;

	for (a = 4096; a <= (4u << 20); a <<= 1) {
		malloc_trim(0);
		if (posix_memalign(&p, a, n) || ((uintptr_t)p & (a - 1))) {
			bad++;
			continue;
		}
		fill(p, n, 3);
		free(p);
		/* Reuse only when the cached block is aligned enough. */
		if (posix_memalign(&q, a * 2, n) || ((uintptr_t)q & (a * 2 - 1)))
			bad++;
		if (q == p && ((uintptr_t)p & (a * 2 - 1)))
			bad++;
		free(q);
		q = aligned_alloc(a, n);
		if (!q || ((uintptr_t)q & (a - 1)))
			bad++;
		free(q);
	}
	tap_ok(bad == 0, "aligned large blocks 4 KiB..4 MiB, reused only when aligned");
}

static void test_realloc(void)
{
	static const size_t steps[] = { 100, 3000, 40000, 100000, 300000,
		1u << 20, 3u << 20, 5u << 20, 2u << 20, 300000, 100000, 40000, 3000,
		100, 7u << 20, 50 };
	unsigned char *p = NULL;
	size_t i, prev = 0, bad = 0;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t keep = prev < steps[i] ? prev : steps[i];
		unsigned char *q = realloc(p, steps[i]);

		if (!q) {
			bad++;
			break;
		}
		if (keep && !check(q, keep, (unsigned)i - 1))
			bad++, tap_diag("realloc %zu -> %zu lost contents", prev, steps[i]);
		fill(q, steps[i], (unsigned)i);
		p = q;
		prev = steps[i];
	}
	free(p);
	tap_ok(bad == 0, "realloc small <-> mid <-> large keeps contents");

	/* A cached block with slack: realloc within its usable size keeps it. */
	malloc_trim(0);
	p = malloc(lmin + 8 * BC_PAGE);
	free(p);
	p = malloc(lmin + 7 * BC_PAGE);
	fill(p, lmin + 7 * BC_PAGE, 9);
	{
		size_t u = malloc_usable_size(p);
		unsigned char *q = realloc(p, u);

		tap_ok(q == p && check(q, lmin + 7 * BC_PAGE, 9),
		       "realloc up to the usable size of a reused block stays in place");
		q = realloc(q, 4 * u);
		tap_ok(q && check(q, lmin + 7 * BC_PAGE, 9), "and grows beyond it keeping contents");
		free(q);
	}
}

static void test_calloc(void)
{
	size_t n = 1u << 20, i, nz = 0;
	unsigned char *p, *q;

	malloc_trim(0);
	p = malloc(n);
	memset(p, 0xab, n);
	free(p);
	q = calloc(1, n);
	for (i = 0; i < n; i++)
		nz += q[i] != 0;
	tap_ok(q == p && nz == 0, "calloc of a reused dirty block reads as zero");
	free(q);
}

#define XT_N	64

static void *xt_free(void *arg)
{
	void **v = arg;

	for (int i = 0; i < XT_N; i++) {
		if (!check(v[i], 4096, (unsigned)i))
			v[i] = NULL;
		free(v[i]);
	}
	return NULL;
}

static void test_cross_thread(void)
{
	void *v[XT_N];
	pthread_t t;
	size_t hits0, i, bad = 0;

	/* Each block its own (merged neighbours would be split differently). */
	__hak_bigcache_set_merge(false);
	malloc_trim(0);
	for (i = 0; i < XT_N; i++) {
		v[i] = malloc(lmin + i * BC_PAGE);
		fill(v[i], 4096, (unsigned)i);
	}
	pthread_create(&t, NULL, xt_free, v);
	pthread_join(t, NULL);
	for (i = 0; i < XT_N; i++)
		bad += v[i] == NULL;
	hits0 = bc_stats().hits;
	/* Largest first: each request finds exactly its own block. */
	for (i = XT_N; i-- > 0;) {
		v[i] = malloc(lmin + i * BC_PAGE);
		memset(v[i], 1, lmin);
	}
	tap_ok(bad == 0 && bc_stats().hits - hits0 == XT_N,
	       "blocks freed by another thread are reused (%zu of %d)",
	       bc_stats().hits - hits0, XT_N);
	for (i = 0; i < XT_N; i++)
		free(v[i]);
	__hak_bigcache_set_merge(true);
}

static void test_fork(void)
{
	void *p = malloc(2u << 20);
	int st = 0;
	pid_t pid;

	free(p);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		void *q = malloc(2u << 20);

		memset(q, 1, 2u << 20);
		free(q);
		malloc_trim(0);
		_exit(q == p && bc_stats().cached_bytes == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: the child reuses and trims the cache");
}

int main(void)
{
	tap_plan(0);
	lmin = bc_page_up(bc_large_min());
	tap_diag("large path from %zu bytes", lmin);
	test_boundaries();
	test_usable_bound();
	test_merge();
	test_align();
	test_realloc();
	test_calloc();
	test_cross_thread();
	test_fork();
	malloc_trim(0);
	tap_ok(bc_stats().cached_bytes == 0 && bc_stats().buckets == 256,
	       "malloc_trim empties the cache");
	tap_finish();
}
