/* SPDX-License-Identifier: MIT */
/*
 * Superslabs: 2 MiB-aligned regions of 32 pages of 64 KiB. A slab is a run
 * of 1, 2 or 4 pages serving one size class. The superslab header (the
 * slab descriptors and the page bitmaps) sits at the start of page 0, whose
 * blocks start HAK_SS_HDR bytes in.
 *
 * Ownership registry: __hak_ssreg.map has one byte per 2 MiB of the user
 * address space (HAK_VA_BITS, 47 bits on x86_64: asm/processor.h):
 * HAK_SSMAP_SLAB for a live superslab, HAK_SSMAP_L25 for a region of the
 * L2.5 pool box, 0 for anything else. Lookup is one shift and
 * one load and never touches the pointer's own memory, so a foreign pointer
 * is recognised without reading through it.
 *
 * page_class[i] repeats the class of page i, and page_owner[i] the tag of
 * the heap that owns it (1..255, 0 for a free page), in a line of their own
 * that only changes when a slab is handed out or freed, so the free fast
 * path reads a line no thread writes while it has live blocks.
 *
 * Descriptors: slabs[i] describes page i. For a multi-page slab, the first
 * page's descriptor is the slab; the others carry only the class (for the
 * free fast path) and head_off (distance back to the first page). A free
 * page has class HAK_CLASS_NONE, whose thread-cache bin never accepts a
 * block, so a stray free of it falls to the slow path.
 *
 * Who touches what:
 *   free, carved, used, partial links: the owning heap's thread only;
 *   remote: any thread (lock-free push, owner takes all with xchg);
 *   pending_next: the remote pusher that made remote non-empty;
 *   owner, class, capacity: written under ss_lock when the span is handed
 *     out, stable until the span is freed (which needs used == 0, so no
 *     other thread holds a block of it);
 *   free_mask, dirty_mask, heap_tag, superslab list: ss_lock.
 *
 * One heap per superslab: heap_tag is the heap its first slab went to
 * (cleared when its last page comes back), and its free pages go to that
 * heap, so the header's descriptors, written at every refill by the owner
 * and at every remote push by its freers, and the superslab's page-map
 * line are written from one thread's core (producer-consumer at 2 pairs:
 * 1.27 times mimalloc's CPU with the heaps' slabs interleaved, 1.0 apart;
 * Documentation/design.md, "Two heaps in one superslab"). Another heap
 * takes its resident (dirty) free pages before it touches new ones, and
 * its clean ones only when no superslab can be mapped (ss_pick).
 */
#ifndef HAK_SUPERSLAB_H
#define HAK_SUPERSLAB_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <hak/compiler.h>
#include <asm/tls.h>
#include <asm/atomic.h>
#include <asm/processor.h>
#include "size_class.h"
#include "boxes/hardened/hardened.h"

#define HAK_SS_SHIFT		21
#define HAK_SS_SIZE		(1UL << HAK_SS_SHIFT)
#define HAK_PAGE_SHIFT		16
#define HAK_PAGE_SIZE		(1UL << HAK_PAGE_SHIFT)
#define HAK_SS_PAGES		(HAK_SS_SIZE / HAK_PAGE_SIZE)
#define HAK_SS_HDR		4096UL
/* Every slab's first block is aligned to this; see __hak_class_for_align. */
#define HAK_SLAB_ALIGN_MAX	HAK_SS_HDR
/*
 * A class's blocks are aligned to the lowest set bit of its stride up to
 * this (its boundary mask, lib/size_class.c; __hak_slab_first_off): half a
 * 64 KiB page. With the hardened box's slab guards (classes from 10 KiB,
 * whose blocks end at the guard) 4 KiB, as for every class before rv36.
 */
#define HAK_BLOCK_ALIGN_MAX	(hak_hd_on() ? HAK_SLAB_ALIGN_MAX : HAK_PAGE_SIZE / 2)
/* The address space the registry and the page map cover (asm/processor.h). */
#define HAK_VA_BITS		ARCH_VA_BITS
#define HAK_SSMAP_SIZE		(1UL << (HAK_VA_BITS - HAK_SS_SHIFT))
#define HAK_SSMAP_SLAB		1
#define HAK_SSMAP_L25		2

struct hak_heap;

