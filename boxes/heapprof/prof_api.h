/* SPDX-License-Identifier: MIT */
/*
 * The heap profiler's public entry, for lib/api.c: hak_prof_dump() is
 * always exported; without the box it fails with ENOSYS.
 */
#ifndef HAK_BOX_HEAPPROF_API_H
#define HAK_BOX_HEAPPROF_API_H

#include <errno.h>
#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_HEAPPROF)
int __hak_prof_dump(const char *path);
#else
static inline int __hak_prof_dump(const char *path)
{
	(void)path;
	errno = ENOSYS;
	return -1;
}
#endif

#endif /* HAK_BOX_HEAPPROF_API_H */
