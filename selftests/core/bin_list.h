/* SPDX-License-Identifier: MIT */
/*
 * For the selftests that look inside a thread-cache bin or a slab's free
 * list (spill, shed; header-only, not a test): they link libhakmem.a and
 * read the core's own structures.
 */
#ifndef HAK_SELFTEST_BIN_LIST_H
#define HAK_SELFTEST_BIN_LIST_H

#include <stdint.h>
#include "tcache.h"

/* Is p among the first limit blocks of the list at head? */
static inline int bl_on_list(void *head, const void *p, uint32_t limit)
{
	void *q;

	for (q = head; q && limit; q = __hak_link(q), limit--)
		if (q == p)
			return 1;
	return 0;
}

#endif
