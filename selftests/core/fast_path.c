// SPDX-License-Identifier: MIT
/*
 * fast_path: the tables and thread state the malloc/free fast paths index
 * without a check (lib/tcache.h, lib/size_class.h, lib/superslab.h).
 *
 * Proves that
 *  - __hak_size_ix[n] is 4 * the class of every request n <= 32 KiB (the
 *    malloc fast path's size lookup above 1 KiB), and that class holds n;
 *  - this thread's direct table (__hak_tc.size_ix, the lookup up to
 *    HAK_DIRECT_MAX bytes) agrees with it (the profiler is off here);
 *  - a small block's page-map entry xor this thread's tagx is its bin
 *    index (4 * class), and another heap's block, a block of a free page
 *    and a foreign address never give a bin index (so they take the slow
 *    path);
 *  - the free mark is the page map's address, and every bin's mask the
 *    class's with every bit from 2^47 up, and
 *    room + blocks held == cap while a heap is attached;
 *  - where the fixed page map is built (x86_64, not sanitized, neither
 *    the hardened nor the header box), it was reserved at HAK_PM_FIXED
 *    (its first page at relocation, lib/alloc.c, the rest at the first
 *    superslab), the map in use is that one, its index mask covers it and
 *    the free key is its address;
 *  - where the movable map is indexed the same way (HAK_PM_WRAP: x86_64
 *    without the fixed map but for the header box: hardened, or
 *    CONFIG_HAK_PM_FIXED=n), the map in use is reserved (not the stand-in entry every
 *    free reads before), and its mask covers it.
 * Under an RLIMIT_AS or RLIMIT_DATA below 64 GiB there is no map on purpose
 * (selftests/core/rlimit_map): the three checks of the map are skipped.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <stdlib.h>
#include "tap.h"
#include "tcache.h"
#include "heap.h"

static void *other_block;

/* A soft limit under HAK_PM_LIMIT_MIN: the library reserved no page map. */
static bool limited(void)
{
	struct rlimit rl;

	return (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur < HAK_PM_LIMIT_MIN) ||
	       (!getrlimit(RLIMIT_DATA, &rl) && rl.rlim_cur < HAK_PM_LIMIT_MIN);
}

static void *other_thread(void *arg)
{
	(void)arg;
	other_block = malloc(48);
	return NULL;
}

int main(void)
{
	static char foreign[64];
	unsigned bad = 0, c;
	size_t n;
	void *p;
	pthread_t t;
	uint32_t x;
	bool nomap = limited();

	tap_plan(9);
	for (n = 0; n <= HAK_SMALL_MAX; n++) {
		unsigned cl = __hak_class_of(n);

		if (__hak_size_ix[n] != 4 * cl || __hak_class_size[cl] < n)
			bad++;
	}
	tap_ok(bad == 0, "size_ix[n] == 4 * class_of(n) for n = 0..32768 (%u wrong)", bad);
	bad = 0;
	for (n = 0; n <= HAK_DIRECT_MAX; n++)
		if (__hak_tc.size_ix[n] != __hak_size_ix[n])
			bad++;
	tap_ok(bad == 0, "the tcache's direct table matches size_ix for n = 0..%u (%u wrong)",
	       HAK_DIRECT_MAX, bad);

	p = malloc(100);
	x = __hak_pm_entry((uintptr_t)p) ^ __hak_tc.tagx;
	if (nomap)
		tap_skip("no page map under RLIMIT_AS or RLIMIT_DATA < 64 GiB");
	else
		tap_ok(x == 4 * __hak_class_of(100),
		       "a block's page-map entry ^ tagx is its bin index (%#x)", x);

	if (pthread_create(&t, NULL, other_thread, NULL) || pthread_join(t, NULL))
		tap_bail("pthread_create");
	x = __hak_pm_entry((uintptr_t)other_block) ^ __hak_tc.tagx;
	tap_ok(x > HAK_PM_IX_MAX || __hak_page_owner((uintptr_t)other_block) == __hak_tc.tag,
	       "another heap's block gives no bin index (%#x)", x);
	x = __hak_pm_entry((uintptr_t)foreign) ^ __hak_tc.tagx;
	tap_ok(x > HAK_PM_IX_MAX, "a foreign address gives no bin index (%#x)", x);
	x = __hak_pm_entry((uintptr_t)1 << 47) ^ __hak_tc.tagx;
	tap_ok(x > HAK_PM_IX_MAX, "an address past 2^47 gives no bin index (%#x)", x);

	bad = __hak_free_key() != (uintptr_t)__hak_pm.map || !__hak_free_key();
	for (c = 0; c <= HAK_NCLASS; c++) {
		const struct hak_tbin *b = &__hak_tc.bins[c];

		if (b->mask != (__hak_class_mask[c] | HAK_MASK_HIGH))
			bad++;
	}
	if (nomap)
		tap_skip("no page map (free key) under RLIMIT_AS or RLIMIT_DATA < 64 GiB");
	else
		tap_ok(bad == 0, "the free key is the page map's address, every bin's mask the class's (%u wrong)",
		       bad);
	bad = 0;
	for (c = 0; c < HAK_NCLASS; c++) {
		const struct hak_tbin *b = &__hak_tc.bins[c];
		uint32_t held = 0;
		void *q;

		for (q = b->head; q && held <= b->cap; q = __hak_link(q))
			held++;
		if (held != __hak_tbin_count(b) || held > b->cap)
			bad++;
	}
	tap_ok(bad == 0, "room + blocks held == cap in every bin (%u wrong)", bad);
#ifdef HAK_PM_FIXED
	if (nomap)
		tap_skip("no fixed page map under RLIMIT_AS or RLIMIT_DATA < 64 GiB");
	else
		tap_ok(__hak_pm_fixed == 1 && (uintptr_t)__hak_pm.map == HAK_PM_FIXED &&
		       __hak_pm.mask == HAK_PM_ENTRIES - 1 && __hak_free_key() == HAK_PM_FIXED,
		       "the page map is at its fixed address %#lx (%p, state %d, mask %#lx)",
		       HAK_PM_FIXED, (void *)__hak_pm.map, __hak_pm_fixed, __hak_pm.mask);
#elif defined(HAK_PM_WRAP)
	if (nomap)
		tap_skip("no movable page map under RLIMIT_AS or RLIMIT_DATA < 64 GiB");
	else
		tap_ok(__hak_pm.map != &__hak_pm_none && __hak_pm.lim == HAK_PM_ENTRIES &&
		       __hak_pm.mask == HAK_PM_ENTRIES - 1 && __hak_free_key() == (uintptr_t)__hak_pm.map &&
		       __hak_pm_none == 0,
		       "the movable page map is wrapped: reserved at %p, mask %#lx, the stand-in entry 0",
		       (void *)__hak_pm.map, __hak_pm.mask);
#else
	tap_ok(1, "no fixed or wrapped page map in this build");
#endif
	free(other_block);
	free(p);
	tap_finish();
}
