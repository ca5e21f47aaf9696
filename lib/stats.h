/* SPDX-License-Identifier: MIT */
/* Statistics snapshot and its libc-facing views (stats.c). */
#ifndef HAK_STATS_H
#define HAK_STATS_H

#include <malloc.h>
#include <hakmem/hakmem.h>

void __hak_stats_get(struct hak_stats *st);
void __hak_mallinfo2(struct mallinfo2 *mi);
const char *__hak_config(void);

#endif /* HAK_STATS_H */