/* Slab flags (owner thread only). */
#define HAK_SLAB_PARTIAL	0x1	/* on the heap's partial list */
#define HAK_SLAB_SCANNED	0x2	/* page-purge scan done, no change since */
#define HAK_SLAB_IDLE1		0x4	/* no change since the last purge pass */
#define HAK_SLAB_IDLE_MASK	HAK_SLAB_IDLE1
#define HAK_SLAB_TAIL_PURGED	0x10	/* its never-carved pages were purged */
#define HAK_SLAB_GUARDED	0x20	/* its last 4 KiB is a guard page (hardened) */

struct hak_slab {
	void *free;			/* local free list */
	uint64_t remote;		/* remote-free stack, packed (heap.c); atomic */
	struct hak_heap *owner;
	struct hak_slab *next;		/* heap partial list */
	struct hak_slab *prev;
	struct hak_slab *pending_next;	/* heap pending stack; atomic push */
	uint32_t used;			/* blocks handed out and not yet back */
	uint32_t carved;		/* blocks cut from the bump area so far */
	uint32_t capacity;		/* blocks in the slab */
	uint8_t class_idx;		/* HAK_CLASS_NONE: free page */
	uint8_t flags;
	uint8_t span;			/* pages in this slab */
	uint8_t head_off;		/* pages back to the slab's first page */
};

struct hak_superslab {
	struct hak_slab slabs[HAK_SS_PAGES];	/* first: lookup is base + index */
	uint8_t page_class[HAK_SS_PAGES];	/* read by the free fast path */
	uint8_t page_owner[HAK_SS_PAGES];	/* owning heap's tag, same line */
	uint32_t magic;
	uint32_t free_mask;		/* pages not in any slab */
	uint32_t dirty_mask;		/* free pages that may be resident */
	uint32_t huge;			/* hugepage box state (HAK_HUGE_*), ss_lock */
	uint32_t huge_ms;		/* hugepage box: dense since (ms), ss_lock */
	uint32_t heap_tag;		/* the heap its slabs serve, 0: none; ss_lock */
	struct hak_superslab *huge_next;	/* hugepage box: pending list, ss_lock */
	struct hak_superslab *next;	/* global list, ss_lock */
	struct hak_superslab *prev;
	struct hak_superslab *dnext;	/* its tag's list of those with resident free pages, ss_lock */
	struct hak_superslab *dprev;
	uint32_t dirty_stamp[HAK_SS_PAGES];	/* ms a free page went dirty, ss_lock */
	/*
	 * Per 64 KiB page in a slab, the 4 KiB pages purged inside the live
	 * slab (bit k: page k); the blocks that overlap them are free and
	 * "parked" off the free list (lib/heap.c). Owner thread only.
	 */
	uint16_t page_purged[HAK_SS_PAGES];
};

#define HAK_SS_MAGIC		0x68616b53u	/* "hakS" */

HAK_BUILD_BUG_ON(sizeof(struct hak_slab) != 64);
HAK_BUILD_BUG_ON(sizeof(struct hak_superslab) > HAK_SS_HDR);

/*
 * The registry's bytes are an anonymous read-only mapping of
 * HAK_SSMAP_SIZE bytes made at the first registration, not an array in
 * the library's .bss: a conservative collector scans every loaded
 * object's writable segments as roots and sizes its heap by them (Boehm
 * GC lets a third of its roots' size be allocated between collections),
 * and 64 MiB of .bss grew Guile's heap by about 25 MB
 * (Documentation/design.md, "The registry out of .bss"). lim is 0 until
 * map exists, then HAK_SSMAP_SIZE, stored after map with release: a
 * lookup reads lim with acquire (one CMP with it as operand, as the
 * immediate was) and takes map (one MOV, as the LEA of the array's
 * address was), so a lookup before the first registration reads 0.
 */
/* a line of its own: every free reads it; purge passes write the pool's flags that sat beside it */
struct hak_ssreg {
	uint8_t *map;
	unsigned long lim;
} __aligned(64);

extern HAK_HIDDEN struct hak_ssreg __hak_ssreg;

/* Registry kind of a's 2 MiB region (0: not hakmem's). Never reads *a. */
static __always_inline unsigned __hak_ssmap_kind(uintptr_t a)
{
	uintptr_t i = a >> HAK_SS_SHIFT;

	if (!arch_below_acquire(i, &__hak_ssreg.lim))
		return 0;
	return __atomic_load_n(&__hak_ssreg.map, __ATOMIC_RELAXED)[i];
}

