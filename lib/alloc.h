/* SPDX-License-Identifier: MIT */
/*
 * The allocator's entry logic, shared by the hak_* API (api.c) and the
 * libc names (interpose.c). malloc and free are inline here so each entry
 * point carries its own copy of the fast path; everything else is an
 * out-of-line function in alloc.c.
 *
 * malloc: small request -> tcache pop of bin __hak_size_ix[n] (miss:
 *         refill); else the big path.
 * free:   page-map entry ^ tagx is a bin index -> a block of this thread's
 *         heap: tcache push (overflow: slow path); anything else (another
 *         heap's block, which goes straight home to its slab's remote list,
 *         a free page, NULL, a mid or large block, a foreign pointer) is
 *         sorted out of line by __hak_free_slow.
 */
#ifndef HAK_ALLOC_H
#define HAK_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <hak/compiler.h>
#include "init.h"
#include "size_class.h"
#include "superslab.h"
#include "tcache.h"
#include "boxes/aggressive_inline/inline.h"
#include "boxes/header_classidx/header.h"
#include "boxes/heapprof/heapprof.h"

void *__hak_alloc_big(size_t n) HAK_SLOWPATH;
void __hak_free_big(void *p) HAK_SLOWPATH;

/* malloc without the profiler's countdown (the profiler's own slow path). */
static __always_inline void *__hak_alloc_nosample(size_t n)
{
	if (likely(n <= HAK_SMALL_MAX))
		return __hak_tcache_pop_ix(__hak_tc_tls(), __hak_size_ix_of(n));
	return __hak_alloc_big(n);
}

/*
 * Up to HAK_DIRECT_MAX bytes the bin index comes from the tcache's copy of
 * the size table, in the TLS block the pop addresses anyway: one MOVZBL
 * %fs-relative, where the const table needs a LEA for its address first.
 * 1 KiB per thread (mimalloc's direct pages stop at 1 KiB too); larger
 * small requests pay a CMP and a JA more. With the heap profiler built,
 * its countdown is also the small-size check of those larger ones: the
 * budget in prof_left never exceeds HAK_SMALL_MAX, so a request it covers
 * is small, and every other one (big, or the budget spent) goes to the
 * profiler's slow path (a SUB and a JB replace the CMP and the JA). The
 * direct ones are counted only while the profiler samples, out of line
 * (__hak_prof_direct), so the dormant profiler costs them nothing.
 */
HAK_FASTPATH void *__hak_alloc(size_t n)
{
	hak_tc_tls *t = __hak_tc_tls();

	/*
	 * The hardened box too since its link check's cold path is a tail
	 * call (a call that does not return made GCC set up a stack frame
	 * here: +2 for the LEA's -1).
	 */
	if (likely(n <= HAK_DIRECT_MAX))
		return __hak_tcache_pop_direct(t, n, t->size_ix[n]);
	if (HAK_PROF_BUILT) {
		if (hak_prof_tick(&t->prof_left, n))
			return hak_prof_alloc(n);
		return __hak_tcache_pop_ix(t, __hak_size_ix_of(n));
	}
	if (likely(n <= HAK_SMALL_MAX))
		return __hak_tcache_pop_ix(t, __hak_size_ix_of(n));
	return __hak_alloc_big(n);
}

/*
 * Class of a small block p (a inside a live superslab): the superslab's
 * page-class line. For the slow paths (the fast path has it from the page
 * map).
 */
static __always_inline unsigned __hak_block_class(uintptr_t a)
{
	unsigned c = __hak_page_class(a);

	/*
	 * The header's class byte is the program's to overwrite (a write
	 * one byte before its block): trusted only where the page's class
	 * agrees, anything else (an aligned block's HAK_HDR_ALIGNED, a
	 * corrupt byte) is HAK_CLASS_NONE, which the slow path checks as an
	 * aligned block's header (__hak_hdr_slot) or reports.
	 */
	if (HAK_HDR_SIZE && hak_hdr_class((const void *)a) != c)
		return HAK_CLASS_NONE;
	return c;
}

/*
 * Free of anything the fast path does not take (alloc.c). ex is the fast
 * path's page-map entry of p with this thread's tag byte XORed into its
 * owner byte (arch_tls_xor_byte1_ne), or 0 when no entry was read (p
 * outside the map): its owner byte is then 0, which the fast path never
 * sends here otherwise (that byte not 0 is its branch). The slow path
 * takes another heap's block by the entry, as the fast path does ours,
 * and sorts anything else out from the registry (__hak_free_any,
 * tcache.h).
 */
void __hak_free_slow(void *p, uintptr_t ex) HAK_SLOWPATH;

/*
 * Bin index of small block p whose page-map entry matched this thread
 * (ix): the map's. With the header box, HAK_CLASS_NONE unless the block's
 * class byte says the same (an aligned block's HAK_HDR_ALIGNED: the slow
 * path finds its slot; a corrupt byte: the slow path reports it).
 */
static __always_inline uintptr_t __hak_block_ix(uintptr_t a, uintptr_t ix)
{
	/* A class byte the map does not confirm: the slow path (above). */
	if (HAK_HDR_SIZE && 4 * (uintptr_t)hak_hdr_class((const void *)a) != ix)
		return 4 * (uintptr_t)HAK_CLASS_NONE;
	return ix;
}

/*
 * One page-map load proves p is a block of a slab of this thread's heap
 * and gives its bin (lib/superslab.h); anything else (another thread's
 * block, a free page, a mid or large block, NULL, a foreign pointer, a
 * thread without a heap) goes out of line in one branch.
 */
HAK_FASTPATH void __hak_free(void *p)
{
	uintptr_t a = (uintptr_t)p;
	hak_tc_tls *t = __hak_tc_tls();
	uintptr_t key, ix;

	/*
	 * The entry's owner byte xor this thread's tag byte: zero exactly for
	 * a block of this thread's heap (entries of other pages are 0, tags
	 * 1..254, 0xff without a heap), and then the entry is the bin index.
	 * One XOR into the byte and its flag (the full-width XOR took a CMP
	 * more); out of the map's range goes out before any entry is read.
	 */
	if (unlikely(!__hak_pm_load(a, &ix, &key)))
		goto slow;
	arch_tls_ix_reg_free(ix);
	if (unlikely(arch_tls_xor_byte1_ne(&ix, (uintptr_t)t, HAK_TC_TAGB_OFF))) {
slow:
		__hak_free_slow(p, ix);
		return;
	}
	arch_tls_ix_reg_free(ix);
	__hak_tcache_push_ix(t, p, __hak_block_ix(a, ix), key);
}

void *__hak_calloc(size_t n, size_t size);
void *__hak_realloc(void *p, size_t n);
void *__hak_reallocarray(void *p, size_t n, size_t size);
int __hak_posix_memalign(void **out, size_t align, size_t n);
void *__hak_aligned_alloc(size_t align, size_t n);
void *__hak_memalign(size_t align, size_t n);
void *__hak_valloc(size_t n);
void *__hak_pvalloc(size_t n);
size_t __hak_usable_size(const void *p);
void __hak_free_sized(void *p, size_t n);
void __hak_free_aligned_sized(void *p, size_t align, size_t n);
int __hak_trim(size_t pad);

#endif /* HAK_ALLOC_H */
