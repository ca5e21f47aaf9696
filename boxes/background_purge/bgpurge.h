/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the background purge box (CONFIG_HAK_BACKGROUND_PURGE).
 *
 *   hak_bgpurge_kick()   called by the core's purge tick (lib/purge.c), a
 *       slow path with no allocator lock held: starts the thread when
 *       HAKMEM_BACKGROUND_PURGE=1 and none runs in this process. One
 *       load and a branch once started (or when off).
 *   hak_bgpurge_stats()  for HAKMEM_STATS and malloc_info.
 * With the box off both are empty.
 */
#ifndef HAK_BOX_BGPURGE_H
#define HAK_BOX_BGPURGE_H

#include <stddef.h>
#include <hak/compiler.h>
#include "box.h"

struct hak_bgpurge_stats {
	size_t running;		/* 1: the thread runs in this process */
	size_t starts;		/* threads started (one per process, plus forks) */
	size_t wakeups;		/* times the thread woke up */
	size_t passes;		/* decay passes it ran (the program was idle) */
	size_t purged_bytes;	/* bytes those passes released */
};

#if IS_ENABLED(CONFIG_HAK_BACKGROUND_PURGE)
/* 0: not started in this process; else starting, running or failed. */
extern int __hak_bgpurge_state;
void hak_bgpurge_start(void);

static inline void hak_bgpurge_kick(void)
{
	if (likely(arch_load_relaxed(&__hak_bgpurge_state) != 0) ||
	    !__hak_opt.background_purge)
		return;
	hak_bgpurge_start();
}
void hak_bgpurge_stats(struct hak_bgpurge_stats *st);
#else
static inline void hak_bgpurge_kick(void) { }
static inline void hak_bgpurge_stats(struct hak_bgpurge_stats *st)
{
	*st = (struct hak_bgpurge_stats){ 0 };
}
#endif

#endif /* HAK_BOX_BGPURGE_H */
