/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the valgrind box (CONFIG_HAK_VALGRIND).
 *
 * Tells memcheck what hakmem's memory is, with client requests (a magic
 * no-op instruction sequence outside valgrind, a message to the tool under
 * it):
 *   hak_vg_alloc(p, n, zeroed)  p is handed to the program: a block of n
 *                               bytes (MALLOCLIKE; n is the usable size);
 *   hak_vg_free(p)              the program gave p back (FREELIKE: the block
 *                               becomes NOACCESS; a double or foreign free is
 *                               reported by memcheck here);
 *   hak_vg_noaccess(p, n)       fresh block carved from a slab: off limits;
 *   hak_vg_unscanned(p, n)      a reserve that never holds a pointer (the
 *                               page map): NOACCESS for memcheck, with its
 *                               address errors off, so the leak check skips
 *                               it and hakmem's own loads and stores there
 *                               still read and write as usual (about 40 s
 *                               of CPU less per leak check: 4 GiB of zeros
 *                               not scanned word by word);
 *   hak_vg_opened(p, n)         pages made accessible again after PROT_NONE
 *                               (a guard page lifted): memory like a fresh
 *                               mapping's, not the NOACCESS memcheck keeps;
 *   hak_vg_next(p)              read the free-list link of free block p,
 *   hak_vg_set_next(p, next)    write it: the link word is opened
 *                               (DEFINED/UNDEFINED) for exactly that access
 *                               and closed (NOACCESS) again, so the
 *                               allocator's own writes are never reported
 *                               and the program's are;
 *   hak_vg_mark(p)              read the free mark (second word) of a block
 *                               being freed (still live: defined first, so
 *                               program data it never wrote is no error);
 *   hak_vg_set_mark(p, v)       write it (before hak_vg_free closes p);
 *   hak_vg_remark(p, v)         rewrite it in a block already freed;
 *   hak_vg_clear_mark(p)        clear it in a block just handed out, and
 *                               leave the word undefined, as new memory is;
 *   hak_vg_big(p, zero)         mid/large block p handed out (out of line:
 *                               looks up its usable size); returns p;
 *   hak_vg_slot_alias(slot, c, q)  an aligned block q cut from slot (header
 *                               box): the block becomes q, its header stays
 *                               readable;
 *   hak_vg_key(p)               the large registry's key for block p:
 *                               scrambled with the box, so memcheck's leak
 *                               scan does not take the registry for a
 *                               reference to the block; hak_vg_unkey(key)
 *                               the block again (the statistics' walk);
 *   hak_vg_running()            true under valgrind (realloc then copies
 *                               instead of mremap, which memcheck cannot
 *                               follow for a described block).
 * With the box off every hook is an empty inline (hak_vg_next a plain
 * load, hak_vg_set_next a plain store), so the compiled code is the same
 * as without the hooks.
 */
#ifndef HAK_BOX_VALGRIND_H
#define HAK_BOX_VALGRIND_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_VALGRIND)

#include <valgrind/memcheck.h>

static __always_inline void hak_vg_alloc(void *p, size_t n, bool zeroed)
{
	VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, zeroed);
}

static __always_inline void hak_vg_free(void *p)
{
	VALGRIND_FREELIKE_BLOCK(p, 0);
}

static __always_inline void hak_vg_noaccess(void *p, size_t n)
{
	VALGRIND_MAKE_MEM_NOACCESS(p, n);
}

static __always_inline void hak_vg_opened(void *p, size_t n)
{
	VALGRIND_MAKE_MEM_DEFINED(p, n);
}

static __always_inline void hak_vg_unscanned(void *p, size_t n)
{
	VALGRIND_MAKE_MEM_NOACCESS(p, n);
	VALGRIND_DISABLE_ADDR_ERROR_REPORTING_IN_RANGE(p, n);
}

static __always_inline void *hak_vg_next(void *p)
{
	void *next;

	VALGRIND_MAKE_MEM_DEFINED(p, sizeof(void *));
	next = *(void **)p;
	VALGRIND_MAKE_MEM_NOACCESS(p, sizeof(void *));
	return next;
}

