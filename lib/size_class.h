/* SPDX-License-Identifier: MIT */
/*
 * Size classes of the small-block path.
 *
 * 40 classes from 16 B to 32 KiB: 16-byte steps up to 128 B, then four
 * classes per doubling. Every class size is a multiple of 16, so every block
 * is 16-byte aligned. Worst-case internal waste (request n, class c):
 *   n <= 16:            up to 15 B (alignment floor)
 *   17..128:            under 16 B (< 49% at 17 B, < 12% from 128 B)
 *   129..32768:         under a quarter step: < 20% (e.g. 129 -> 160)
 *
 * Size to class is one byte load from __hak_size_class[], indexed by
 * (n + 15) / 16; the table is const data, so it works before init.
 *
 * A slab of a class spans 1, 2 or 4 pages of 64 KiB so that it holds at
 * least 8 blocks (see __hak_class_span).
 */
#ifndef HAK_SIZE_CLASS_H
#define HAK_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>
#include <hak/compiler.h>
#include "boxes/header_classidx/header.h"

#define HAK_NCLASS		40
#define HAK_CLASS_NONE		HAK_NCLASS	/* sentinel: a bin that never caches */
#define HAK_SMALL_MAX		32768u
#define HAK_SMALL_MAX_IDX	(HAK_SMALL_MAX / 16)

extern HAK_HIDDEN const uint8_t __hak_size_class[HAK_SMALL_MAX_IDX + 1];
extern HAK_HIDDEN const uint8_t __hak_size_ix[HAK_SMALL_MAX + 1];
extern HAK_HIDDEN const uint32_t __hak_class_size[HAK_NCLASS];
extern HAK_HIDDEN const uint8_t __hak_class_span[HAK_NCLASS];
/*
 * Block-boundary mask of class c (HAK_NCLASS + 1 entries, 0 for
 * HAK_CLASS_NONE): every block of the class starts at an address a with
 * (a - HAK_HDR_SIZE) & mask == 0, mask being the largest power of two
 * that divides the stride (at most HAK_SLAB_ALIGN_MAX), minus one. A freed
 * pointer that fails it is not a block start (unaligned or interior).
 */
extern HAK_HIDDEN const uint32_t __hak_class_mask[HAK_NCLASS + 1];

/* Class of a request of n bytes; n must be <= HAK_SMALL_MAX. */
static __always_inline unsigned __hak_class_of(size_t n)
{
	return __hak_size_class[(n + 15) >> 4];
}

/*
 * Requests up to HAK_DIRECT_MAX bytes find their bin index in a copy of the
 * first HAK_DIRECT_MAX + 1 entries of __hak_size_ix kept in the thread
 * cache (lib/tcache.h, size_ix), which the malloc fast path reads relative
 * to the thread pointer with the offset it already holds: one load, where
 * the const table needs its address first (a LEA: the library is PIC).
 * HAK_SIZE_IX_DIRECT is that part of the table, as initialiser entries:
 * entries 16 * lo - 15 .. 16 * hi are the requests of class c.
 */
#define HAK_DIRECT_MAX		1024u
#define __HAK_IX(lo, hi, c)	[16 * (lo) - 15 ... 16 * (hi)] = 4 * (c)
#define HAK_SIZE_IX_DIRECT						\
	[0 ... 16] = 0,							\
	__HAK_IX(2, 2, 1), __HAK_IX(3, 3, 2), __HAK_IX(4, 4, 3),	\
	__HAK_IX(5, 5, 4), __HAK_IX(6, 6, 5), __HAK_IX(7, 7, 6),	\
	__HAK_IX(8, 8, 7), __HAK_IX(9, 10, 8), __HAK_IX(11, 12, 9),	\
	__HAK_IX(13, 14, 10), __HAK_IX(15, 16, 11),			\
	__HAK_IX(17, 20, 12), __HAK_IX(21, 24, 13),			\
	__HAK_IX(25, 28, 14), __HAK_IX(29, 32, 15),			\
	__HAK_IX(33, 40, 16), __HAK_IX(41, 48, 17),			\
	__HAK_IX(49, 56, 18), __HAK_IX(57, 64, 19)

/* 4 * the class of a request of n bytes (n <= HAK_SMALL_MAX): a bin index. */
static __always_inline unsigned __hak_size_ix_of(size_t n)
{
	return __hak_size_ix[n];
}

static __always_inline size_t __hak_class_bytes(unsigned c)
{
	return __hak_class_size[c];
}

/*
 * Distance between blocks of class c in a slab: the class size, plus the
 * block header when the header-class-index box is on (HAK_HDR_SIZE).
 */
#define __hak_class_stride(c)	(__hak_class_size[c] + HAK_HDR_SIZE)

/*
 * Smallest class of at least n bytes whose blocks all start on an
 * align-byte boundary (align a power of two, 16 < align <= 4096), or
 * HAK_CLASS_NONE when no class fits.
 */
unsigned __hak_class_for_align(size_t n, size_t align);

#endif /* HAK_SIZE_CLASS_H */
