/* SPDX-License-Identifier: MIT */
/*
 * Per-thread caches: one LIFO list of free blocks per size class, in
 * initial-exec TLS so the fast paths address it with one segment-relative
 * access. Blocks link through their first word.
 *
 * Invariants (this thread only, no atomics):
 *   bins[c].count is the length of bins[c].head's list;
 *   bins[c].count <= bins[c].cap, except transiently inside the slow path;
 *   bins[HAK_CLASS_NONE] is always empty with cap 0, so a free of a block
 *     whose page is not in a slab always misses to the slow path.
 * A zeroed tcache (a new thread) has cap 0 everywhere, so the first malloc
 * and the first free both take the slow path, which attaches a heap.
 *
 * Fast-path budget: malloc hit 18 instructions to ret (range check, class
 * table, TLS bin address, pop; 19 with the heap profiler, whose countdown
 * replaces the range check); free hit 26 (registry byte, page class and
 * owner tag, capacity check, push). Keep them there: the figures are
 * checked in Documentation/design.md and by tools/boxcost.sh.
 */
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include <stdint.h>
#include <hak/compiler.h>
#include "size_class.h"
#include "superslab.h"
#include "boxes/failfast/failfast.h"
#include "boxes/valgrind/valgrind_hooks.h"

struct hak_heap;

struct hak_tbin {
	void *head;
	uint32_t count;
	uint32_t cap;
};

/* Thread state, in the tcache so the slow path reads one TLS block. */
enum hak_tstate {
	HAK_T_NEW = 0,		/* no heap yet */
	HAK_T_LIVE,		/* heap attached */
	HAK_T_EXITING,		/* heap detached by the thread-exit destructor */
};

struct hak_tcache {
	struct hak_tbin bins[HAK_NCLASS + 1];	/* first: bins[c] is tc + 16 * c */
	struct hak_heap *heap;
	uint32_t state;
	uint32_t exits;		/* times the exit destructor ran for this thread */
	uint32_t tag;		/* the attached heap's tag, 0 without a heap */
	unsigned long prof_left;	/* heap profiler: fast byte budget */
};

extern HAK_HIDDEN __thread struct hak_tcache __hak_tc __attribute__((tls_model("initial-exec")));

/* Slow paths (heap.c). */
void *__hak_tcache_refill(unsigned c) __noinline;
void __hak_tcache_overflow(void *p, unsigned c) __noinline;
/* Free of a block whose slab another heap owns (or before attach). */
void __hak_free_remote(void *p, unsigned c) __noinline;
/* For boxes: add up to n blocks to bin c / flush bin c down to keep blocks. */
uint32_t __hak_tcache_fill(unsigned c, uint32_t n);
void __hak_tcache_trim(unsigned c, uint32_t keep);

/* Take the first block p of bin b (class c), which must not be empty. */
static __always_inline void *__hak_tbin_take(struct hak_tbin *b, void *p, unsigned c)
{
	b->head = hak_vg_next(p);
	b->count--;
	hak_vg_alloc(p, __hak_class_size[c], false);
	if (hak_ff_level())
		hak_ff_on_alloc(p, c);
	return p;
}

/* Pop a block of class c, or take the refill slow path. */
static __always_inline void *__hak_tcache_pop(unsigned c)
{
	struct hak_tbin *b = &__hak_tc.bins[c];
	void *p = b->head;

	if (unlikely(!p))
		return __hak_tcache_refill(c);	/* ends in __hak_tbin_take too */
	return __hak_tbin_take(b, p, c);
}

/* Push a freed block of class c (c may be HAK_CLASS_NONE: slow path). */
static __always_inline void __hak_tcache_push(void *p, unsigned c)
{
	struct hak_tbin *b = &__hak_tc.bins[c];

	if (hak_ff_level())
		hak_ff_on_free(p, c);
	hak_vg_free(p);
	if (unlikely(b->count >= b->cap)) {
		__hak_tcache_overflow(p, c);
		return;
	}
	hak_vg_set_next(p, b->head);
	b->head = p;
	b->count++;
}

#endif /* HAK_TCACHE_H */