/* Is a inside a live superslab? Never reads *a. */
static __always_inline bool __hak_ss_owns(uintptr_t a)
{
	return __hak_ssmap_kind(a) == HAK_SSMAP_SLAB;
}

/*
 * Make region's registry byte writable: the registry is read-only (it
 * would cost 64 MiB of commit charge) but for the granules opened here,
 * each the first time a region in it is registered (superslab.c). false
 * with errno ENOMEM when the kernel refuses (the commit limit), or when
 * the region lies above the HAK_VA_BITS the registry covers (one line on
 * stderr): the region must not be used then.
 */
bool __hak_ssmap_open(uintptr_t region) __must_check;
/*
 * Register (kind != 0) or unregister a 2 MiB-aligned region, opened
 * (__hak_ssmap_open) before its first registration.
 */
void __hak_ssmap_set(uintptr_t region, unsigned kind);
/*
 * Resident bytes of every 2 MiB region registered as kind (mincore, for
 * the statistics: lib/stats.c). Reads the registry without a lock: a
 * region registered or unregistered meanwhile may count or not.
 */
struct hak_os_rss;
size_t __hak_ssmap_resident(struct hak_os_rss *r, unsigned kind);

/*
 * Issue 13's double- and invalid-free checks on the fast paths (the
 * boundary mask and the free mark). Not a configuration option: the
 * checks are always on; KCFLAGS=-DHAK_FREE_CHECKS=0 builds the same paths
 * without them only to measure what they cost (Documentation/bad-input.md).
 * That build drops the mark's test on cross-thread frees too: its malloc
 * no longer clears the mark, so the test would park live blocks as
 * suspects and make the base slower, not faster (lib/heap.c).
 */
#ifndef HAK_FREE_CHECKS
#define HAK_FREE_CHECKS	1
#endif

/*
 * The page map: one 16-bit entry per 64 KiB page of the HAK_VA_BITS address
 * space (4 GiB at 47 bits, 8 at 48, reserved read-only without swap
 * accounting, mapped with the first superslab; only touched pages cost
 * memory, one per 128 MiB of superslabs, and only the granules made
 * writable cost commit charge: superslab.c, "Commit charge"). The entry of a page in a live slab of class c
 * owned by the heap tagged t is t << 8 | 4 * c, 0 for any other page, so
 * the free fast path gets ownership proof, owner tag and bin index in one
 * load and never reads the pointer's own memory for it: entry ^
 * __hak_tc.tagx is at most HAK_PM_IX_MAX only for a block of a slab of
 * this thread's heap (tags are never 0; tagx of a thread without a heap
 * is above every entry). Written under ss_lock with the page's class and
 * owner lines; lim is 0 until the map exists (every free goes the slow
 * way, which needs no map), or if it could not be reserved (or was not,
 * under an RLIMIT_AS or RLIMIT_DATA below HAK_PM_LIMIT_MIN) (map is then
 * a dummy, never indexed: it is also the free mark, __hak_free_key).
 */
#define HAK_PM_SHIFT		HAK_PAGE_SHIFT
#define HAK_PM_ENTRIES		(1UL << (HAK_VA_BITS - HAK_PM_SHIFT))
/*
 * No map under a soft RLIMIT_AS or RLIMIT_DATA below this (64 GiB): its
 * 4 GiB would be a sixteenth or more of what the program may map. Above it
 * (or with no limit) the fast free is worth the 4 GiB: without the map a
 * malloc/free pair of 16-112 B costs 1.45x (mf loop, task-clock medians).
 */
#define HAK_PM_LIMIT_MIN	(16 * HAK_PM_ENTRIES * sizeof(uint16_t))
#define HAK_PM_IX_MAX		(4 * (HAK_NCLASS - 1))
#define HAK_TAGX(tag)		((uint32_t)(tag) << 8)
/* Every address bit from HAK_VA_BITS up: a bin's mask has them (tcache.h). */
#define HAK_MASK_HIGH		(~((1UL << HAK_VA_BITS) - 1))

struct hak_pagemap {
	uint16_t *map;
	unsigned long lim;	/* entries in map; 0: no map */
	unsigned long mask;	/* index mask (fixed or wrapped map), 0 without the map */
};

extern HAK_HIDDEN struct hak_pagemap __hak_pm;
/*
 * The map's address before the map exists or when it could not be
 * reserved: one entry, 0 for good (superslab.c), so that a wrapped index
 * (below) of 0 reads it. Also the free key then (no block exists before
 * the map, and none is marked with it after a failed reservation but by
 * design: every free takes the slow path).
 */
