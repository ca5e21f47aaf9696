/* SPDX-License-Identifier: MIT */
/*
 * Compiler helpers shared by every layer: branch hints, inlining control,
 * symbol visibility and the annotations sparse checks (lock context,
 * must-check results). Nothing here depends on the configuration.
 */
#ifndef HAK_COMPILER_H
#define HAK_COMPILER_H

#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)

/* glibc's <sys/cdefs.h> may define some of these the same way first. */
#undef __always_inline
#define __always_inline		inline __attribute__((always_inline))
#undef __noinline
#define __noinline		__attribute__((noinline))
#undef __cold
#define __cold			__attribute__((cold))
#undef __hot
#define __hot			__attribute__((hot))
#undef __unused
#define __unused		__attribute__((unused))
#undef __noreturn
#define __noreturn		__attribute__((noreturn))
#undef __aligned
#define __aligned(n)		__attribute__((aligned(n)))
#undef __packed
#define __packed		__attribute__((packed))
#undef __printf
#define __printf(a, b)		__attribute__((format(printf, a, b)))

/* Symbols of the public API; everything else stays hidden (-fvisibility). */
#define HAK_EXPORT		__attribute__((visibility("default")))
/*
 * For extern declarations of internal data: -fvisibility only marks
 * definitions, so without this every access would go through the GOT.
 */
#define HAK_HIDDEN		__attribute__((visibility("hidden")))

/* An alias takes its target's attributes (gcc checks; clang lacks "copy"). */
#if defined(__clang__)
# define HAK_ALIAS_OF(f)	__attribute__((alias(#f)))
#else
# define HAK_ALIAS_OF(f)	__attribute__((alias(#f), copy(f)))
#endif

#ifdef __CHECKER__
# define __must_check
# define __acquires(x)		__attribute__((context(x, 0, 1)))
# define __releases(x)		__attribute__((context(x, 1, 0)))
# define __must_hold(x)		__attribute__((context(x, 1, 1)))
# define __acquire(x)		__context__(x, 1)
# define __release(x)		__context__(x, -1)
# define __force		__attribute__((force))
#else
# define __must_check		__attribute__((warn_unused_result))
# define __acquires(x)
# define __releases(x)
# define __must_hold(x)
# define __acquire(x)		((void)0)
# define __release(x)		((void)0)
# define __force
#endif

/*
 * Data that nothing refers to but that must be linked all the same: an
 * IRELATIVE relocation's anchor (lib/alloc.c, lib/superslab.c). "used"
 * keeps it from the compiler, "retain" (SHF_GNU_RETAIN) from the linker:
 * a program linked with libhakmem.a and -Wl,--gc-sections dropped the
 * anchor, the resolver never ran, and free read the unmapped fixed map.
 */
#if defined(__has_attribute)
# if __has_attribute(retain)
#  define __retain		__attribute__((used, retain))
# endif
#endif
#ifndef __retain
# define __retain		__attribute__((used))
#endif

/*
 * Data every process writes while it starts (Documentation/design.md, "A
 * short process's pages"), gathered from the files that own it into two
 * sections whose names match none of the linker's default script: the
 * linker puts such writable sections after .data, before .bss, on the
 * page the dynamic loader writes anyway (it clears the .bss part of the
 * last page of the file). Spread over .bss by file order, the same
 * variables took 7 pages a process, each a fault. __boot_once: written at
 * start-up (or rarely), then read, some by the fast path; __boot_hot:
 * written again and again (counters, the mapped bytes, the stock). Each
 * section starts on a cache line of its own (a member aligned to 64), so
 * the one's writes do not bounce the other's reads. Zero-initialised
 * members take file space (a few hundred bytes): the sections are data,
 * not .bss. Writable data only: no const.
 */
#define __boot_once		__attribute__((section("hak_boot_once")))
#define __boot_hot		__attribute__((section("hak_boot_hot")))

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define HAK_ALIGN_UP(x, a)	(((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define HAK_ALIGN_DOWN(x, a)	((x) & ~((__typeof__(x))(a) - 1))
#define HAK_IS_POW2(x)		((x) != 0 && ((x) & ((x) - 1)) == 0)

/* Compile-time assertion usable at file or block scope. */
#define HAK_BUILD_BUG_ON(cond)	_Static_assert(!(cond), #cond)

#define barrier()		__asm__ __volatile__("" ::: "memory")

#endif /* HAK_COMPILER_H */
