/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the BigCache box (CONFIG_HAK_BIGCACHE).
 *
 * lib/large.c asks the cache before mapping and offers it every block it is
 * about to unmap:
 *   hak_bigcache_take(len, align, &got, &zeroed)  a cached mapping of at least
 *       len bytes (and at most a little more), aligned to align, or NULL;
 *       *got is its real length, *zeroed whether it reads as zero;
 *   hak_bigcache_take_grow(len, &got, &zeroed)  as take, for a realloc
 *       growth's copy: exactly len bytes, the rest left cached after it;
 *   hak_bigcache_take_at(addr, min, len, &got)  the cached block that
 *       starts at addr, when at least min bytes long (its head of len
 *       bytes when longer, all of it when shorter), or NULL: lib/large.c
 *       grows a block in place over it;
 *   hak_bigcache_take_shorter(len, &got)  after a miss: the longest resident
 *       cached block shorter than len (whole), or NULL: lib/large.c grows
 *       it to len where it lies (its pages stay, only the rest is fresh)
 *       or, when the address space next to it is taken, puts it back;
 *   hak_bigcache_put(p, len)   true when the cache kept the mapping (the
 *       caller must not unmap it), false to unmap;
 *   hak_bigcache_offset(len)   a realloc growth adds len fresh bytes to
 *       the footprint: unmap up to about len bytes of stale cached blocks
 *       (no take chose them for a while) so they do not stay on top of it;
 *   hak_bigcache_offset_miss(fresh, live)  a malloc's miss adds fresh
 *       bytes, live bytes are in large blocks (the new one included): the
 *       same for the part that lifts live + resident cached bytes over
 *       their highest at any miss so far;
 *   hak_bigcache_release()     give every cached mapping back (trim);
 *   hak_bigcache_resident(r)   bytes of cached blocks the kernel holds
 *       (lib/os.h, struct hak_os_rss; statistics only);
 *   hak_bigcache_decay(now, delay)  the core's decay pass at time now,
 *       with the delay it uses for every cache (HAKMEM_PURGE_DELAY_MS, or
 *       the longer one learned from refaults while the program is busy):
 *       purge the blocks unused for longer than it (the box's operations
 *       use it too until the next pass), and idle blocks while the rest of
 *       the process grows past its high-water mark (the growth rule,
 *       bigcache.c); bytes purged;
 *   hak_bigcache_init()        apply HAKMEM_BIGCACHE_MAX (__hak_opt);
 *   fork hooks                 the cache's locks around fork().
 * With the box off nothing is cached.
 */
#ifndef HAK_BOX_BIGCACHE_H
#define HAK_BOX_BIGCACHE_H

#include <stddef.h>
#include <stdbool.h>
#include <hak/compiler.h>

struct hak_os_rss;	/* lib/os.h: only pointers to it cross this header */

struct hak_bigcache_stats {
	size_t hits, misses, puts, evictions;
	size_t cached_blocks, cached_bytes;
	size_t buckets;
	size_t refused;		/* puts refused (too big, bound 0, no metadata) */
	size_t purges;		/* blocks released with madvise, ever */
	size_t purged_bytes;	/* and their bytes */
	size_t resident_bytes;	/* cached bytes not purged */
	size_t peak_bytes;	/* most cached_bytes since the bound was set */
	size_t max_bytes;	/* the bound (HAKMEM_BIGCACHE_MAX) */
	size_t grows, shrinks;	/* hash table resizes, ever */
	size_t peak_buckets;	/* largest table so far */
	size_t splits;		/* hits that kept the tail of a longer block */
	size_t merges;		/* cached neighbours a put absorbed */
	size_t extends;		/* take_at hits: blocks grown in place */
	size_t shorter;		/* misses that took a shorter block to grow */
	size_t offsets;		/* stale blocks unmapped as fresh pages came (in evictions) */
	size_t foot_peak;	/* most live large + resident cached bytes at a miss */
	size_t proc_peak;	/* most of the process's footprint (growth rule) */
	size_t paid;		/* idle blocks purged as the rest of the process grew */
	size_t paid_back;	/* takes that handed out such a block's pages again */
};

#if IS_ENABLED(CONFIG_HAK_BIGCACHE)
#define HAK_BIGCACHE_DEFAULT_MAX	((size_t)CONFIG_HAK_BIGCACHE_MAX_MB << 20)
void *hak_bigcache_take(size_t len, size_t align, size_t *got, bool *zeroed);
void *hak_bigcache_take_grow(size_t len, size_t *got, bool *zeroed);
void *hak_bigcache_take_at(void *addr, size_t min, size_t len, size_t *got);
void *hak_bigcache_take_shorter(size_t len, size_t *got);
bool hak_bigcache_put(void *p, size_t len);
void hak_bigcache_offset(size_t len);
void hak_bigcache_offset_miss(size_t fresh, size_t live);
size_t hak_bigcache_release(void);
size_t hak_bigcache_decay(unsigned now, unsigned delay);
void hak_bigcache_stats(struct hak_bigcache_stats *st);
size_t hak_bigcache_resident(struct hak_os_rss *r);
void hak_bigcache_init(void);
bool hak_bigcache_fork_prepare(void);
void hak_bigcache_fork_parent(void);
void hak_bigcache_fork_child(void);
#else
#define HAK_BIGCACHE_DEFAULT_MAX	0
static inline void *hak_bigcache_take(size_t len, size_t align, size_t *got,
				      bool *zeroed)
{
	(void)len; (void)align; (void)got; (void)zeroed;
	return NULL;
}
static inline void *hak_bigcache_take_grow(size_t len, size_t *got, bool *zeroed)
{
	(void)len; (void)got; (void)zeroed;
	return NULL;
}
static inline void *hak_bigcache_take_at(void *addr, size_t min, size_t len, size_t *got)
{
	(void)addr; (void)min; (void)len; (void)got;
	return NULL;
}
static inline void *hak_bigcache_take_shorter(size_t len, size_t *got)
{
	(void)len; (void)got;
	return NULL;
}
static inline bool hak_bigcache_put(void *p, size_t len)
{
	(void)p; (void)len;
	return false;
}
static inline void hak_bigcache_offset(size_t len) { (void)len; }
static inline void hak_bigcache_offset_miss(size_t fresh, size_t live)
{
	(void)fresh;
	(void)live;
}
static inline size_t hak_bigcache_release(void) { return 0; }
static inline size_t hak_bigcache_decay(unsigned now, unsigned delay)
{
	(void)now;
	(void)delay;
	return 0;
}
static inline void hak_bigcache_stats(struct hak_bigcache_stats *st)
{
	*st = (struct hak_bigcache_stats){ 0 };
}
static inline size_t hak_bigcache_resident(struct hak_os_rss *r)
{
	(void)r;
	return 0;
}
static inline void hak_bigcache_init(void) { }
static inline bool hak_bigcache_fork_prepare(void) { return true; }
static inline void hak_bigcache_fork_parent(void) { }
static inline void hak_bigcache_fork_child(void) { }
#endif

#endif /* HAK_BOX_BIGCACHE_H */
