// SPDX-License-Identifier: MIT
/*
 * TLS prewarm: at a thread's first refill (its first malloc that finds its
 * cache empty), fill its thread cache for the configured classes in one
 * batch.
 *
 * Runs from __hak_tcache_refill() on the refilling thread, with its heap
 * entered and the capacity of every bin set, so it touches only that
 * thread's own tcache and heap (no locks beyond what a refill takes). Each
 * class between the classes of CONFIG_HAK_TLS_PREWARM_MIN_SIZE and _MAX_SIZE
 * gets up to CONFIG_HAK_TLS_PREWARM_BLOCKS blocks, never more than the
 * bin's capacity (__hak_tcache_fill enforces it), so the tcache invariant
 * count <= cap holds and the thread can hold no more than without the box.
 *
 * Not at attach: a thread whose first calls are frees (a consumer, a
 * successor freeing the data it inherited) may never allocate, and one
 * that adopts a pooled heap starts with its last thread's bins; a
 * prewarm at attach gave every consumer a slab of every prewarmed class
 * that it never used (producer-consumer at 16 pairs: 608 slabs taken
 * against 356 without the box). Once per thread: a thread that has
 * refilled has shown which classes it uses, and its later refills are
 * the core's.
 *
 * A thread that allocates after its exit destructor ran (from a later TLS
 * destructor) is not prewarmed: it is about to die and the blocks would
 * only be flushed again.
 */
#include <stdint.h>
#include "box.h"
#include "boxes/tls_prewarm/prewarm.h"

/* Set at the thread's first refill: the prewarm runs once per thread. */
static __thread unsigned char warmed __attribute__((tls_model("initial-exec")));

void hak_prewarm_thread(void)
{
	unsigned lo = __hak_class_of(CONFIG_HAK_TLS_PREWARM_MIN_SIZE);
	unsigned hi = __hak_class_of(CONFIG_HAK_TLS_PREWARM_MAX_SIZE);
	unsigned c;

	if (likely(warmed))
		return;
	warmed = 1;
	if (__hak_tc.exits)
		return;
	/*
	 * Top up to BLOCKS: a thread that adopted a pooled heap started with
	 * its last thread's bins. Out of memory only leaves bins short: the
	 * next refill reports it.
	 */
	for (c = lo; c <= hi; c++) {
		uint32_t n = __hak_tbin_count(&__hak_tc.bins[c]);

		if (n < CONFIG_HAK_TLS_PREWARM_BLOCKS)
			(void)__hak_tcache_fill(c, CONFIG_HAK_TLS_PREWARM_BLOCKS - n);
	}
}
