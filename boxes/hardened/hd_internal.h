/* SPDX-License-Identifier: MIT */
/*
 * Hardened box internals for its selftests (not a hook: the core never
 * calls these). Only built with CONFIG_HAK_HARDENED.
 */
#ifndef HAK_BOX_HARDENED_INTERNAL_H
#define HAK_BOX_HARDENED_INTERNAL_H

#include <stddef.h>
#include <stdbool.h>

struct hak_hd_guard_stats {
	size_t live;		/* guard pages protected now */
	size_t skipped;		/* guards not made (budget spent, OS refused), ever */
	size_t budget;		/* most guards at once: vm.max_map_count / 4 with
				 * mprotect, SIZE_MAX with markers */
	bool markers;		/* guards are page-table markers (MADV_GUARD_INSTALL) */
};

void __hak_hd_guard_stats(struct hak_hd_guard_stats *st);
/* Set the budget (tests of what happens past it); 0: back to the default. */
void __hak_hd_set_guard_budget(size_t n);

#endif /* HAK_BOX_HARDENED_INTERNAL_H */
