// SPDX-License-Identifier: MIT
/*
 * What the hugepage selftests share: is transparent hugepage support off
 * on this machine ("[never]", or no sysfs file)? Then MADV_HUGEPAGE has no
 * effect and the tests that count 2 MiB pages skip. And the box's
 * statistics, and a tick of the decay.
 */
#ifndef HAK_SELFTEST_HP_THP_H
#define HAK_SELFTEST_HP_THP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/*
 * Keep a test's own big array (a static one: .bss) out of 2 MiB pages.
 * With THP "always" the kernel backs any aligned 2 MiB of it with one,
 * and AnonHugePages (the whole process's) then counts the test's array
 * beside the heap: hp_basic's 8 MiB pointer array read 6 MiB of it, of
 * the 8 MiB the heap may keep after malloc_trim. Call before touching.
 */
static inline void thp_exclude(void *p, size_t len)
{
	uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
	uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)4095;

	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_NOHUGEPAGE);
}

#endif /* HAK_SELFTEST_HP_THP_H */