extern HAK_HIDDEN uint16_t __hak_pm_none;

/*
 * A soft RLIMIT_AS lowered under HAK_PM_LIMIT_MIN after the map was
 * reserved (the program allocated first): give the map up, so that its
 * 4 GiB do not count against the program's limit. mask and lim go to 0
 * (every free takes the slow path from then on) and all of the map is
 * unmapped but what a free racing with it may still read (superslab.c).
 * true when it was given up now; errno kept. Called by the interposed
 * setrlimit and prlimit (interpose.c) and before a retry of a refused
 * mapping (__hak_purge_for_retry). __hak_pm_drops counts them.
 */
bool __hak_pm_fit_limit(void);
unsigned long __hak_pm_drops(void);

/*
 * The fixed page map (CONFIG_HAK_PM_FIXED: x86_64, not sanitized, neither
 * the hardened nor the header box): the map lives at HAK_PM_FIXED, its
 * first page reserved when the library is relocated, before any of its
 * code runs (pm_fixed_resolve, the resolver of an IRELATIVE relocation in
 * alloc.c), the rest at the first superslab (pm_init), and the free fast
 * path knows its address: the map's base is a 32-bit displacement and the
 * free key an immediate (no MOV of the map's address). The range check
 * becomes an AND of the index with __hak_pm.mask (2^31 - 1 once the map
 * covers every index, 0 before), the index taken from the pointer with one SHLD (the
 * copy and the shift were two). A pointer at or above 2^47 wraps onto
 * some page; the bin's boundary mask (HAK_MASK_HIGH) refuses it in the
 * same TEST before anything reads or writes through it. 3 of free's 20
 * instructions went; against the wrapped movable map below, which took
 * 2 of them since, 1 (the MOV of the map's address): 17 against 18
 * (Documentation/design.md, "Fast-path cost").
 *
 * Address: below 2^31 (a displacement and an immediate are 32 bits,
 * sign-extended), above valgrind's tool (0x58000000) and rr's page
 * (0x70000000), above a non-PIE executable and its brk (0x400000 up):
 * [0x7fff0000, 0x17fff0000). When the rest cannot be reserved there, or
 * RLIMIT_AS or RLIMIT_DATA is under HAK_PM_LIMIT_MIN at the first
 * superslab (the map would take 4 GiB of it), or the map was given up
 * since (__hak_pm_fit_limit), its first page stays, and mask is 0: every index is 0, whose entry
 * (addresses below 64 KiB) is 0 for good, so every free takes the slow
 * path, which needs no map. When even that page is taken by another copy
 * of hakmem (its signature is in the page before the map), the same holds
 * (its entry 0 is 0 for good); by anything else, the library cannot run
 * and says so. The hardened box keeps its map at a random address.
 */
#if defined(ARCH_PM_FIXED) && !defined(__CHECKER__) && IS_ENABLED(CONFIG_HAK_PM_FIXED) && \
    !IS_ENABLED(CONFIG_HAK_HARDENED) && !IS_ENABLED(CONFIG_HAK_HEADER_CLASSIDX)
#define HAK_PM_FIXED		0x7fff0000UL
#define HAK_PM_FIXED_SIG	0x70614d656761506bUL	/* "kPageMap" */

/*
 * 0: not tried; 3: its first page only, the rest to come at the first
 * superslab (ss_lock); 1: the map is at HAK_PM_FIXED; 2: one page only,
 * for good (lib/alloc.c, lib/superslab.c pm_init).
 */
extern HAK_HIDDEN int __hak_pm_fixed;
#endif

/*
 * The wrapped movable map (x86_64 where the map is not fixed: the hardened
 * box, CONFIG_HAK_PM_FIXED=n; not the measurement builds without the free
 * checks, nor the header box, whose free reads the block's header before
 * any mask could refuse a wrapped pointer): the fixed map's index (SHLD, AND with mask)
 * with the movable map's address in a register (a MOV; it is the free key
 * too), where the range check took a copy, a CMP and a JAE: 4 instructions
 * to the entry instead of 6. mask is 0 until the map exists (published
 * after map, with release) and map then __hak_pm_none, whose one entry is
 * 0: every free before the map, or without one, reads it and takes the
 * slow path. The map covers every index from the start (HAK_PM_ENTRIES);
 * a pointer at or above 2^47 wraps onto some page and the bin's boundary
 * mask (HAK_MASK_HIGH) refuses it before anything reads or writes through
 * it, as with the fixed map.
 */
