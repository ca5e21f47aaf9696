/* SPDX-License-Identifier: MIT */
/*
 * Per-thread caches: one LIFO list of free blocks per size class, in
 * initial-exec TLS, which the fast paths address relative to the thread
 * pointer (asm/tls.h). Blocks link through their first word.
 *
 * Invariants (this thread only, no atomics):
 *   bins[c].cap - bins[c].room is the length of bins[c].head's list
 *   (__hak_tbin_count); room <= cap, and room is "minus one" only inside
 *   the overflow slow path;
 *   bins[HAK_CLASS_NONE] is always empty with cap 0;
 *   tagx is HAK_TAGX(tag) with a heap, HAK_TAGX_NONE without, so a free
 *   on a thread without a heap never matches the page map (lib/superslab.h)
 *   and takes the slow path, which attaches a heap; a new thread's bins
 *   are empty, so its first malloc refills (and attaches) too.
 *
 * Free marks (double-free detection, every variant): a block in a bin, in
 * its slab's free list or in its slab's remote list holds, in its second
 * word, the free key (__hak_free_key(): the page map's address, one value
 * for the process, which the free fast path holds in a register as the
 * base of its page-map load); a block handed out has that word cleared.
 * A free that finds the key asks the slow path, which reports only a block
 * it finds on a free list: __hak_free_confirm() for a block of this
 * thread's heap (this thread's bin, the slab's free and remote lists),
 * the owner (parked, lib/heap.c) for another heap's, an exited thread's
 * cache kept in its pooled heap included. One value for all, so a block
 * keeps a valid mark when its heap passes to another thread at thread
 * exit. So a program that stores the same value is never reported. A
 * freed pointer must also pass the class's block-boundary mask
 * (bins[c].mask: unaligned and most interior pointers).
 *
 * Fast-path budget (x86_64, gcc 12 -O2, objdump to ret): malloc hit 12
 * up to 1 KiB (GOT offset, size check, the direct size table size_ix,
 * pop, room, mark clear; 14 above 1 KiB); free hit 17 on the fixed page
 * map (index by SHLD and AND, entry, owner-byte xor and its branch,
 * boundary mask, mark test, room, push, mark store; superslab.h), 20 on
 * the movable one where it cannot wrap (header box, sanitizers, other
 * architectures: range check, map address), 18 where it wraps (x86_64
 * without the fixed map: hardened, or CONFIG_HAK_PM_FIXED=n; the map
 * address; superslab.h, HAK_PM_WRAP).
 * Hardened: malloc 16 (the secret's load from the thread's cache, the
 * decode's two XORs, the bin mask's TEST and JNE; the link's load is an
 * XOR's operand), free 20 (the encode's two XORs). The
 * bin is addressed in each access's operand, %fs:off(t, ix, 8), with no
 * LEA of its own (__hak_tbin_at). Keep them there: the figures are in Documentation/design.md and
 * checked by tools/boxcost.sh.
 */
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <hak/compiler.h>
#include "size_class.h"
#include "superslab.h"
#include <asm/atomic.h>
#include <asm/processor.h>
#include <asm/tls.h>
#include "boxes/failfast/failfast.h"
#include "boxes/hardened/hardened.h"
#include "boxes/heapprof/heapprof.h"
#include "boxes/valgrind/valgrind_hooks.h"

struct hak_heap;

/*
 * One bin, 32 bytes, addressed by the fast paths as 8 * ix from the
 * tcache's TLS offset, ix = 4 * class (the value the size table and the
 * page map hand out), so no shift or class table sits between the lookup
 * and the bin:
 *   head  the LIFO list;
 *   mask  the class's block-boundary mask (__hak_class_mask) with every
 *         bit from HAK_VA_BITS up set (HAK_MASK_HIGH), copied here at
 *         attach so the free check needs no table and no superslab line;
 *         the high bits make the same TEST refuse a pointer at or above
 *         2^47, which the fixed page map's index wraps (superslab.h);
 *   room  cap - blocks held: the push takes one (SUB, borrow = full), the
 *         pop gives one back (ADD); "all ones" (count cap + 1) only inside
 *         the overflow slow path;
 *   cap   the capacity (the slow paths and the adaptive box);
 *   spare the overflow slow path's count of blocks spilled since it last
 *         counted an overflow (heap.c, __hak_tcache_overflow; the free
 *         mark is one value for all bins, tcache.h).
 */
struct hak_tbin {
	void *head;
	uintptr_t mask;
	unsigned long room;
	uint32_t cap;
	uint32_t spare;
};

