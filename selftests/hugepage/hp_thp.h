// SPDX-License-Identifier: MIT
/*
 * The hugepage selftests' shared check: is transparent hugepage support
 * off on this machine ("[never]", or no sysfs file)? Then MADV_HUGEPAGE
 * has no effect and the tests that count 2 MiB pages skip.
 */
#ifndef HAK_SELFTEST_HP_THP_H
#define HAK_SELFTEST_HP_THP_H

#include <stdio.h>
#include <string.h>

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

#endif /* HAK_SELFTEST_HP_THP_H */
