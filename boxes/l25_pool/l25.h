/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the L2.5 pool box (CONFIG_HAK_L25_POOL).
 *
 * Mid-size requests (above the largest small class, up to
 * CONFIG_HAK_L25_MAX_KIB) go to the pool when the box is on; otherwise they
 * are large blocks. The pool's memory is in 2 MiB regions registered in
 * the superslab registry with kind HAK_SSMAP_L25, so ownership is one byte
 * load like everything else:
 *   hak_l25_wants(n)       n is in the pool's range (inline, constant-folded);
 *   hak_l25_alloc(n)       a block, or NULL with errno unchanged (the
 *                          caller retries after a purge, then sets ENOMEM);
 *   hak_l25_alloc_zero(n, &z)  hak_l25_alloc that sets z when the block
 *                          reads as zero (taken clean: never touched, or
 *                          purged), so calloc need not write it;
 *   hak_l25_alloc_cached(n)  a block from the calling thread's cache, or
 *                          NULL: no lock, no system call, no clock read;
 *   hak_l25_free(p)        p is in an L2.5 region: free it; true when it
 *                          only went into the thread cache (the same
 *                          promise; the core's purge tick runs on every
 *                          other mid-size free and allocation);
 *   hak_l25_usable(p)      usable bytes of p (in an L2.5 region): its
 *                          class (with the hardened box a guard page
 *                          follows it in its slot);
 *   hak_l25_release(spare) flush the calling thread's cache, give empty
 *                          pages back, purge other threads' cached blocks
 *                          in place but those cached within spare ms
 *                          (malloc_trim: the purge delay; 0: every one,
 *                          for the memory limit and a failed allocation's
 *                          retry), bytes released;
 *   hak_l25_decay(now, delay)  purge the free blocks unused for delay ms
 *                          (HAK_L25_HOLD delays for a class taken within
 *                          as long, down to what it took recently) and the
 *                          blocks cached that long in any thread's cache
 *                          (the core's decay pass), bytes released;
 *   fork hooks.
 */
#ifndef HAK_BOX_L25_POOL_H
#define HAK_BOX_L25_POOL_H

#include <stddef.h>
#include <stdbool.h>
#include <hak/compiler.h>
#include "box.h"

struct hak_l25_stats {
	size_t regions, shards, blocks_in_use, bytes_in_use;
	size_t allocs, frees, remote_frees, pages_released;
	size_t shard_cap;	/* most shards this process may grow to */
	size_t shard_grows;	/* times the shard count doubled */
	size_t contended;	/* shard locks that had to wait */
	size_t dirty_bytes;	/* freed blocks not yet given back */
	size_t purged_bytes;	/* bytes given back with madvise, ever */
	size_t cap_purged_bytes; /* of which at the size bound (not the delay) */
	size_t tc_purged_bytes;	/* of which of blocks in thread caches (any thread's) */
	size_t reserve_bytes;	/* free longer than the delay, kept resident by the */
				/* last decay pass (their class is in demand) */
	size_t reserve_passes;	/* shard passes that kept some, ever */
	size_t handed;		/* wholly free resident regions another shard took, ever */
	size_t region_maps;	/* 2 MiB regions mapped, ever */
	size_t region_unmaps;	/* and unmapped */
	size_t pooled;		/* empty purged regions kept in reserve */
	size_t cached;		/* blocks in the calling thread's cache */
	size_t map_calls;	/* mmap calls that made regions, ever */
	size_t reserved_bytes;	/* mapped ahead, not yet a region */
};

/*
 * Purge delays a class taken within that many keeps its free blocks
 * before the pass purges them down to the re-take reserve (l25.c, "The
 * re-take rule"); a class not taken for as long is purged at the delay.
 */
#define HAK_L25_HOLD	3

#if IS_ENABLED(CONFIG_HAK_L25_POOL)
static __always_inline bool hak_l25_wants(size_t n)
{
	return n > HAK_SMALL_MAX && n <= ((size_t)CONFIG_HAK_L25_MAX_KIB << 10);
}
void *hak_l25_alloc(size_t n);
void *hak_l25_alloc_zero(size_t n, bool *zero);
void *hak_l25_alloc_cached(size_t n);
bool hak_l25_free(void *p);
size_t hak_l25_usable(const void *p);
size_t hak_l25_release(unsigned spare_ms);
size_t hak_l25_decay(unsigned now, unsigned delay);
void hak_l25_stats(struct hak_l25_stats *st);
bool hak_l25_fork_prepare(void);
void hak_l25_fork_parent(void);
void hak_l25_fork_child(void);
/* Selftests only: half a remote free (step 1), then its push (step 2). */
int __hak_l25_test_remote_free(void *p, int step);
#else
static __always_inline bool hak_l25_wants(size_t n)
{
	(void)n;
	return false;
}
static inline void *hak_l25_alloc(size_t n)
{
	(void)n;
	return NULL;
}
static inline void *hak_l25_alloc_zero(size_t n, bool *zero)
{
	(void)n;
	*zero = false;
	return NULL;
}
static inline void *hak_l25_alloc_cached(size_t n)
{
	(void)n;
	return NULL;
}
static inline bool hak_l25_free(void *p)
{
	(void)p;
	return false;
}
static inline size_t hak_l25_usable(const void *p)
{
	(void)p;
	return 0;
}
static inline size_t hak_l25_release(unsigned spare_ms)
{
	(void)spare_ms;
	return 0;
}
static inline size_t hak_l25_decay(unsigned now, unsigned delay)
{
	(void)now; (void)delay;
	return 0;
}
static inline void hak_l25_stats(struct hak_l25_stats *st)
{
	*st = (struct hak_l25_stats){ 0 };
}
static inline bool hak_l25_fork_prepare(void) { return true; }
static inline void hak_l25_fork_parent(void) { }
static inline void hak_l25_fork_child(void) { }
#endif

#endif /* HAK_BOX_L25_POOL_H */
