/* SPDX-License-Identifier: MIT */
/* Statistics snapshot and its libc-facing views (stats.c). */
#ifndef HAK_STATS_H
#define HAK_STATS_H

#include <malloc.h>
#include <stdio.h>
#include <hakmem/hakmem.h>

void __hak_stats_get(struct hak_stats *st);
void __hak_mallinfo2(struct mallinfo2 *mi);
const char *__hak_config(void);
/*
 * glibc's malloc_info(0, fp): XML, one <heap> per layer with resident,
 * dirty, purged, hugepage and cached bytes. Gathers every figure first,
 * then writes with fprintf holding no allocator lock (stdio may allocate
 * the stream's buffer through malloc). EINVAL for options != 0.
 */
int __hak_malloc_info(int options, FILE *fp);

#endif /* HAK_STATS_H */
