// SPDX-License-Identifier: MIT
/*
 * l25_grow: a block that grows past 256 KiB leaves the pool for the large
 * path (lib/alloc.c, HAK_GROW_POOL_MAX), and there it grows as a large
 * block, also while its new size is one the pool serves (up to
 * CONFIG_HAK_L25_MAX_KIB): with nothing cached (trim first) the growth of
 * a large block of about 336 KiB to 400 KiB is an mremap of it, no new
 * large mapping. Before, each such growth was a copy into a fresh mapping
 * (one more in large_maps) up to the pool's maximum. Contents are kept at
 * every step, and a shrink back to half moves the block into the pool.
 */
#include "l25_test.h"

#define KIB	((size_t)1 << 10)

static size_t large_maps(void)
{
	struct hak_stats st;

	hak_stats_get(&st);
	return st.large_maps;
}

static int in_pool(const void *p)
{
	return __hak_ssmap_kind((uintptr_t)p) == HAK_SSMAP_L25;
}

/* The pattern lt_fill() wrote at p, checked at q after p moved there. */
static int kept(const void *q, uintptr_t p, size_t n)
{
	return lt_check(q, (const void *)p, n);
}

int main(void)
{
	size_t maps0, old;
	char *p, *q, *w;
	volatile uintptr_t at;	/* laundered: only its value is compared */

	tap_plan(0);
	if (L25_TEST_MAX < 512 * KIB)
		tap_skip_all("the pool stops below 512 KiB in this build");

	w = malloc(lt_opaque(200 * KIB));	/* the pattern's base address */
	p = malloc(lt_opaque(200 * KIB));
	if (!w || !p)
		tap_bail("malloc");
	lt_fill(p, 200 * KIB, 0);
	at = (uintptr_t)p;
	q = realloc(p, lt_opaque(300 * KIB));
	if (!q)
		tap_bail("realloc to 300 KiB");
	tap_ok(in_pool((void *)at) && !in_pool(q) && kept(q, at, 200 * KIB),
	       "200 -> 300 KiB leaves the pool, contents kept");
	lt_fill(q, 300 * KIB, 0);
	p = q;
	old = malloc_usable_size(p);

	malloc_trim(0);		/* nothing cached: the growth cannot copy into a cached block */
	maps0 = large_maps();
	at = (uintptr_t)p;
	q = realloc(p, lt_opaque(400 * KIB));
	if (!q)
		tap_bail("realloc to 400 KiB");
	tap_ok(large_maps() == maps0 && !in_pool(q),
	       "%zu -> 400 KiB grows the large block, no new mapping (%zu made)",
	       old >> 10, large_maps() - maps0);
	tap_ok(kept(q, at, 300 * KIB) && malloc_usable_size(q) >= 400 * KIB,
	       "contents kept, %zu usable", malloc_usable_size(q));
	lt_fill(q, 400 * KIB, 0);
	p = q;

	at = (uintptr_t)p;
	q = realloc(p, lt_opaque(150 * KIB));
	if (!q)
		tap_bail("realloc to 150 KiB");
	tap_ok(in_pool(q) && kept(q, at, 150 * KIB),
	       "a shrink to 150 KiB moves it into the pool, contents kept");
	free(q);
	free(w);
	tap_finish();
}
