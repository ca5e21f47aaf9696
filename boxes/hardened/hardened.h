/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the hardened box (CONFIG_HAK_HARDENED).
 *
 * Free-list links in free blocks are stored encoded (safe-linking):
 *	stored = next ^ (address of the link >> 12) ^ secret
 * so a program that overwrites a link (overflow, write after free) cannot
 * aim it, and a decoded link is checked before it is followed:
 *   hak_hd_on()                the box is on (a constant);
 *   hak_hd_enc(where, next)    value to store at where for link next;
 *   hak_hd_dec(where, v)       the link stored as v at where (the core
 *                              then checks it: NULL, or 16-byte aligned
 *                              in a live superslab, else
 *                              hak_hd_bad_link() reports and aborts);
 *   hak_hd_init()              pick the secret (every heap attach calls
 *                              it; the first, before any link exists,
 *                              sets it);
 *   hak_hd_shuffle(idx, n)     a random permutation of 0..n-1 in idx
 *                              (n <= HAK_HD_SHUFFLE_MAX): the order in
 *                              which to cut n new blocks;
 *   hak_hd_zero_on_free()      clear small blocks on free.
 * With the box off, enc/dec are the identity and nothing else is called.
 */
#ifndef HAK_BOX_HARDENED_H
#define HAK_BOX_HARDENED_H

#include <stdint.h>
#include <stdbool.h>
#include <hak/compiler.h>

#define hak_hd_on()	IS_ENABLED(CONFIG_HAK_HARDENED)
#define HAK_HD_SHUFFLE_MAX	256

#if IS_ENABLED(CONFIG_HAK_HARDENED)

extern HAK_HIDDEN uintptr_t __hak_hd_secret;

void hak_hd_init(void);
void hak_hd_bad_link(const void *where, uintptr_t v) __noreturn __cold;
void hak_hd_shuffle(uint16_t *idx, uint32_t n);

static __always_inline uintptr_t hak_hd_enc(const void *where, const void *next)
{
	return (uintptr_t)next ^ ((uintptr_t)where >> 12) ^ __hak_hd_secret;
}

static __always_inline void *hak_hd_dec(const void *where, uintptr_t v)
{
	return (void *)(v ^ ((uintptr_t)where >> 12) ^ __hak_hd_secret);
}

static __always_inline bool hak_hd_zero_on_free(void)
{
	return IS_ENABLED(CONFIG_HAK_HARDENED_ZERO_ON_FREE);
}

#else

static __always_inline uintptr_t hak_hd_enc(const void *where, const void *next)
{
	(void)where;
	return (uintptr_t)next;
}

static __always_inline void *hak_hd_dec(const void *where, uintptr_t v)
{
	(void)where;
	return (void *)v;
}

static inline void hak_hd_init(void) { }

static inline void hak_hd_bad_link(const void *where, uintptr_t v)
{
	(void)where; (void)v;
}

static inline void hak_hd_shuffle(uint16_t *idx, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		idx[i] = (uint16_t)i;
}

static __always_inline bool hak_hd_zero_on_free(void)
{
	return false;
}

#endif

#endif /* HAK_BOX_HARDENED_H */
