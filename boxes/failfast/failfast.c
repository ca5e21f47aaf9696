// SPDX-License-Identifier: MIT
/*
 * Fail-fast guards: validate what the allocator is about to trust.
 *
 * Level 1 (cheap enough for staging): a freed pointer lies in a live slab
 * of its class, on a block boundary (and carries a valid header with that
 * box); the link a thread-cache pop exposes and every block taken from a
 * slab's free list stay inside a slab of the class; slab counters never
 * wrap (checked in lib/heap.c). Level 2 adds double-free detection (a
 * freed block's second word holds its address ^ a key; cleared when the
 * block is handed out) and a full walk of a slab's free list on refill.
 *
 * Any violation prints one line and aborts: the process is not allowed to
 * run on with a corrupt heap.
 */
#include <stdlib.h>
#include <stdint.h>
#include "box.h"
#include "boxes/failfast/failfast.h"
#include "boxes/header_classidx/header.h"
#include "boxes/valgrind/valgrind_hooks.h"

#define FF_FREED_KEY	0x46726565644b6579ULL	/* "FreedKey" */

int __hak_ff_level = CONFIG_HAK_FAILFAST_LEVEL;

void hak_ff_init(void)
{
	__hak_ff_level = (int)__hak_opt.failfast;
	/*
	 * Under valgrind, memcheck already catches double frees and use after
	 * free, and level 2's free-list walks would read links it keeps
	 * inaccessible: run level 1 at most.
	 */
	if (__hak_ff_level > 1 && hak_vg_running())
		__hak_ff_level = 1;
}

void hak_ff_fail(const void *p, unsigned c, const char *check)
{
	if (c < HAK_NCLASS)
		__hak_report("fail-fast: %s: %p (class %u, %u bytes)", check, p, c,
			     (unsigned)__hak_class_size[c]);
	else
		__hak_report("fail-fast: %s: %p", check, p);
	abort();
}

static inline uint64_t freed_mark(const void *p)
{
	return (uint64_t)(uintptr_t)p ^ FF_FREED_KEY;
}

/*
 * Level 2 marks freed blocks in their second word. Under valgrind,
 * memcheck tracks double frees and use after free itself, and the mark
 * would read program data it (rightly) calls uninitialised: leave it to
 * memcheck.
 */
static inline bool use_marks(void)
{
	return __hak_ff_level >= 2 && !hak_vg_running();
}

/*
 * p must be block of class c: in a live superslab page of that class, on a
 * block boundary of its slab, and (header box) with a valid header.
 */
static void check_block(const void *p, unsigned c, const char *what)
{
	uintptr_t a = (uintptr_t)p;

	if (!__hak_ss_owns(a))
		hak_ff_fail(p, c, what);
	if (__hak_page_class(a) != c)
		hak_ff_fail(p, c, what);
	if (!__hak_slab_is_block(__hak_slab_head(__hak_page_of(a)), a))
		hak_ff_fail(p, c, what);
	if (HAK_HDR_SIZE && hak_hdr_of(p)->check != hak_hdr_check(p))
		hak_ff_fail(p, c, what);
}

void hak_ff_on_free(void *p, unsigned c)
{
	if (c >= HAK_NCLASS) {
		const struct hak_hdr *hd = hak_hdr_of(p);

		/*
		 * An aligned block of the header box: its slot must be a block
		 * of the slot class, and the block's first 16 bytes (which
		 * its free writes) inside the slot, not in the next block's
		 * header.
		 */
		if (HAK_HDR_SIZE && hd->check == hak_hdr_check(p) &&
		    hd->slot_class < HAK_NCLASS) {
			unsigned sc = hd->slot_class;
			void *slot = (char *)p - 16 * (size_t)hd->delta;

			if (__hak_page_class((uintptr_t)slot) != sc)
				hak_ff_fail(p, sc, "aligned block outside a live slab");
			check_block(slot, sc, "aligned block whose slot is not a block boundary");
			if (16 * (size_t)hd->delta + 16 > __hak_class_size[sc])
				hak_ff_fail(p, sc, "aligned block at the end of its slot");
			return;
		}
		hak_ff_fail(p, c, "free of a pointer that is not a live block (free page or bad header)");
	}
	check_block(p, c, "free of a pointer that is not a block boundary (interior or never allocated)");
	if (use_marks()) {
		uint64_t *w = (uint64_t *)p;

		if (w[1] == freed_mark(p))
			hak_ff_fail(p, c, "double free");
		w[1] = freed_mark(p);
	}
}

void hak_ff_on_alloc(void *p, unsigned c)
{
	void *next = __hak_tc.bins[c].head;

	if (next)
		check_block(next, c, "corrupted free-list link in the thread cache");
	if (use_marks())
		((uint64_t *)p)[1] = 0;
}

void hak_ff_on_slab_pop(const struct hak_slab *s, const void *p)
{
	uintptr_t a = (uintptr_t)p, start = __hak_slab_start(s) + HAK_HDR_SIZE;
	size_t stride = __hak_class_stride(s->class_idx);

	if (a < start || a >= __hak_slab_end(s) || (a - start) % stride)
		hak_ff_fail(p, s->class_idx, "slab free-list head outside its slab");
}

void hak_ff_walk_slab(const struct hak_slab *s)
{
	const void *p;
	uint32_t n = 0, limit = s->carved;

	for (p = s->free; p; p = __hak_link((void *)p)) {
		hak_ff_on_slab_pop(s, p);
		if (++n > limit)
			hak_ff_fail(p, s->class_idx, "slab free list longer than the slab (cycle)");
	}
	if (n + s->used > s->carved)
		hak_ff_fail(s->free, s->class_idx, "slab free list and used counter disagree");
}

void hak_ff_check_live(const void *p, unsigned c)
{
	if (c < HAK_NCLASS) {
		check_block(p, c, "pointer is not a live block");
		if (use_marks() && ((const uint64_t *)p)[1] == freed_mark(p))
			hak_ff_fail(p, c, "use of a freed block (realloc or usable size after free)");
	}
}
