/* SPDX-License-Identifier: MIT */
/*
 * The allocation entry points, written once and instantiated twice: api.c
 * defines them as hak_malloc, hak_free, ... and interpose.c as malloc,
 * free, ... (the includer defines HAK_API(name) and HAK_API_CONST first).
 * malloc and free inline their fast paths; the rest are tail calls.
 *
 * A fragment, not a header of its own (hdrcheck: skip).
 */
#include <errno.h>
#include <hak/compiler.h>
#include "alloc.h"

#ifndef HAK_API
# error "define HAK_API(name) before including entry.h"
#endif

HAK_EXPORT void *HAK_API(malloc)(size_t n)
{
	return __hak_alloc(n);
}

HAK_EXPORT void HAK_API(free)(void *p)
{
	__hak_free(p);
}

HAK_EXPORT void *HAK_API(calloc)(size_t n, size_t size)
{
	return __hak_calloc(n, size);
}

/*
 * realloc(NULL, n) is how some programs allocate every block (Lua's
 * allocator, for one): malloc's fast path inlined here, instead of the
 * registry lookup and two calls of __hak_realloc's way to it.
 */
HAK_EXPORT void *HAK_API(realloc)(void *p, size_t n)
{
	if (!p)
		return __hak_alloc(n);
	return __hak_realloc(p, n);
}

HAK_EXPORT int HAK_API(posix_memalign)(void **out, size_t align, size_t n)
{
	return __hak_posix_memalign(out, align, n);
}

HAK_EXPORT void *HAK_API(aligned_alloc)(size_t align, size_t n)
{
	return __hak_aligned_alloc(align, n);
}

HAK_EXPORT void *HAK_API(memalign)(size_t align, size_t n)
{
	return __hak_memalign(align, n);
}

HAK_EXPORT void *HAK_API(valloc)(size_t n)
{
	return __hak_valloc(n);
}

HAK_EXPORT void *HAK_API(pvalloc)(size_t n)
{
	return __hak_pvalloc(n);
}

HAK_EXPORT size_t HAK_API(malloc_usable_size)(HAK_API_CONST void *p)
{
	return __hak_usable_size(p);
}

HAK_EXPORT void HAK_API(free_sized)(void *p, size_t n)
{
	__hak_free_sized(p, n);
}

HAK_EXPORT void HAK_API(free_aligned_sized)(void *p, size_t align, size_t n)
{
	__hak_free_aligned_sized(p, align, n);
}

HAK_EXPORT int HAK_API(malloc_trim)(size_t pad)
{
	return __hak_trim(pad);
}

HAK_EXPORT void HAK_API(malloc_stats)(void)
{
	int saved = errno;	/* a closed stderr fails the write, not the call */

	__hak_stats_print(2);
	errno = saved;
}
