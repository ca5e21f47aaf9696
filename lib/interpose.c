// SPDX-License-Identifier: MIT
/*
 * The C library's allocation names, so that LD_PRELOAD or linking with
 * -lhakmem replaces malloc for the whole process. Every replaced symbol is
 * in this one object on purpose: a static link pulls all of them or none,
 * so libc's allocator can never serve part of the API.
 *
 * glibc also exports __libc_malloc and friends; a few programs call them
 * directly, so they are aliases here too (never glibc's own allocator).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include "init.h"
#include "stats.h"

/* C23 names that glibc 2.36's headers do not declare yet. */
void free_sized(void *p, size_t n);
void free_aligned_sized(void *p, size_t align, size_t n);

#define HAK_API(name)	name
#define HAK_API_CONST
#include "entry.h"

HAK_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi;

	__hak_mallinfo2(&mi);
	return mi;
}

static int clamp_int(size_t v)
{
	return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

HAK_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 mi2;
	struct mallinfo mi;

	__hak_mallinfo2(&mi2);
	mi.arena = clamp_int(mi2.arena);
	mi.ordblks = clamp_int(mi2.ordblks);
	mi.smblks = clamp_int(mi2.smblks);
	mi.hblks = clamp_int(mi2.hblks);
	mi.hblkhd = clamp_int(mi2.hblkhd);
	mi.usmblks = clamp_int(mi2.usmblks);
	mi.fsmblks = clamp_int(mi2.fsmblks);
	mi.uordblks = clamp_int(mi2.uordblks);
	mi.fordblks = clamp_int(mi2.fordblks);
	mi.keepcost = clamp_int(mi2.keepcost);
	return mi;
}

HAK_EXPORT int malloc_info(int options, FILE *fp)
{
	return __hak_malloc_info(options, fp);
}

HAK_EXPORT void *__libc_malloc(size_t n) HAK_ALIAS_OF(malloc);
HAK_EXPORT void __libc_free(void *p) HAK_ALIAS_OF(free);
HAK_EXPORT void *__libc_calloc(size_t n, size_t size) HAK_ALIAS_OF(calloc);
HAK_EXPORT void *__libc_realloc(void *p, size_t n) HAK_ALIAS_OF(realloc);
HAK_EXPORT void *__libc_memalign(size_t align, size_t n) HAK_ALIAS_OF(memalign);
HAK_EXPORT void *__libc_valloc(size_t n) HAK_ALIAS_OF(valloc);
HAK_EXPORT void *__libc_pvalloc(size_t n) HAK_ALIAS_OF(pvalloc);