static __always_inline void hak_vg_set_next(void *p, void *next)
{
	VALGRIND_MAKE_MEM_UNDEFINED(p, sizeof(void *));
	*(void **)p = next;
	VALGRIND_MAKE_MEM_NOACCESS(p, sizeof(void *));
}

static __always_inline uintptr_t hak_vg_mark(void *p)
{
	VALGRIND_MAKE_MEM_DEFINED((uintptr_t *)p + 1, sizeof(uintptr_t));
	return ((uintptr_t *)p)[1];
}

static __always_inline void hak_vg_set_mark(void *p, uintptr_t v)
{
	((uintptr_t *)p)[1] = v;
}

static __always_inline void hak_vg_remark(void *p, uintptr_t v)
{
	VALGRIND_MAKE_MEM_UNDEFINED((uintptr_t *)p + 1, sizeof(uintptr_t));
	((uintptr_t *)p)[1] = v;
	VALGRIND_MAKE_MEM_NOACCESS((uintptr_t *)p + 1, sizeof(uintptr_t));
}

static __always_inline void hak_vg_clear_mark(void *p)
{
	((uintptr_t *)p)[1] = 0;
	VALGRIND_MAKE_MEM_UNDEFINED((uintptr_t *)p + 1, sizeof(uintptr_t));
}

static __always_inline bool hak_vg_running(void)
{
	return RUNNING_ON_VALGRIND != 0;
}

/* Not a valid address (bits above 47 set), so never a pointer to a block. */
#define HAK_VG_KEY_MASK		0x5a5a800000000000UL

static __always_inline uintptr_t hak_vg_key(const void *p)
{
	return (uintptr_t)p ^ HAK_VG_KEY_MASK;
}

static __always_inline void *hak_vg_unkey(uintptr_t key)
{
	return (void *)(key ^ HAK_VG_KEY_MASK);
}

void *hak_vg_big(void *p, bool zero);
void hak_vg_slot_alias(void *slot, unsigned c, void *q);

#else

static __always_inline void hak_vg_alloc(void *p, size_t n, bool zeroed)
{
	(void)p; (void)n; (void)zeroed;
}

static __always_inline void hak_vg_free(void *p) { (void)p; }

static __always_inline void hak_vg_noaccess(void *p, size_t n)
{
	(void)p; (void)n;
}

static __always_inline void hak_vg_opened(void *p, size_t n)
{
	(void)p; (void)n;
}

static __always_inline void hak_vg_unscanned(void *p, size_t n)
{
	(void)p; (void)n;
}

static __always_inline void *hak_vg_next(void *p)
{
	return *(void **)p;
}

static __always_inline void hak_vg_set_next(void *p, void *next)
{
	*(void **)p = next;
}

static __always_inline uintptr_t hak_vg_mark(void *p)
{
	return ((uintptr_t *)p)[1];
}

static __always_inline void hak_vg_set_mark(void *p, uintptr_t v)
{
	((uintptr_t *)p)[1] = v;
}

static __always_inline void hak_vg_remark(void *p, uintptr_t v)
{
	((uintptr_t *)p)[1] = v;
}

static __always_inline void hak_vg_clear_mark(void *p)
{
	((uintptr_t *)p)[1] = 0;
}

static __always_inline bool hak_vg_running(void)
{
	return false;
}

static __always_inline uintptr_t hak_vg_key(const void *p)
{
	return (uintptr_t)p;
}

static __always_inline void *hak_vg_unkey(uintptr_t key)
{
	return (void *)key;
}

static __always_inline void *hak_vg_big(void *p, bool zero)
{
	(void)zero;
	return p;
}

static __always_inline void hak_vg_slot_alias(void *slot, unsigned c, void *q)
{
	(void)slot; (void)c; (void)q;
}

#endif

#endif /* HAK_BOX_VALGRIND_H */
