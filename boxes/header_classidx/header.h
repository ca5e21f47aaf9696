/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the header-class-index box (CONFIG_HAK_HEADER_CLASSIDX).
 *
 * With the box on, every small block is preceded by a 16-byte header (so
 * the block itself stays 16-byte aligned):
 *
 *	bytes 0..7	check word: (address of the block) ^ HAK_HDR_MAGIC
 *	bytes 8..11	unused
 *	byte  12	tag of the heap that owns the block's slab (the
 *			slow paths check it against the page-owner line)
 *	byte  13	aligned block: the slot's class
 *	byte  14	aligned block: (block - slot start) / 16
 *	byte  15	class index (HAK_HDR_ALIGNED for an aligned block)
 *
 * free takes the class from the page map, as without the box, and checks
 * the byte p[-1] against it (a byte the program wrote over is reported,
 * never trusted: lib/alloc.h, __hak_block_ix). An aligned allocation
 * hands out an address inside a larger slot; its header says
 * HAK_HDR_ALIGNED, which sends free to the slow path to find the slot
 * (lib/heap.c, __hak_hdr_slot, checks that header against the slab).
 *
 * With the box off, HAK_HDR_SIZE is 0 and everything here is unused.
 */
#ifndef HAK_BOX_HEADER_CLASSIDX_H
#define HAK_BOX_HEADER_CLASSIDX_H

#include <stdint.h>
#include <hak/compiler.h>

#define HAK_HDR_SIZE	(IS_ENABLED(CONFIG_HAK_HEADER_CLASSIDX) ? 16u : 0u)
#define HAK_HDR_MAGIC	0x68616b4864720000ULL	/* "hakHdr" */
/*
 * Class byte of an aligned block: the bin that never caches, so free takes
 * the slow path (HAK_CLASS_NONE, lib/size_class.h, where this is used).
 */
#define HAK_HDR_ALIGNED	HAK_CLASS_NONE

struct hak_hdr {
	uint64_t check;
	uint8_t pad[4];
	uint8_t owner;
	uint8_t slot_class;
	uint8_t delta;
	uint8_t class_idx;
};

HAK_BUILD_BUG_ON(sizeof(struct hak_hdr) != 16);

static __always_inline struct hak_hdr *hak_hdr_of(const void *p)
{
	return (struct hak_hdr *)((uintptr_t)p - sizeof(struct hak_hdr));
}

static __always_inline uint64_t hak_hdr_check(const void *p)
{
	return (uint64_t)(uintptr_t)p ^ HAK_HDR_MAGIC;
}

/* Class byte of block p: the last byte before it. */
static __always_inline unsigned hak_hdr_class(const void *p)
{
	return ((const uint8_t *)p)[-1];
}

/* Owner tag byte of block p. */
static __always_inline unsigned hak_hdr_owner(const void *p)
{
	return ((const uint8_t *)p)[-4];
}

/*
 * Stamp a block's header (at carve time, or when an aligned block is
 * freed): class c, in a slab of the heap tagged owner.
 */
static inline void hak_hdr_write(void *p, unsigned c, unsigned owner)
{
	struct hak_hdr *h = hak_hdr_of(p);

	h->check = hak_hdr_check(p);
	h->owner = (uint8_t)owner;
	h->delta = 0;
	h->class_idx = (uint8_t)c;
}

#endif /* HAK_BOX_HEADER_CLASSIDX_H */
