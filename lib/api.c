// SPDX-License-Identifier: MIT
/*
 * hakmem's own names for the allocation API (include/hakmem/hakmem.h),
 * plus statistics and version queries. Always built, so a program (or a
 * sanitizer build) can use hakmem without replacing the C library's malloc.
 */
#include <hakmem/hakmem.h>
#include "init.h"
#include "stats.h"
#include "boxes/heapprof/prof_api.h"

#define HAK_API(name)	hak_##name
#define HAK_API_CONST	const
#include "entry.h"

/* The process's reallocarray is interpose.c's: it calls the process's realloc. */
HAK_EXPORT void *hak_reallocarray(void *p, size_t n, size_t size)
{
	return __hak_reallocarray(p, n, size);
}

HAK_EXPORT void hak_stats_get(struct hak_stats *st)
{
	__hak_stats_get(st);
}

HAK_EXPORT const char *hak_version(void)
{
	return HAKMEM_VERSION;
}

HAK_EXPORT const char *hak_config(void)
{
	return __hak_config();
}

HAK_EXPORT int hak_prof_dump(const char *path)
{
	return __hak_prof_dump(path);
}