/* Thread state, in the tcache so the slow path reads one TLS block. */
enum hak_tstate {
	HAK_T_NEW = 0,		/* no heap yet */
	HAK_T_LIVE,		/* heap attached */
	HAK_T_EXITING,		/* heap detached by the thread-exit destructor */
	HAK_T_LATE,		/* heap attached for one slow path after that */
};

HAK_BUILD_BUG_ON(sizeof(struct hak_tbin) != 32);	/* ix * 8, ix = 4 * class */

struct hak_tcache {
	struct hak_tbin bins[HAK_NCLASS + 1];	/* first: bins[c] is tc + 32 * c */
	struct hak_heap *heap;
	uint32_t state;
	uint32_t exits;		/* times the exit destructor ran for this thread */
	uint32_t tag;		/* the attached heap's tag, 0 without a heap */
	/*
	 * The free fast path's key: tag << 8 with a heap, HAK_TAGX_NONE
	 * without; a page-map entry (tag << 8 | 4 * class) xor this is the
	 * bin index when the block is ours (lib/superslab.h). Initialised
	 * TLS, so a new thread's key already fails every entry.
	 */
	uint32_t tagx;
	unsigned long prof_left;	/* heap profiler: fast byte budget */
	/*
	 * The hardened box's link secret (hak_hd_secret()), copied at attach
	 * before this thread reads or writes a link, so the pop's decode XORs
	 * it %fs-relative (one instruction, where the global took a MOV more);
	 * 0 with the box off.
	 */
	uintptr_t hd_secret;
	/*
	 * The bin index of a request of n <= HAK_DIRECT_MAX bytes: the first
	 * entries of __hak_size_ix, copied here by the TLS initialiser so
	 * that malloc reads them %fs-relative with the offset it holds
	 * (lib/alloc.h; the const table costs a LEA more). Never written.
	 */
	uint8_t size_ix[HAK_DIRECT_MAX + 1];
	/*
	 * The owner byte of the free fast path's entry (the entry's tag xor
	 * ours, as __hak_free_slow gets it) of a block of the idle owner
	 * this thread caches (__hak_rf_tag, lib/heap.c), HAK_RFX_NONE when
	 * there is none: the slow path pushes such a block after one compare
	 * with this, where undoing the XOR and loading __hak_rf_tag took
	 * nine instructions more on most of the frees of larson's first
	 * generation past the cores. Written only with __hak_rf_tag. Last, in
	 * the padding after size_ix, so no field the fast paths address moves.
	 */
	uint32_t rfx;
};

/*
 * tagx of a thread without a heap: above every 16-bit page-map entry, and
 * its tag byte (bits 8..15) is 0xff, which no heap has (tags are 1..254):
 * the free fast path compares that byte alone (HAK_TC_TAGB_OFF).
 */
#define HAK_TAGX_NONE	0x1ff00u
#define HAK_TAG_MAX	254
/*
 * rfx without a cached idle owner: above every owner byte, so it matches
 * no entry, nor the 0 the slow path gets for a pointer outside the map.
 */
#define HAK_RFX_NONE	0x100u

extern HAK_HIDDEN __thread struct hak_tcache __hak_tc __attribute__((tls_model("initial-exec")));

/*
 * The calling thread's tcache as the fast paths address it: relative to
 * the thread pointer (asm/tls.h), so a bin's fields are one operand each.
 */
typedef struct hak_tcache ARCH_TLS_SEG hak_tc_tls;
typedef struct hak_tbin ARCH_TLS_SEG hak_tbin_tls;

static __always_inline hak_tc_tls *__hak_tc_tls(void)
{
	return (hak_tc_tls *)arch_tls_off(__hak_tc);
}

/*
 * Offset in the tcache of its tag byte (bits 8..15 of tagx): the free
 * fast path XORs it into the page-map entry's owner byte
 * (arch_tls_xor_byte1_ne).
 */
#define HAK_TC_TAGB_OFF	(offsetof(struct hak_tcache, tagx) +		\
			 (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 1 : 2))

/*
 * Bin of index ix = 4 * class of tcache t (__hak_tc_tls(), taken once per
 * entry point: each call is a GOT load the compiler may not merge).
 */
static __always_inline hak_tbin_tls *__hak_tbin_ix(hak_tc_tls *t, uintptr_t ix)
{
	return (hak_tbin_tls *)((uintptr_t)t->bins + ix * 8);
}

/*
 * The same, for one access: ix passes through an empty asm first, so the
 * compiler cannot reuse an earlier t + 8 * ix and folds the sum into the
 * access's own operand (%fs:off(t, ix, 8)) instead of keeping the bin's
 * address in a register, which cost a LEA per fast path.
 */