#if defined(ARCH_PM_FIXED) && !defined(__CHECKER__) && !defined(HAK_PM_FIXED) && \
    HAK_FREE_CHECKS && !IS_ENABLED(CONFIG_HAK_HEADER_CLASSIDX)
#define HAK_PM_WRAP		1
#endif

/*
 * Page-map entry of a, or HAK_PM_OUT when the map does not cover a (no
 * map yet, or a at or above 2^HAK_VA_BITS); *key is the map's address (see
 * __hak_free_key), loaded for the entry anyway. Never reads *a.
 */
#define HAK_PM_OUT		0xffffffffu

static __always_inline uint32_t __hak_pm_lookup(uintptr_t a, uintptr_t *key)
{
	uintptr_t i = a >> HAK_PM_SHIFT;
	uint16_t *map;

	/*
	 * lim is published after map (release): read it with acquire, then
	 * map is there. arch_below_acquire is one CMP with lim as operand
	 * (a plain read would be a data race with the first superslab; an
	 * __atomic one costs a MOV more). The map pointer: the builtin, so
	 * the entry's MOVZWL can index it.
	 */
	if (unlikely(!arch_below_acquire(i, &__hak_pm.lim))) {
		*key = 0;
		return HAK_PM_OUT;
	}
	map = __atomic_load_n(&__hak_pm.map, __ATOMIC_RELAXED);
	*key = (uintptr_t)map;
	return __atomic_load_n(&map[i], __ATOMIC_RELAXED);
}

/*
 * The free fast path's form: false when the map does not cover a (*e is
 * then 0); else *e is a's entry and *key the map's address. The caller
 * branches on the range itself, so no out-of-range entry value is ever
 * compared.
 */
static __always_inline bool __hak_pm_load(uintptr_t a, uintptr_t *e, uintptr_t *key)
{
	uintptr_t i = a >> HAK_PM_SHIFT;
	uint16_t *map;

#ifdef HAK_PM_FIXED
	/*
	 * The fixed map (below): with the checks, the index wraps (the AND
	 * with mask, no branch) and the caller's boundary mask refuses a
	 * pointer above 2^47 before it reads or writes through it; without
	 * them (measurement builds) there is no such mask: a CMP with mask.
	 */
	map = (uint16_t *)HAK_PM_FIXED;
	*key = HAK_PM_FIXED;
	if (HAK_FREE_CHECKS) {
		i = arch_and_acquire(arch_shr_dirty(a, HAK_PM_SHIFT), &__hak_pm.mask);
	} else if (unlikely(!arch_below_acquire(i, &__hak_pm.lim))) {
		*e = 0;
		return false;
	}
	*e = __atomic_load_n(&map[i], __ATOMIC_RELAXED);
	return true;
#endif
#ifdef HAK_PM_WRAP
	/* mask read with acquire first: a mask not 0 comes with its map */
	i = arch_and_acquire(arch_shr_dirty(a, HAK_PM_SHIFT), &__hak_pm.mask);
	map = __atomic_load_n(&__hak_pm.map, __ATOMIC_RELAXED);
	*key = (uintptr_t)map;
	*e = __atomic_load_n(&map[i], __ATOMIC_RELAXED);
	return true;
#endif

	if (unlikely(!arch_below_acquire(i, &__hak_pm.lim))) {
		*e = 0;		/* free's slow path: no entry (lib/alloc.h) */
		*key = 0;
		return false;
	}
	map = __atomic_load_n(&__hak_pm.map, __ATOMIC_RELAXED);
	*key = (uintptr_t)map;
	*e = __atomic_load_n(&map[i], __ATOMIC_RELAXED);
	return true;
}

static __always_inline uint32_t __hak_pm_entry(uintptr_t a)
{
	uintptr_t key;

	return __hak_pm_lookup(a, &key);
}

/*
 * The free mark (lib/tcache.h): the page map's address, the same for every
 * thread and class, so the free fast path has it in a register (the base
 * of the entry's load) and needs no load for it. Set before the first
 * superslab (a dummy address of our own when the map could not be
 * reserved), so never 0 while any block exists; no program data holds it
 * but by chance (the map's address is nowhere in the program's reach).
 */
