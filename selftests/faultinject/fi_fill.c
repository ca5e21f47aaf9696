// SPDX-License-Identifier: MIT
/*
 * fi_fill: a large miss filled from BigCache's shorter blocks (lib/large.c,
 * fill_from_cache: their pages moved onto the new block by mremap) when
 * the move fails. Neither failure side had run in any test before.
 *
 * Four 3 MiB blocks are cached (resident, kept apart by live spacers and
 * one-page fences, as selftests/bigcache/bc_grow does), then 4 MiB is
 * asked for with the next mremap failing (hak_test_os_fail, HAK_OS_REMAP).
 * Proves that
 *  - kept: the kernel refused with the destination mapped back: the piece
 *    goes back to the cache, nothing counts as filled, and the block is
 *    whole (4 MiB written and read back); calloc the same way reads 0;
 *  - lost: another "thread" took a page of the destination's hole
 *    (hak_test_os_move_hole): that page is left alone (its bytes kept, not
 *    inside the block), the block is mapped anew elsewhere and is whole.
 */
#include "../bigcache/bc_test.h"
#include "os.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"
#if IS_ENABLED(CONFIG_HAK_BIGCACHE)
#include "boxes/bigcache/bc_internal.h"
#endif

#define MIB	(1ul << 20)

static unsigned char *b[4], *sp[4];
static void *fence[8];
static size_t nf;
static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 509)
		p[i] = (unsigned char)(i * 13 + seed);
}

/* Four 3 MiB blocks cached, none next to another; false when they touch. */
static int cache_four(void)
{
	int next = 0;

	malloc_trim(0);
	nf = 0;
	for (int i = 0; i < 4; i++) {
		b[i] = bc_launder(malloc(3 * MIB));
		sp[i] = bc_launder(malloc(3 * MIB));
		fill(b[i], 3 * MIB, 20 + (unsigned)i);
	}
	for (int i = 0; i < 4; i++) {
		void *at[2] = { b[i] - BC_PAGE, b[i] + 3 * MIB };

		for (int j = 0; j < 2; j++) {
			void *f = mmap(at[j], BC_PAGE, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			if (f == at[j])
				fence[nf++] = f;
			else if (f != MAP_FAILED)
				munmap(f, BC_PAGE);
		}
		for (int j = 0; j < 4; j++)
			next |= b[i] + 3 * MIB + hak_hd_guard_len() == b[j];
	}
	for (int i = 0; i < 4; i++)
		free(b[i]);
	return !next;
}

static void uncache(void)
{
	for (int i = 0; i < 4; i++)
		free(sp[i]);
	for (size_t i = 0; i < nf; i++)
		munmap(fence[i], BC_PAGE);
	malloc_trim(0);
}

static int whole(unsigned char *q, size_t n, unsigned seed)
{
	if (!q)
		return 0;
	fill(q, n, seed);
	return bc_check(q, n, seed);
}

static void kept(int zero)
{
	struct hak_large_stats l0, l1;
	size_t cached0;
	unsigned char *q;
	int ok = 1;

	if (!cache_four()) {
		tap_skip("two cached blocks are neighbours");
		uncache();
		return;
	}
	l0 = bc_large_stats();
	cached0 = bc_stats().cached_bytes;
	hak_test_os_fail(HAK_OS_REMAP, 0, 1);
	q = bc_launder(zero ? calloc(1, 4 * MIB) : malloc(4 * MIB));
	hak_test_os_fail(HAK_OS_REMAP, 0, 0);
	l1 = bc_large_stats();
	for (size_t i = 0; zero && q && i < 4 * MIB; i += 64)
		ok &= !q[i];
	tap_ok(q && ok && l1.fills == l0.fills && l1.move_fails == l0.move_fails + 1 &&
	       bc_stats().cached_bytes == cached0 && whole(q, 4 * MIB, 40),
	       "%s of a 4 MiB miss, the fill's mremap refused (kept): the piece back in the "
	       "cache, no fill counted, the block whole%s", zero ? "calloc" : "malloc",
	       zero ? " and zeroed" : "");
	free(q);
	uncache();
}

static void lost(void)
{
	unsigned char *q;
	int ok;

	if (!cache_four()) {
		tap_skip("two cached blocks are neighbours");
		uncache();
		return;
	}
	bc_hole_page = NULL;
	hak_test_os_move_hole = bc_take_hole;
	hak_test_os_fail(HAK_OS_REMAP, 0, 1);
	q = bc_launder(malloc(4 * MIB));
	hak_test_os_fail(HAK_OS_REMAP, 0, 0);
	hak_test_os_move_hole = NULL;
	ok = q && bc_hole_page &&
	     ((char *)q + 4 * MIB <= bc_hole_page || (char *)q > bc_hole_page);
	for (size_t i = 0; ok && i < BC_PAGE; i++)
		ok = (unsigned char)bc_hole_page[i] == 0x5a;
	tap_ok(ok && whole(q, 4 * MIB, 41),
	       "the fill's destination hole taken by another thread (lost): its page left "
	       "alone, the block mapped anew and whole");
	free(q);
	if (bc_hole_page)
		munmap(bc_hole_page, BC_PAGE);
	uncache();
}

int main(void)
{
	if (!IS_ENABLED(CONFIG_HAK_BIGCACHE))
		tap_skip_all("no BigCache: nothing to fill from");
	if (hak_vg_running())
		tap_skip_all("valgrind: no fills");
	tap_plan(3);
	bc_set_max(256 * MIB);
#if IS_ENABLED(CONFIG_HAK_BIGCACHE)
	__hak_bigcache_set_decay(0);
	__hak_bigcache_force_pressure(0);
#endif
	kept(0);
	kept(1);
	lost();
	tap_finish();
}
