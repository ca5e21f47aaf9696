/* SPDX-License-Identifier: MIT */
/*
 * Superslabs: 2 MiB-aligned regions of 32 pages of 64 KiB. A slab is a run
 * of 1, 2 or 4 pages serving one size class. The superslab header (the
 * slab descriptors and the page bitmaps) sits at the start of page 0, whose
 * blocks start HAK_SS_HDR bytes in.
 *
 * Ownership registry: __hak_ssmap has one byte per 2 MiB of the 47-bit user
 * address space: HAK_SSMAP_SLAB for a live superslab, HAK_SSMAP_L25 for a
 * region of the L2.5 pool box, 0 for anything else. Lookup is one shift and
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
 *   free_mask, dirty_mask, superslab list: ss_lock.
 */
#ifndef HAK_SUPERSLAB_H
#define HAK_SUPERSLAB_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <hak/compiler.h>
#include "size_class.h"

#define HAK_SS_SHIFT		21
#define HAK_SS_SIZE		(1UL << HAK_SS_SHIFT)
#define HAK_PAGE_SHIFT		16
#define HAK_PAGE_SIZE		(1UL << HAK_PAGE_SHIFT)
#define HAK_SS_PAGES		(HAK_SS_SIZE / HAK_PAGE_SIZE)
#define HAK_SS_HDR		4096UL
/* Every slab's first block is aligned to this; see __hak_class_for_align. */
#define HAK_SLAB_ALIGN_MAX	HAK_SS_HDR
#define HAK_VA_BITS		47
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
	struct hak_superslab *next;	/* global list, ss_lock */
	struct hak_superslab *prev;
	/*
	 * A copy of __hak_class_mask (written once, when the superslab is
	 * made): the free fast path reads it off the base it already has,
	 * 16 bytes apart like the thread-cache bins, so the bin offset it
	 * computes anyway indexes it too (no table address, no extra index).
	 */
	struct {
		uint16_t mask;
		uint16_t pad[7];
	} class_mask[HAK_NCLASS + 1];
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
HAK_BUILD_BUG_ON(sizeof(((struct hak_superslab *)0)->class_mask[0]) != 16);

extern HAK_HIDDEN uint8_t __hak_ssmap[HAK_SSMAP_SIZE];

/* Registry kind of a's 2 MiB region (0: not hakmem's). Never reads *a. */
static __always_inline unsigned __hak_ssmap_kind(uintptr_t a)
{
	uintptr_t i = a >> HAK_SS_SHIFT;

	return i < HAK_SSMAP_SIZE ? __hak_ssmap[i] : 0;
}

/* Is a inside a live superslab? Never reads *a. */
static __always_inline bool __hak_ss_owns(uintptr_t a)
{
	uintptr_t i = a >> HAK_SS_SHIFT;

	return i < HAK_SSMAP_SIZE && __hak_ssmap[i] == HAK_SSMAP_SLAB;
}

/* Register (kind != 0) or unregister a 2 MiB-aligned region. */
void __hak_ssmap_set(uintptr_t region, unsigned kind);

/* Tag of the heap owning the page holding a (0 for a free page). */
static __always_inline unsigned __hak_page_owner(uintptr_t a)
{
	const struct hak_superslab *ss =
		(const struct hak_superslab *)(a & ~(HAK_SS_SIZE - 1));

	return ss->page_owner[(a >> HAK_PAGE_SHIFT) & (HAK_SS_PAGES - 1)];
}

/*
 * Is a, freed as a block of class c, off the class's block boundaries?
 * off16 is 16 * c (the caller's bin offset). With the header box, the
 * block's check word says it instead (exact, and the header's class byte
 * of an interior pointer is program data).
 */
static __always_inline bool __hak_off_boundary(uintptr_t a, uintptr_t off16)
{
	const char *ss = (const char *)(a & ~(HAK_SS_SIZE - 1));
	uint16_t mask = *(const uint16_t *)(ss + offsetof(struct hak_superslab, class_mask) + off16);

	if (HAK_HDR_SIZE)
		return hak_hdr_of((const void *)a)->check != hak_hdr_check((const void *)a);
	return ((uint16_t)a & mask) != 0;
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

/* First byte of the slab's block area (a block header, with that box). */
static inline uintptr_t __hak_slab_start(const struct hak_slab *s)
{
	unsigned i = __hak_slab_index(s);
	uintptr_t base = (uintptr_t)s & ~(HAK_SS_SIZE - 1);

	return base + ((uintptr_t)i << HAK_PAGE_SHIFT) + (i == 0 ? HAK_SS_HDR : 0);
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

/* Take a slab of class c for owner (tagged tag); NULL with errno ENOMEM. */
struct hak_slab *__hak_span_alloc(struct hak_heap *owner, unsigned tag,
				  unsigned c) __must_check;
/* Give an empty slab (used == 0, no remote blocks) back to its superslab. */
void __hak_span_free(struct hak_slab *s);

/*
 * Return free pages to the OS: all of them when all is true, else only as
 * many as needed to get under the dirty limit. Also unmaps superslabs that
 * are wholly free beyond the few kept for reuse. Returns bytes released.
 */
size_t __hak_ss_release(bool all);
void __hak_ss_set_dirty_max(size_t bytes);
/*
 * Time-based decay: purge the free pages that have been dirty for at least
 * delay ms at time now (__hak_now_ms), and unmap wholly free superslabs
 * beyond the few kept. Returns bytes released.
 */
size_t __hak_ss_decay(unsigned now, unsigned delay);

struct hak_ss_stats {
	size_t superslabs;	/* live superslabs */
	size_t pages_used;	/* pages in slabs */
	size_t pages_dirty;	/* free pages possibly resident */
	size_t purged_bytes;	/* total bytes given back with madvise */
};
void __hak_ss_stats(struct hak_ss_stats *st);

void __hak_ss_fork_prepare(void);
void __hak_ss_fork_parent(void);
void __hak_ss_fork_child(void);

#endif /* HAK_SUPERSLAB_H */