static __always_inline hak_tbin_tls *__hak_tbin_at(hak_tc_tls *t, uintptr_t *ix)
{
	__asm__("" : "+r"(*ix));
	return __hak_tbin_ix(t, *ix);
}

/* Blocks held by bin b (cap + 1 inside the overflow slow path). */
static __always_inline uint32_t __hak_tbin_count(const struct hak_tbin *b)
{
	return (uint32_t)(b->cap - b->room);
}

static __always_inline void __hak_tbin_set_count(struct hak_tbin *b, uint32_t n)
{
	b->room = (unsigned long)b->cap - n;
}

/* Set bin b's capacity, keeping its count (trim it if it is now over). */
static __always_inline void __hak_tbin_set_cap(struct hak_tbin *b, uint32_t cap)
{
	uint32_t n = __hak_tbin_count(b);

	b->cap = cap;
	__hak_tbin_set_count(b, n);
}

/*
 * Free-list sharding (issue 10 item 1; Documentation/design.md, "size-chain:
 * frees that go home to their slab"): the classes whose stride is at least
 * __hak_shard_min keep a bin of __hak_shard_cap_of() blocks at most; a
 * free past it goes straight onto its slab's free list and a malloc of an
 * empty bin pops one block off the class's first partial slab (heap.c,
 * shard_free / shard_alloc). HAKMEM_SHARD_MIN, HAKMEM_SHARD_CAP; set at a
 * thread's first attach (atomic: lib/heap.c, shard_setup); UINT32_MAX: no
 * class.
 */
extern HAK_HIDDEN uint32_t __hak_shard_min;
extern HAK_HIDDEN uint32_t __hak_shard_cap;
extern HAK_HIDDEN uint32_t __hak_shard_bytes;

static __always_inline bool __hak_sharded_class(unsigned c)
{
	return c < HAK_NCLASS && __hak_class_stride(c) >= arch_load_relaxed(&__hak_shard_min);
}

/*
 * The bin capacity of sharded class c: HAKMEM_SHARD_BYTES of blocks, at
 * least HAKMEM_SHARD_CAP, at most 256.
 */
static inline uint32_t __hak_shard_cap_of(unsigned c)
{
	uint32_t n = arch_load_relaxed(&__hak_shard_bytes) / (uint32_t)__hak_class_stride(c);
	uint32_t least = arch_load_relaxed(&__hak_shard_cap);

	if (n < least)
		n = least;
	return n < 256 ? n : 256;
}

/* Slow paths (heap.c). */
/* The slow paths take the bin index ix = 4 * class (the fast paths' value). */
void *__hak_tcache_refill(uintptr_t ix) __noinline;
void __hak_tcache_overflow(void *p, uintptr_t ix) __noinline;
/* Free of a block whose slab another heap owns (or before attach). */
void __hak_free_remote(void *p, unsigned c) __noinline;
/*
 * The same for block p of bin index ix whose page-map entry the free fast
 * path read and found another heap's (so p < 2^47 or its bin's boundary
 * mask refuses it): the owner's tag and the class come from that entry,
 * as the fast path takes ours, not from the registry and the superslab's
 * page lines (__hak_free_slow, lib/alloc.c).
 */
void __hak_free_home(void *p, uintptr_t ix) __noinline;
/*
 * Free of anything, sorted out from the 2 MiB registry and the superslab's
 * page lines (alloc.c): free's slow path for what the page map does not
 * prove, and __hak_free_home's for whatever its entry does not settle.
 */
void __hak_free_any(void *p) __noinline;
/*
 * p carries this thread's free mark: report it if it is free, else free it
 * (the rest of __hak_tcache_push).
 */
void __hak_free_confirm(void *p, uintptr_t ix) __noinline __cold;
/*
 * realloc or malloc_usable_size (what: the report's words) of small block
 * p of class c whose mark word holds the free key: report it if it is
 * free where this thread can look, else return the class's size, the
 * usable size of a live block (lib/heap.c).
 */
size_t __hak_use_confirm(const void *p, unsigned c, const char *what) __noinline __cold;
/* p fails its class's block-boundary mask: report it and abort. */
void __hak_free_misaligned(void *p, uintptr_t ix) __noreturn __noinline __cold;
/*
 * For boxes: add up to n blocks to bin c / flush bin c down to keep blocks
 * (its newest go home, the older ones stay: heap.c, bin_shed).
 */
uint32_t __hak_tcache_fill(unsigned c, uint32_t n);
void __hak_tcache_trim(unsigned c, uint32_t keep);
/*
 * Class c's capacity as last set: a bin a refill raised past it, until
 * the class's next refill (heap.c, bin_raise), reads as the capacity it
 * returns to then. For the selftests of the sizing boxes.
 */
