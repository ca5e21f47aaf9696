/* SPDX-License-Identifier: MIT */
/*
 * Grow areas (lib/grow.c): address space reserved per thread for large
 * blocks that realloc grows. A block that a realloc moves past the L2.5
 * pool (256 KiB) gets a slot of HAK_GROW_SLOT bytes of address space in its
 * thread's area, and grows in it up to the slot's length with no system
 * call: no mmap lock taken for writing while other threads fault.
 *
 * The large registry (lib/large.c) keeps these blocks as it keeps every
 * large block (entry->area set); the functions here only account for the
 * slots. None is called with a registry shard lock held.
 */
#ifndef HAK_GROW_H
#define HAK_GROW_H

#include <stddef.h>
#include <stdbool.h>
#include <hak/compiler.h>

/*
 * Address space per block. 1 MiB, not 2: a block that outgrows its slot is
 * copied out, and a free slot keeps its pages for the next block, so the
 * larger the slot the more a chain of big steps leaves resident next to
 * BigCache's stock (realloc-large at fixed work, 1 thread: peak RSS 126 MB
 * on the old path, 144 with 2 MiB slots, 123 with 1 MiB).
 */
#define HAK_GROW_SLOT	((size_t)1 << 20)

/*
 * A slot for a block of *len bytes (page multiple, at most HAK_GROW_SLOT),
 * its first *len bytes counted as mapped (memory limit, fault injection
 * site HAK_OS_MAP); NULL when there is none (no area, all slots taken,
 * the limit refused, the feature is off). Its pages may be resident and
 * hold old data (not zeroed). *fresh: the bytes newly counted. With guard
 * pages a slot whose guard page is already a little past *len gives the
 * block that length (*len grows).
 */
void *__hak_grow_take(size_t *len, size_t *fresh) __must_check;
/*
 * Resize the block at p (a slot's start) from old_len to *new_len bytes
 * (both page multiples) in place. false when refused (past HAK_GROW_SLOT,
 * memory limit, fault injection, a guard call failed): nothing changed.
 * *fresh: the bytes newly counted (pages never touched since the last
 * purge). With guard pages a growth is given up to twice old_len (*new_len
 * grows): each resize moves the guard (two calls).
 */
bool __hak_grow_resize(void *p, size_t old_len, size_t *new_len, size_t *fresh) __must_check;
/* The block at p (a slot's start) is freed: its slot may be reused. */
void __hak_grow_free(void *p);
/* Free slots unused for delay ms purged; bytes released. */
size_t __hak_grow_decay(unsigned now, unsigned delay);
/* Every free slot purged now; bytes released. */
size_t __hak_grow_release(void);
/* The calling thread exits: its area goes to the next thread that needs one. */
void __hak_grow_detach(void);

struct hak_grow_stats {
	size_t areas;		/* areas reserved now (trim gives unused ones back) */
	size_t live;		/* slots holding a block */
	size_t committed;	/* bytes counted as mapped (live and free slots) */
	size_t takes;		/* blocks placed in a slot */
	size_t grows;		/* resizes in place */
	size_t refused;		/* takes that found no slot (the block went elsewhere) */
	size_t purged;		/* bytes purged from free slots */
};
void __hak_grow_stats(struct hak_grow_stats *st);
/* Resident bytes of the areas, live and free slots (mincore, for the statistics). */
struct hak_os_rss;
size_t __hak_grow_resident(struct hak_os_rss *r);

bool __hak_grow_fork_prepare(void);
void __hak_grow_fork_parent(void);
void __hak_grow_fork_child(void);

#endif /* HAK_GROW_H */
