/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the hardened box (CONFIG_HAK_HARDENED).
 *
 * Free-list links in free blocks are stored encoded (safe-linking):
 *	stored = next ^ (address of the link) ^ secret
 * (glibc shifts the address right by 12 because it has no secret and needs
 * the address's random bits to mask the pointer's; here the secret masks
 * it, and the address, unshifted, makes every location's mask different:
 * one XOR each way instead of a copy, a shift and an XOR)
 * so a program that overwrites a link (overflow, write after free) cannot
 * aim it, and a decoded link is checked before it is followed:
 *   hak_hd_on()                the box is on (a constant);
 *   hak_hd_enc(where, next)    value to store at where for link next;
 *   hak_hd_dec(where, v)       the link stored as v at where (the core
 *                              then checks it: NULL, or 16-byte aligned
 *                              below 2^47, else
 *                              hak_hd_bad_link() reports and aborts;
 *                              hak_hd_bad_pop() the same from the
 *                              decoded word, for the pop fast path);
 *   hak_hd_init()              pick the secret (every heap attach calls
 *                              it; the first, before any link exists,
 *                              sets it);
 *   hak_hd_secret()            the secret (0 with the box off), which the
 *                              attach copies into the thread's cache for
 *                              the pop's decode (lib/tcache.h);
 *   hak_hd_carve_order(idx, n) the order in which to cut n new blocks
 *                              (n <= HAK_HD_CARVE_MAX), a permutation of
 *                              0..n-1 in idx: each next one a random one
 *                              of the HAK_HD_CARVE_WINDOW lowest not yet
 *                              cut;
 *   hak_hd_zero_on_free()      clear small blocks on free.
 *
 * Guard pages: a PROT_NONE page after every large block (lib/large.c, and
 * every range BigCache keeps: the guard stays with it while it is cached)
 * and at the end of every slab of a class of at least
 * HAK_HD_SLAB_GUARD_MIN bytes, so a linear overflow off the end faults:
 *   hak_hd_guard_len()         bytes of a large block's guard (a page, 0
 *                              with the box off: the callers' arithmetic
 *                              folds away);
 *   hak_hd_slab_guard(size)    bytes a slab of size-byte blocks keeps at
 *                              its end for the guard (a page or 0);
 *   hak_hd_guard_set(page)     make page a guard; false when the budget
 *                              of guards is spent or the OS refused (the
 *                              page then stays read-write, unused);
 *   hak_hd_guard_unset(page)   make the guard page read-write again;
 *                              false when the OS refused (it stays a
 *                              guard, still counted);
 *   hak_hd_guard_gone(n)       n guards were unmapped with their blocks;
 *   hak_hd_guards_clear(p, len, n)  make the range read-write again, with
 *                              the n guards in it (an L2.5 region going
 *                              back to its pool); false when refused.
 * The L2.5 pool box makes every block's slot its class and a guard page.
 * A guard splits a mapping, and a process may hold vm.max_map_count
 * mappings (65530 by default): guards are limited to a quarter of that
 * (each adds at most two), so past it blocks are made without one.
 * With the box off, enc/dec are the identity and nothing else is called.
 */
#ifndef HAK_BOX_HARDENED_H
#define HAK_BOX_HARDENED_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <hak/compiler.h>

#define hak_hd_on()	IS_ENABLED(CONFIG_HAK_HARDENED)
#define HAK_HD_CARVE_MAX	256
#define HAK_HD_CARVE_WINDOW	16
#define HAK_HD_GUARD_PAGE	4096UL
/* Classes from 10 KiB (slabs of two and four 64 KiB pages) get a guard. */
#define HAK_HD_SLAB_GUARD_MIN	10240UL

#if IS_ENABLED(CONFIG_HAK_HARDENED)

extern HAK_HIDDEN uintptr_t __hak_hd_secret;

void hak_hd_init(void);
void hak_hd_bad_link(const void *where, uintptr_t v) __noreturn __cold;
/* Never returns; not __noreturn, so that the pop tail-calls it. */
void *hak_hd_bad_pop(const void *where, uintptr_t d) __cold;
void hak_hd_carve_order(uint16_t *idx, uint32_t n);

static __always_inline uintptr_t hak_hd_enc(const void *where, const void *next)
{
	return (uintptr_t)next ^ (uintptr_t)where ^ __hak_hd_secret;
}

static __always_inline void *hak_hd_dec(const void *where, uintptr_t v)
{
	return (void *)((v ^ __hak_hd_secret) ^ (uintptr_t)where);
}

static __always_inline uintptr_t hak_hd_secret(void)
{
	return __hak_hd_secret;
}

static __always_inline bool hak_hd_zero_on_free(void)
{
	return IS_ENABLED(CONFIG_HAK_HARDENED_ZERO_ON_FREE);
}

static __always_inline size_t hak_hd_guard_len(void)
{
	return HAK_HD_GUARD_PAGE;
}

static __always_inline size_t hak_hd_slab_guard(size_t size)
{
	return size >= HAK_HD_SLAB_GUARD_MIN ? HAK_HD_GUARD_PAGE : 0;
}

bool hak_hd_guard_set(void *page) __must_check;
bool hak_hd_guard_unset(void *page) __must_check;
void hak_hd_guard_gone(size_t n);
bool hak_hd_guards_clear(void *p, size_t len, size_t n) __must_check;

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

static __always_inline uintptr_t hak_hd_secret(void)
{
	return 0;
}

static inline void hak_hd_init(void) { }

static inline void hak_hd_bad_link(const void *where, uintptr_t v)
{
	(void)where; (void)v;
}

static inline void *hak_hd_bad_pop(const void *where, uintptr_t d)
{
	(void)where; (void)d;
	return NULL;
}

static inline void hak_hd_carve_order(uint16_t *idx, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		idx[i] = (uint16_t)i;
}

static __always_inline bool hak_hd_zero_on_free(void)
{
	return false;
}

static __always_inline size_t hak_hd_guard_len(void)
{
	return 0;
}

static __always_inline size_t hak_hd_slab_guard(size_t size)
{
	(void)size;
	return 0;
}

static inline bool hak_hd_guard_set(void *page)
{
	(void)page;
	return false;
}

static inline bool hak_hd_guard_unset(void *page)
{
	(void)page;
	return true;
}

static inline void hak_hd_guard_gone(size_t n)
{
	(void)n;
}

static inline bool hak_hd_guards_clear(void *p, size_t len, size_t n)
{
	(void)p; (void)len; (void)n;
	return true;
}

#endif

#endif /* HAK_BOX_HARDENED_H */