uint32_t __hak_tcache_cap_set(unsigned c);
/*
 * For boxes: a thread's share of a per-thread budget of bytes, the whole
 * while the threads that allocate (have refilled since their attach; the
 * caller counts) do not outnumber the CPUs by more than one, bytes * cpus
 * / threads past that (heap.c, thread_share).
 */
size_t __hak_tcache_live_share(size_t bytes);
/* For boxes: the same rule's test, past the cores or not (heap.c, past_cores_by). */
bool __hak_tcache_past_cores(void);
/*
 * For boxes: the CPUs this process may run on, counted once by the first
 * thread that attached (heap.c), not the calling thread's own mask, which
 * a program may have narrowed to one CPU.
 */
unsigned __hak_nr_cpus(void);

/*
 * The free-list link in free block p, and setting it: every list of free
 * blocks (bins, slab free lists, remote lists) goes through these. With
 * the hardened box the link is stored encoded and checked when read: a
 * link overwritten by the program (overflow, write after free) is caught
 * before it is followed or handed out. A link must decode to NULL or a
 * 16-byte-aligned address below 2^47: one TEST, where a lookup in the
 * superslab registry cost nine instructions and a branch per link. A
 * value the program wrote decodes to a word it cannot predict (the
 * secret), which passes with odds of 2^-21, and then points nowhere the
 * program chose.
 */
#define HAK_LINK_BAD	(~((1UL << HAK_VA_BITS) - 1) | 15UL)

static __always_inline void *__hak_link(void *p)
{
	void *next = hak_vg_next(p);

	if (hak_hd_on()) {
		uintptr_t v = (uintptr_t)next;

		next = hak_hd_dec(p, v);
		if (unlikely((uintptr_t)next & HAK_LINK_BAD))
			hak_hd_bad_link(p, v);
	}
	return next;
}

/*
 * The same for the head p of the bin at TLS offset t + 8 * ix, on the pop
 * fast path: *next gets the link; true when it is bad (the caller then
 * returns hak_hd_bad_pop(p, *next), a tail call: a call that does not
 * return made GCC set up a stack frame on malloc's direct path). The
 * secret comes from this thread's copy (a %fs-relative load) and
 * the check is the bin's own boundary mask (a TEST with a %fs operand, no
 * MOVABS of HAK_LINK_BAD): every block in the bin is of its class, so a
 * good link passes the class's boundary mask, whose high bits and low
 * four bits cover HAK_LINK_BAD's (so it is as strict for the classes
 * whose stride is an odd multiple of 16 and stricter for the rest: a
 * forged link passes with odds 2^-21 to 2^-28). The header box's blocks
 * sit off the mask's boundary: there the check of __hak_link. The report
 * gets the decoded word, which is live anyway (the stored one, or the
 * secret, would be kept live for it).
 */