static __always_inline uintptr_t __hak_free_key(void)
{
#ifdef HAK_PM_FIXED
	return HAK_PM_FIXED;	/* even with one page there: never 0 */
#else
	return (uintptr_t)__atomic_load_n(&__hak_pm.map, __ATOMIC_RELAXED);
#endif
}


/* Tag of the heap owning the page holding a (0 for a free page). */
static __always_inline unsigned __hak_page_owner(uintptr_t a)
{
	const struct hak_superslab *ss =
		(const struct hak_superslab *)(a & ~(HAK_SS_SIZE - 1));

	return ss->page_owner[(a >> HAK_PAGE_SHIFT) & (HAK_SS_PAGES - 1)];
}

/*
 * Is a, freed as a block whose class has block-boundary mask mask, off
 * the class's block boundaries? With the header box, the block's check
 * word says it instead (exact, and the header's class byte of an interior
 * pointer is program data).
 */
static __always_inline bool __hak_off_boundary(uintptr_t a, uintptr_t mask)
{
	if (HAK_HDR_SIZE)
		return hak_hdr_of((const void *)a)->check != hak_hdr_check((const void *)a);
	return (a & mask) != 0;
}

/* Class of the page holding a (HAK_CLASS_NONE for a free page). */
static __always_inline unsigned __hak_page_class(uintptr_t a)
{
	const struct hak_superslab *ss =
		(const struct hak_superslab *)(a & ~(HAK_SS_SIZE - 1));

	return ss->page_class[(a >> HAK_PAGE_SHIFT) & (HAK_SS_PAGES - 1)];
}

static __always_inline struct hak_superslab *__hak_ss_of(uintptr_t a)
{
	return (struct hak_superslab *)(a & ~(HAK_SS_SIZE - 1));
}

/* The descriptor of the page holding a (which may be a non-head page). */
static __always_inline struct hak_slab *__hak_page_of(uintptr_t a)
{
	return (struct hak_slab *)((a & ~(HAK_SS_SIZE - 1)) |
		((a >> (HAK_PAGE_SHIFT - 6)) & ((HAK_SS_PAGES - 1) << 6)));
}

static __always_inline struct hak_slab *__hak_slab_head(struct hak_slab *pg)
{
	return pg - pg->head_off;
}

static inline unsigned __hak_slab_index(const struct hak_slab *s)
{
	return ((uintptr_t)s & (HAK_SS_SIZE - 1)) / sizeof(struct hak_slab);
}

static inline uintptr_t __hak_slab_end(const struct hak_slab *s);

/*
 * Where a slab that is a superslab's first page (its header's) starts its
 * blocks of class c: past the header, at the class's block alignment (its
 * boundary mask + 1), so the blocks of every slab are aligned to it (the
 * others start on a 64 KiB page) and the free path's mask test sees every
 * interior pointer of a class whose stride is a power of two: p + 4096 in
 * an 8 KiB block passed it when the mask stopped at 4 KiB (rv36). No slab
 * holds a block less: 8, 16, 24 and 32 KiB blocks, 7, 7, 10 and 7 to a
 * first-page slab with the header alone before them or this offset.
 */
static __always_inline uintptr_t __hak_slab_first_off(unsigned c)
{
	uintptr_t a = c < HAK_NCLASS ? (uintptr_t)__hak_class_mask[c] + 1 : 0;

	return a > HAK_SS_HDR ? a : HAK_SS_HDR;
}

/*
 * First byte of the slab's block area (a block header, with that box).
 * A slab that ends in a guard page (hardened box, large classes) starts
 * its blocks as late as a 4 KiB boundary allows, so its last block ends
 * at the guard (or within 4 KiB of it with block headers) instead of
 * leaving the slab's slack between them; with the box off the branch
 * folds away.
 */
static inline uintptr_t __hak_slab_start(const struct hak_slab *s)
{
	unsigned i = __hak_slab_index(s), c = s->class_idx;
	uintptr_t base = (uintptr_t)s & ~(HAK_SS_SIZE - 1);
	size_t g;

	if (hak_hd_on() && c < HAK_NCLASS && (g = hak_hd_slab_guard(__hak_class_size[c])))
		return HAK_ALIGN_DOWN(__hak_slab_end(s) - g -
				      (uintptr_t)s->capacity * __hak_class_stride(c),
				      (uintptr_t)HAK_SLAB_ALIGN_MAX);
	return base + ((uintptr_t)i << HAK_PAGE_SHIFT) + (i == 0 ? __hak_slab_first_off(c) : 0);
}

