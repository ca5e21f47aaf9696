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
 * Free marks (double-free detection, every variant): a block in a bin, in
 * its slab's free list or in its slab's remote list holds, in its second
 * word, the address of its owner thread's bin (&bins[c] of the tcache of
 * the heap owning its slab); a block handed out has that word cleared. A
 * free that finds the mark of its own bin asks __hak_free_confirm(),
 * which reports only a block it finds on one of those lists, so a program
 * that stores the same value is never reported. The bin address costs no
 * load: the push has it in a register. A freed pointer must also pass the
 * class's block-boundary mask (unaligned and most interior pointers).
 *
 * Fast-path budget: malloc hit 19 instructions to ret (range check, class
 * table, TLS bin address, pop, mark clear; one more with the heap
 * profiler, whose countdown replaces the range check); free hit 32
 * (registry byte, page class and owner tag, boundary mask, mark test and
 * store, capacity check, push). Keep them there: the figures are checked
 * in Documentation/design.md and by tools/boxcost.sh.
 */
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include <stdint.h>
#include <hak/compiler.h>
#include "size_class.h"
#include "superslab.h"
#include "boxes/failfast/failfast.h"
#include "boxes/hardened/hardened.h"
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

HAK_BUILD_BUG_ON(sizeof(struct hak_tbin) != 16);	/* == a class_mask slot */

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
/*
 * p carries this thread's free mark: report it if it is free, else free it
 * (the rest of __hak_tcache_push).
 */
void __hak_free_confirm(void *p, unsigned c) __noinline __cold;
/* p fails class c's block-boundary mask: report it and abort. */
void __hak_free_misaligned(void *p, unsigned c) __noreturn __noinline __cold;
/* For boxes: add up to n blocks to bin c / flush bin c down to keep blocks. */
uint32_t __hak_tcache_fill(unsigned c, uint32_t n);
void __hak_tcache_trim(unsigned c, uint32_t keep);

/*
 * The free-list link in free block p, and setting it: every list of free
 * blocks (bins, slab free lists, remote lists) goes through these. With
 * the hardened box the link is stored encoded and checked when read: a
 * link overwritten by the program (overflow, write after free) is caught
 * before it is followed or handed out.
 */
static __always_inline void *__hak_link(void *p)
{
	void *next = hak_vg_next(p);

	if (hak_hd_on()) {
		uintptr_t v = (uintptr_t)next;

		next = hak_hd_dec(p, v);
		if (unlikely(next && (((uintptr_t)next & 15) || !__hak_ss_owns((uintptr_t)next))))
			hak_hd_bad_link(p, v);
	}
	return next;
}

static __always_inline void __hak_set_link(void *p, void *next)
{
	hak_vg_set_next(p, hak_hd_on() ? (void *)hak_hd_enc(p, next) : next);
}

/*
 * Hardened zero-on-free: clear a freed block but its first two words,
 * which the link and the free mark (or fail-fast's) overwrite anyway.
 */
static __always_inline void __hak_zero_freed(void *p, unsigned c)
{
	if (hak_hd_zero_on_free() && c < HAK_NCLASS)
		__builtin_memset((char *)p + 16, 0, __hak_class_size[c] - 16);
}

/* Take the first block p of bin b (class c), which must not be empty. */
static __always_inline void *__hak_tbin_take(struct hak_tbin *b, void *p, unsigned c)
{
	b->head = __hak_link(p);
	b->count--;
	hak_vg_alloc(p, __hak_class_size[c], false);
	hak_vg_clear_mark(p);
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

/*
 * Mark block p free (bin b's address) and close it for memcheck. Fail-fast
 * level 2 keeps its own mark in that word: ours stays out then.
 */
static __always_inline void __hak_tcache_mark(void *p, struct hak_tbin *b)
{
	if (hak_ff_level() < 2)
		hak_vg_set_mark(p, (uintptr_t)b);
	hak_vg_free(p);
}

/* Push a freed block of class c (c may be HAK_CLASS_NONE: slow path). */
static __always_inline void __hak_tcache_push(void *p, unsigned c)
{
	uintptr_t off16 = (uintptr_t)c * sizeof(struct hak_tbin);
	struct hak_tbin *b = (struct hak_tbin *)((char *)__hak_tc.bins + off16);

	if (unlikely(__hak_off_boundary((uintptr_t)p, off16)))
		__hak_free_misaligned(p, c);
	if (unlikely(hak_vg_mark(p) == (uintptr_t)b)) {
		__hak_free_confirm(p, c);
		return;
	}
	if (hak_ff_level())
		hak_ff_on_free(p, c);
	__hak_zero_freed(p, c);
	if (unlikely(b->count >= b->cap)) {
		__hak_tcache_mark(p, b);
		__hak_tcache_overflow(p, c);
		return;
	}
	__hak_set_link(p, b->head);
	b->head = p;
	b->count++;
	__hak_tcache_mark(p, b);	/* last: the compiler need not reload count */
}

#endif /* HAK_TCACHE_H */