static __always_inline bool __hak_tbin_link_bad(hak_tc_tls *t, uintptr_t ix, void *p,
						void **next)
{
	uintptr_t d;

	uintptr_t k;

	if (!hak_hd_on()) {
		*next = hak_vg_next(p);
		return false;
	}
	/*
	 * p ^ secret first (an empty asm keeps GCC from reassociating it):
	 * then the link's load is the last XOR's operand, one XOR after the
	 * load on the pop's chain of dependent loads instead of two, for
	 * the same count (MOV of the secret, XOR, XOR with memory).
	 */
	k = (uintptr_t)p ^ t->hd_secret;
	__asm__("" : "+r"(k));
	*next = hak_vg_next(p);
	d = (uintptr_t)*next ^ k;
	*next = (void *)d;
	return HAK_HDR_SIZE ? (d & HAK_LINK_BAD) != 0 :
	       arch_tls_test_ne(d, &__hak_tbin_at(t, &ix)->mask);
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

/* Block p (class c) was just taken off a bin: clear its mark, tell the boxes. */
static __always_inline void *__hak_tbin_took(void *p, unsigned c)
{
	hak_vg_alloc(p, __hak_class_size[c], false);
	if (HAK_FREE_CHECKS)
		hak_vg_clear_mark(p);
	if (hak_ff_level())
		hak_ff_on_alloc(p, c);
	return p;
}

/* Take the first block p of bin b (class c), which must not be empty. */
static __always_inline void *__hak_tbin_take(struct hak_tbin *b, void *p, unsigned c)
{
	b->head = __hak_link(p);
	b->room++;
	return __hak_tbin_took(p, c);
}

/* Pop a block of bin index ix (4 * class c), or take the refill slow path. */
static __always_inline void *__hak_tcache_pop_ix(hak_tc_tls *t, uintptr_t ix)
{
	void *p = __hak_tbin_at(t, &ix)->head, *next;

	if (unlikely(!p))
		return __hak_tcache_refill(ix);	/* ends in __hak_tbin_take too */
	if (unlikely(__hak_tbin_link_bad(t, ix, p, &next)))
		return hak_hd_bad_pop(p, (uintptr_t)next);
	__hak_tbin_at(t, &ix)->head = next;
	__hak_tbin_at(t, &ix)->room++;
	return __hak_tbin_took(p, (unsigned)(ix / 4));
}

/*
 * A request of n <= HAK_DIRECT_MAX bytes while the heap profiler samples
 * (alloc.c): the profiler set this thread's direct table (size_ix) to the
 * bin that is always empty, so such requests come here for the countdown
 * the fast path does not carry. Ends in tail calls, so the profiler's
 * slow path sees malloc's caller as its return address.
 */
void *__hak_prof_direct(size_t n) __noinline;

/*
 * The pop for malloc's direct table (lib/alloc.h): there ix may be the
 * always-empty bin of HAK_CLASS_NONE (above); that miss goes to the
 * profiler's countdown, every other one refills.
 */
static __always_inline void *__hak_tcache_pop_direct(hak_tc_tls *t, size_t n, uintptr_t ix)
{
	void *p, *next;

	/* (in hardened GCC then put the decoded link in %rsi: two MOVs) */
	if (!hak_hd_on())
		arch_tls_ix_reg(ix);
	p = __hak_tbin_at(t, &ix)->head;

	if (unlikely(!p)) {
		if (HAK_PROF_BUILT && ix == 4 * HAK_CLASS_NONE)
			return __hak_prof_direct(n);
		return __hak_tcache_refill(ix);
	}
	if (unlikely(__hak_tbin_link_bad(t, ix, p, &next)))
		return hak_hd_bad_pop(p, (uintptr_t)next);
	__hak_tbin_at(t, &ix)->head = next;
	__hak_tbin_at(t, &ix)->room++;
	return __hak_tbin_took(p, (unsigned)(ix / 4));
}

static __always_inline void *__hak_tcache_pop(unsigned c)
{
	return __hak_tcache_pop_ix(__hak_tc_tls(), (uintptr_t)c * 4);
}

/*
 * Mark block p free (its bin's mark) and close it for memcheck. Fail-fast
 * level 2 keeps its own mark in that word: ours stays out then.
 */
static __always_inline void __hak_tcache_mark(void *p, uintptr_t mark)
{
	if (HAK_FREE_CHECKS && hak_ff_level() < 2)
		hak_vg_set_mark(p, mark);
	hak_vg_free(p);
}

/*
 * Push a freed block of bin index ix (4 * class c; c may be
 * HAK_CLASS_NONE with the header box: slow path); key is
 * __hak_free_key(), which the free fast path has at hand.
 */
static __always_inline void __hak_tcache_push_ix(hak_tc_tls *t, void *p, uintptr_t ix,
						 uintptr_t key)
{
	unsigned c = (unsigned)(ix / 4);
	uintptr_t mark = HAK_FREE_CHECKS ? key : 0;

	if (HAK_FREE_CHECKS &&
	    unlikely(HAK_HDR_SIZE ? __hak_off_boundary((uintptr_t)p, 0) :
		     arch_tls_test_ne((uintptr_t)p, &__hak_tbin_at(t, &ix)->mask)))
		__hak_free_misaligned(p, ix);
	if (HAK_FREE_CHECKS && unlikely(hak_vg_mark(p) == mark)) {
		__hak_free_confirm(p, ix);
		return;
	}
	if (hak_ff_level())
		hak_ff_on_free(p, c);
	__hak_zero_freed(p, c);
	arch_tls_ix_reg_free(ix);
	if (unlikely(arch_tls_sub_borrows(&__hak_tbin_at(t, &ix)->room, 1))) {
		__hak_tcache_mark(p, mark);
		__hak_tcache_overflow(p, ix);	/* room already taken for p */
		return;
	}
	arch_tls_ix_reg_free(ix);
	__hak_set_link(p, __hak_tbin_at(t, &ix)->head);
	arch_tls_ix_reg_free(ix);
	__hak_tbin_at(t, &ix)->head = p;
	__hak_tcache_mark(p, mark);
}

static __always_inline void __hak_tcache_push(void *p, unsigned c)
{
	__hak_tcache_push_ix(__hak_tc_tls(), p, (uintptr_t)c * 4, __hak_free_key());
}

#endif /* HAK_TCACHE_H */