/* The address of block i of slab s, as handed to the program. */
static inline uintptr_t __hak_slab_block(const struct hak_slab *s, uint32_t i)
{
	return __hak_slab_start(s) + HAK_HDR_SIZE + (uintptr_t)i * __hak_class_stride(s->class_idx);
}

static inline uintptr_t __hak_slab_end(const struct hak_slab *s)
{
	uintptr_t base = (uintptr_t)s & ~(HAK_SS_SIZE - 1);

	return base + ((uintptr_t)(__hak_slab_index(s) + s->span) << HAK_PAGE_SHIFT);
}

/*
 * Is a the address of one of slab s's blocks (a in s's pages)? Exact,
 * where the free fast path's boundary mask sees only the largest power
 * of two dividing the stride: p + 16 inside a 48-byte block passes the
 * mask. For the slow paths that answer about a pointer (usable size,
 * realloc), the header box's aligned-block slot (__hak_hdr_slot) and the
 * fail-fast box; one 32-bit division (a slab is at most a superslab, so
 * the offset fits).
 */
static inline bool __hak_slab_is_block(const struct hak_slab *s, uintptr_t a)
{
	uintptr_t start = __hak_slab_start(s) + HAK_HDR_SIZE;
	uint32_t stride = (uint32_t)__hak_class_stride(s->class_idx), off, i;

	if (a < start || a - start >= HAK_SS_SIZE)
		return false;
	off = (uint32_t)(a - start);
	i = off / stride;
	return off == i * stride && i < s->capacity;
}

/*
 * Take a slab of class c for owner (tagged tag); NULL when no superslab
 * could be mapped, errno unchanged (the refill sets ENOMEM if it gives up).
 */
struct hak_slab *__hak_span_alloc(struct hak_heap *owner, unsigned tag,
				  unsigned c) __must_check;
/*
 * Reformat s, an empty slab of its heap's (used == 0, no remote blocks,
 * no guard page), for class c of the same span, without giving its pages
 * back: the heap's spare slabs (lib/heap.c, spare_take).
 */
void __hak_span_reclass(struct hak_slab *s, unsigned tag, unsigned c);
/* Give an empty slab (used == 0, no remote blocks) back to its superslab. */
void __hak_span_free(struct hak_slab *s);
/*
 * The same without waiting for the superslab lock: false, s untouched and
 * still its heap's, when another thread holds it (the decay pass's scan,
 * lib/heap.c, slab_give_back).
 */
bool __hak_span_free_try(struct hak_slab *s) __must_check;

/*
 * Return free pages to the OS: all of them when all is true, else only as
 * many as needed to get under the dirty limit. Also unmaps superslabs that
 * are wholly free beyond the few kept for reuse. Returns bytes released.
 */
size_t __hak_ss_release(bool all);
/*
 * Bytes the dirty limit purged (__hak_ss_release(false) and the frees that
 * crossed it) since the last call: the decay pass's refault feedback
 * watches them as it watches its own purges (lib/purge.c, learn()).
 */
size_t __hak_ss_take_bound_purged(void);
void __hak_ss_set_dirty_max(size_t bytes);
/*
 * Time-based decay: purge the free pages that have been dirty for at least
 * delay ms at time now (__hak_now_ms), and unmap wholly free superslabs
 * beyond the few kept. Returns bytes released.
 */
size_t __hak_ss_decay(unsigned now, unsigned delay);

/*
 * Free pages inside a live slab of ss could be purged; cold: the slab's
 * heap has been idle for the delay, or the slab is mostly free. The
 * hugepage box may refuse (false: ss keeps its 2 MiB page), else it
 * withdraws its advice first, or khugepaged would make the purged range
 * resident again. Always true without the box.
 */
bool __hak_ss_before_purge(struct hak_superslab *ss, bool cold) __must_check;

struct hak_ss_stats {
	size_t superslabs;	/* live superslabs */
	size_t pages_used;	/* pages in slabs */
	size_t pages_dirty;	/* free pages possibly resident */
	size_t purged_bytes;	/* total bytes given back with madvise */
};
void __hak_ss_stats(struct hak_ss_stats *st);

bool __hak_ss_fork_prepare(void);
void __hak_ss_fork_parent(void);
void __hak_ss_fork_child(void);

#endif /* HAK_SUPERSLAB_H */
