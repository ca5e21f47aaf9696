/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the hugepage box (CONFIG_HAK_HUGEPAGE). lib/superslab.c
 * calls, with ss_lock held:
 *   hak_huge_on_new(ss, nr)     a superslab just mapped (nr live ones, this
 *       included), before its first touch: advise it when the heap is large
 *       and has earned it (superslabs that stayed dense, no withdrawal);
 *   hak_huge_on_used(ss, used)  its pages in slabs changed to used: note
 *       the time it turned dense (the decay pass advises it once it stayed
 *       so for a purge delay), withdraw the advice when sparse;
 *   hak_huge_keeps(ss, used)    the time decay leaves the few free pages
 *       of a dense advised superslab alone (purging part of a 2 MiB page
 *       splits it);
 *   hak_huge_on_purge(ss, used) part of it is about to be purged (decay,
 *       dirty limit): withdraw the advice first, or khugepaged collapses
 *       the purged range back into a whole 2 MiB page, resident again;
 *   hak_huge_may_purge(ss, used, cold) free 4 KiB pages inside a live
 *       slab of ss could be purged: false keeps them (ss is advised and
 *       the slab is neither cold nor mostly free: a few KiB are not worth
 *       its 2 MiB page), else as hak_huge_on_purge and true;
 *   hak_huge_pass(now)          from the decay pass: advise the superslabs
 *       that stayed dense for a purge delay, grant map-time advice when
 *       enough stayed dense, and maybe MADV_COLLAPSE one of them; true when
 *       it tried a collapse;
 *   hak_huge_on_unmap(ss)       a superslab is about to be unmapped.
 * hak_huge_stats() is for HAKMEM_STATS. With the box off the hooks are
 * empty and hak_huge_keeps() is false.
 */
#ifndef HAK_BOX_HUGEPAGE_H
#define HAK_BOX_HUGEPAGE_H

#include <stddef.h>
#include <stdbool.h>
#include <hak/compiler.h>
#include "box.h"

#define HAK_HUGE_NONE		0	/* no advice given */
#define HAK_HUGE_ON		1	/* MADV_HUGEPAGE */
#define HAK_HUGE_OFF		2	/* MADV_NOHUGEPAGE (was on, turned sparse) */
#define HAK_HUGE_COLLAPSED	4	/* flag: MADV_COLLAPSE done */
#define HAK_HUGE_COLD		8	/* flag: withdrawn for a purge while dense */
#define HAK_HUGE_FRESH		16	/* flag: advised at map time, not dense yet */
#define HAK_HUGE_ATMAP		32	/* flag: advised at map time (2 MiB pages already) */
#define HAK_HUGE_PEND		64	/* flag: dense since huge_ms, not advised yet */
#define HAK_HUGE_LISTED		128	/* flag: on the box's pending list */
#define HAK_HUGE_COLD_SHIFT	8	/* pages in slabs then (bits 8..15) */
#define HAK_HUGE_DENSE		28	/* pages in slabs (of 32) to advise */
/* A dense superslab proves the heap stays after this many purge delays. */
#define HAK_HUGE_PROVE_X	2

struct hak_huge_stats {
	size_t advised;		/* MADV_HUGEPAGE given, ever */
	size_t withdrawn;	/* MADV_NOHUGEPAGE given, ever */
	size_t collapses;	/* MADV_COLLAPSE that worked */
	size_t collapse_fails;
	size_t at_map;		/* of advised: before the first touch */
	size_t earned;		/* times map-time advice was granted */
	size_t proven;		/* candidates dense for the proof time, last pass */
	size_t anon_huge_bytes;	/* AnonHugePages of the process now */
};

#if IS_ENABLED(CONFIG_HAK_HUGEPAGE)
void hak_huge_on_new(struct hak_superslab *ss, size_t nr);
void hak_huge_on_used(struct hak_superslab *ss, unsigned used);
static inline bool hak_huge_keeps(const struct hak_superslab *ss, unsigned used)
{
	return (ss->huge & 3) == HAK_HUGE_ON && used >= HAK_HUGE_DENSE;
}
void hak_huge_on_purge(struct hak_superslab *ss, unsigned used);
bool hak_huge_may_purge(struct hak_superslab *ss, unsigned used, bool cold);
bool hak_huge_pass(unsigned now);
void hak_huge_on_unmap(struct hak_superslab *ss);
void hak_huge_stats(struct hak_huge_stats *st);
#else
static inline void hak_huge_on_new(struct hak_superslab *ss, size_t nr)
{
	(void)ss; (void)nr;
}
static inline void hak_huge_on_used(struct hak_superslab *ss, unsigned used)
{
	(void)ss; (void)used;
}
static inline bool hak_huge_keeps(const struct hak_superslab *ss, unsigned used)
{
	(void)ss; (void)used;
	return false;
}
static inline void hak_huge_on_purge(struct hak_superslab *ss, unsigned used)
{
	(void)ss; (void)used;
}
static inline bool hak_huge_may_purge(struct hak_superslab *ss, unsigned used, bool cold)
{
	(void)ss; (void)used; (void)cold;
	return true;
}
static inline bool hak_huge_pass(unsigned now)
{
	(void)now;
	return false;
}
static inline void hak_huge_on_unmap(struct hak_superslab *ss) { (void)ss; }
static inline void hak_huge_stats(struct hak_huge_stats *st)
{
	*st = (struct hak_huge_stats){ 0 };
}
#endif

#endif /* HAK_BOX_HUGEPAGE_H */
