// SPDX-License-Identifier: MIT
/*
 * aligned_lent: an aligned block cut at the very start of its slot (the
 * header's delta 0) comes back into circulation when freed, also after
 * its heap has lent blocks to another thread's cache. Its free passes
 * through the class-less bin, whose push writes the free mark at the
 * word the slot's own push then tests; taken for a possible double free,
 * the slot was parked for good once the heap counted as lent (a heap
 * robbed by the idle-heap refill always does), and stayed counted in use.
 *
 * The main thread lends its heap deterministically: another thread, which
 * allocates too, frees 400 of its blocks while it waits, and caches them
 * from the 257th on (the owner counts as idle, lib/heap.c, its last tick
 * 30 ms before the freer's). Then aligned blocks of several
 * sizes and alignments are taken in batches and freed; some start their
 * slot. After a trim nothing may be left in use.
 */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "tap.h"
#include "size_class.h"
#include "boxes/header_classidx/header.h"
#include "../lib/coarse_sleep.h"

#define NLEND	400
#define BATCH	64

static void *lend[NLEND];

static void *freer(void *arg)
{
	unsigned i;

	(void)arg;
	hak_free(hak_malloc(1000));	/* a thread that allocates caches */
	/*
	 * This thread's clock past the owner's last tick by HAK_IDLE_MS
	 * (10 ms, lib/heap.c): sleep three times that, then tick (4 MiB).
	 */
	tst_sleep_ms(30);
	hak_free(hak_malloc(4u << 20));
	for (i = 0; i < NLEND; i++)
		hak_free(lend[i]);
	return NULL;
}

int main(void)
{
	static const size_t sizes[] = { 1, 24, 100, 200, 500, 1000 };
	struct hak_stats st0, st;
	unsigned i, k, bad = 0, at_start = 0, nulls = 0;
	size_t align, s;
	pthread_t t;
	void *v[BATCH];

	tap_plan(3);
	for (i = 0; i < NLEND; i++)
		lend[i] = hak_malloc(64);
	if (pthread_create(&t, NULL, freer, NULL) || pthread_join(t, NULL))
		tap_bail("pthread_create failed");
	hak_malloc_trim(0);
	hak_stats_get(&st0);

	for (align = 32; align <= 1024; align *= 2) {
		for (s = 0; s < ARRAY_SIZE(sizes); s++) {
			for (k = 0; k < BATCH; k++) {
				unsigned char *p = hak_memalign(align, sizes[s]);

				v[k] = p;
				if (!p) {
					nulls++;
					continue;
				}
				if ((uintptr_t)p % align)
					bad++;
				if (hak_hdr_class(p) == HAK_HDR_ALIGNED && hak_hdr_of(p)->delta == 0)
					at_start++;
				p[0] = (unsigned char)k;
			}
			for (k = 0; k < BATCH; k++)
				hak_free(v[k]);
		}
	}
	hak_malloc_trim(0);
	hak_stats_get(&st);

	tap_ok(!bad && !nulls, "aligned blocks 32 B..1 KiB alignment (%u misaligned, %u NULL)",
	       bad, nulls);
	tap_ok(at_start > 0, "%u of them cut at their slot's start", at_start);
	tap_ok(st.small_in_use <= st0.small_in_use,
	       "nothing left in use once freed and trimmed, on a heap that lent blocks "
	       "(%zu small bytes before, %zu after)", st0.small_in_use, st.small_in_use);
	tap_finish();
}
