/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the fail-fast box (CONFIG_HAK_FAILFAST).
 *
 * The core asks hak_ff_level() before each check; with the box off it is
 * the constant 0 and every check compiles away. Level 1 checks that freed
 * pointers are block boundaries of a live slab, that free-list links stay
 * inside their slab, and that slab counters never wrap; level 2 adds
 * double-free detection and full free-list walks on refill. A violation
 * prints one line (check, address, class) and aborts.
 */
#ifndef HAK_BOX_FAILFAST_H
#define HAK_BOX_FAILFAST_H

#include <stdint.h>
#include <hak/compiler.h>

struct hak_slab;

#if IS_ENABLED(CONFIG_HAK_FAILFAST)

#define HAK_FF_DEFAULT_LEVEL	CONFIG_HAK_FAILFAST_LEVEL

extern HAK_HIDDEN int __hak_ff_level;

static __always_inline int hak_ff_level(void)
{
	return __hak_ff_level;
}

/* Report a violated check and abort. */
void hak_ff_fail(const void *p, unsigned c, const char *check) __noreturn __cold;
/* free(p) of class c, before it is cached. */
void hak_ff_on_free(void *p, unsigned c) __noinline;
/* p of class c is about to be handed to the program. */
void hak_ff_on_alloc(void *p, unsigned c) __noinline;
/* p is being taken from slab s's free list (refill). */
void hak_ff_on_slab_pop(const struct hak_slab *s, const void *p) __noinline;
/* Level 2: walk s's whole local free list (refill). */
void hak_ff_walk_slab(const struct hak_slab *s) __noinline;
/* realloc/usable size of p (class c): it must be a live block. */
void hak_ff_check_live(const void *p, unsigned c) __noinline;
/* Apply HAKMEM_TINY_REFILL_FAILFAST (read by the options table). */
void hak_ff_init(void);

#else

#define HAK_FF_DEFAULT_LEVEL	0

static __always_inline int hak_ff_level(void)
{
	return 0;
}

static inline void hak_ff_fail(const void *p, unsigned c, const char *check)
{
	(void)p; (void)c; (void)check;
}

static inline void hak_ff_on_free(void *p, unsigned c) { (void)p; (void)c; }
static inline void hak_ff_on_alloc(void *p, unsigned c) { (void)p; (void)c; }
static inline void hak_ff_on_slab_pop(const struct hak_slab *s, const void *p)
{
	(void)s; (void)p;
}
static inline void hak_ff_walk_slab(const struct hak_slab *s) { (void)s; }
static inline void hak_ff_check_live(const void *p, unsigned c) { (void)p; (void)c; }
static inline void hak_ff_init(void) { }

#endif

#endif /* HAK_BOX_FAILFAST_H */
