// SPDX-License-Identifier: MIT
/*
 * The size-class tables. Class sizes and the size-to-class table are const
 * data so that the malloc fast path needs no initialisation; the selftest
 * selftests/core/size_class checks that the tables agree with each other.
 */
#include "size_class.h"
#include "superslab.h"

/* __hak_size_class[(n + 15) / 16] is the class of an n-byte request. */
const uint8_t __hak_size_class[HAK_SMALL_MAX_IDX + 1] = {
	[0 ... 1] = 0,
	[2 ... 2] = 1,
	[3 ... 3] = 2,
	[4 ... 4] = 3,
	[5 ... 5] = 4,
	[6 ... 6] = 5,
	[7 ... 7] = 6,
	[8 ... 8] = 7,
	[9 ... 10] = 8,
	[11 ... 12] = 9,
	[13 ... 14] = 10,
	[15 ... 16] = 11,
	[17 ... 20] = 12,
	[21 ... 24] = 13,
	[25 ... 28] = 14,
	[29 ... 32] = 15,
	[33 ... 40] = 16,
	[41 ... 48] = 17,
	[49 ... 56] = 18,
	[57 ... 64] = 19,
	[65 ... 80] = 20,
	[81 ... 96] = 21,
	[97 ... 112] = 22,
	[113 ... 128] = 23,
	[129 ... 160] = 24,
	[161 ... 192] = 25,
	[193 ... 224] = 26,
	[225 ... 256] = 27,
	[257 ... 320] = 28,
	[321 ... 384] = 29,
	[385 ... 448] = 30,
	[449 ... 512] = 31,
	[513 ... 640] = 32,
	[641 ... 768] = 33,
	[769 ... 896] = 34,
	[897 ... 1024] = 35,
	[1025 ... 1280] = 36,
	[1281 ... 1536] = 37,
	[1537 ... 1792] = 38,
	[1793 ... 2048] = 39,
};

/*
 * __hak_size_ix[n] is 4 * the class of an n-byte request: the malloc fast
 * path indexes its bin with it straight from n (no add, no shift; the bins
 * are 32 bytes, addressed as 8 * ix). 32 KiB of const data, of which a
 * program touches the lines of the sizes it asks for. Same ranges as above,
 * in bytes: table entries lo..hi are the requests 16 * lo - 15 .. 16 * hi.
 */
#define IX(lo, hi, c)	__HAK_IX(lo, hi, c)
const uint8_t __hak_size_ix[HAK_SMALL_MAX + 1] = {
	HAK_SIZE_IX_DIRECT,	/* up to HAK_DIRECT_MAX: size_class.h */
	IX(65, 80, 20),
	IX(81, 96, 21),
	IX(97, 112, 22),
	IX(113, 128, 23),
	IX(129, 160, 24),
	IX(161, 192, 25),
	IX(193, 224, 26),
	IX(225, 256, 27),
	IX(257, 320, 28),
	IX(321, 384, 29),
	IX(385, 448, 30),
	IX(449, 512, 31),
	IX(513, 640, 32),
	IX(641, 768, 33),
	IX(769, 896, 34),
	IX(897, 1024, 35),
	IX(1025, 1280, 36),
	IX(1281, 1536, 37),
	IX(1537, 1792, 38),
	IX(1793, 2048, 39),
};
#undef IX

const uint32_t __hak_class_size[HAK_NCLASS] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256, 320, 384, 448, 512,
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
	10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768,
};

/*
 * Pages (64 KiB each) per slab: enough for at least 8 blocks, so a refill
 * of a large class does not take the superslab lock every other block.
 */
const uint8_t __hak_class_span[HAK_NCLASS] = {
	1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1,
	2, 2, 2, 2, 4, 4, 4, 4,
};

/*
 * Lowest set bit of a class's stride, at most HAK_BLOCK_ALIGN_MAX, minus 1:
 * every block of the class is aligned to it (__hak_slab_first_off).
 */
#define STRIDE(c)	((c) + HAK_HDR_SIZE)
#define BMASK(c)	((STRIDE(c) & -STRIDE(c)) < HAK_BLOCK_ALIGN_MAX ? \
			 (STRIDE(c) & -STRIDE(c)) - 1 : HAK_BLOCK_ALIGN_MAX - 1)

const uint32_t __hak_class_mask[HAK_NCLASS + 1] = {
	BMASK(16), BMASK(32), BMASK(48), BMASK(64),
	BMASK(80), BMASK(96), BMASK(112), BMASK(128),
	BMASK(160), BMASK(192), BMASK(224), BMASK(256),
	BMASK(320), BMASK(384), BMASK(448), BMASK(512),
	BMASK(640), BMASK(768), BMASK(896), BMASK(1024),
	BMASK(1280), BMASK(1536), BMASK(1792), BMASK(2048),
	BMASK(2560), BMASK(3072), BMASK(3584), BMASK(4096),
	BMASK(5120), BMASK(6144), BMASK(7168), BMASK(8192),
	BMASK(10240), BMASK(12288), BMASK(14336), BMASK(16384),
	BMASK(20480), BMASK(24576), BMASK(28672), BMASK(32768),
	0,	/* HAK_CLASS_NONE: sorted out by the slow path */
};

unsigned __hak_class_for_align(size_t n, size_t align)
{
	unsigned c;

	if (n > HAK_SMALL_MAX || align > HAK_SLAB_ALIGN_MAX)
		return HAK_CLASS_NONE;
	/*
	 * Blocks start at span_start + i * size, and every span start is a
	 * multiple of HAK_SLAB_ALIGN_MAX, so a class whose size is a multiple
	 * of align keeps every block aligned.
	 */
	for (c = __hak_class_of(n); c < HAK_NCLASS; c++)
		if ((__hak_class_size[c] & (align - 1)) == 0)
			return c;
	return HAK_CLASS_NONE;
}
