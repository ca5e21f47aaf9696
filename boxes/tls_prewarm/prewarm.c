// SPDX-License-Identifier: MIT
/*
 * TLS prewarm: when a thread attaches its heap, fill its thread cache for
 * the configured classes in one batch.
 *
 * Runs from __hak_heap_attach() on the attaching thread, after its heap
 * and the capacity of every bin are set, so it touches only that thread's
 * own tcache and heap (no locks beyond what a refill takes). Each class
 * between the classes of CONFIG_HAK_TLS_PREWARM_MIN_SIZE and _MAX_SIZE
 * gets up to CONFIG_HAK_TLS_PREWARM_BLOCKS blocks, never more than the
 * bin's capacity (__hak_tcache_fill enforces it), so the tcache invariant
 * count <= cap holds and the thread can hold no more than without the box.
 *
 * A thread that attaches again after its exit destructor ran (it
 * allocates from a later TLS destructor) is not prewarmed: it is about to
 * die and the blocks would only be flushed again.
 */
#include <stdint.h>
#include "box.h"
#include "boxes/tls_prewarm/prewarm.h"

void hak_prewarm_thread(void)
{
	unsigned lo = __hak_class_of(CONFIG_HAK_TLS_PREWARM_MIN_SIZE);
	unsigned hi = __hak_class_of(CONFIG_HAK_TLS_PREWARM_MAX_SIZE);
	unsigned c;

	if (__hak_tc.exits)
		return;
	/*
	 * Top up to BLOCKS: a thread that adopts a pooled heap starts with
	 * its last thread's bins. Out of memory only leaves bins short: the
	 * next refill reports it.
	 */
	for (c = lo; c <= hi; c++) {
		uint32_t n = __hak_tbin_count(&__hak_tc.bins[c]);

		if (n < CONFIG_HAK_TLS_PREWARM_BLOCKS)
			(void)__hak_tcache_fill(c, CONFIG_HAK_TLS_PREWARM_BLOCKS - n);
	}
}
