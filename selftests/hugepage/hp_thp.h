// SPDX-License-Identifier: MIT
/*
 * What the hugepage selftests share: is transparent hugepage support off
 * on this machine ("[never]", or no sysfs file)? Then MADV_HUGEPAGE has no
 * effect and the tests that count 2 MiB pages skip. And the box's
 * statistics, and a tick of the decay.
 */
#ifndef HAK_SELFTEST_HP_THP_H
#define HAK_SELFTEST_HP_THP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "boxes/hugepage/hugepage.h"

static inline int thp_never(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return 1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "[never]") != NULL || !buf[0];
}

static inline struct hak_huge_stats hs(void)
{
	struct hak_huge_stats st;

	hak_huge_stats(&st);
	return st;
}

/* A large malloc/free of len bytes: a slow path, which ticks the decay. */
static inline void tick_len(size_t len)
{
	void *volatile p = malloc(len);

	free(p);
}

#endif /* HAK_SELFTEST_HP_THP_H */
