/* SPDX-License-Identifier: MIT */
/*
 * Large blocks: requests above the small classes, each its own mapping,
 * registered in a sharded hash table keyed by the block's address. The
 * registry is the only record of a large block, so free() of a pointer that
 * is neither in a superslab nor registered here is provably not ours.
 *
 * Blocks are page-aligned (or aligned as asked); usable size is the mapping
 * from the block to its end.
 */
#ifndef HAK_LARGE_H
#define HAK_LARGE_H

#include <stddef.h>
#include <stdbool.h>
#include <hak/compiler.h>

/*
 * The part of a new large block that may hold old data: [off, off + len)
 * (len 0: it all reads as 0; len SIZE_MAX: any of it may not). A block
 * grown from a shorter cached one, or filled with cached pages, is old only
 * where those pages went; the rest is fresh, so calloc clears just this
 * part: clearing all of it faulted in every fresh page (gdk-pixbuf's
 * pixbuf-jpeg, a 12 GiB calloc grown from a cached 39 MiB block: 12 GiB
 * resident where glibc touches nothing).
 */
struct hak_large_dirty {
	size_t off, len;
};

/* NULL with errno ENOMEM on failure; *dirty: what may not read as 0. */
void *__hak_large_alloc(size_t n, size_t align, struct hak_large_dirty *dirty) __must_check;
/*
 * Same, for a block realloc moves to the large path as it grows: placed in
 * a slot of the thread's grow area when it can (lib/grow.h).
 */
void *__hak_large_alloc_grow(size_t n, struct hak_large_dirty *dirty) __must_check;
/* false when p is not a registered large block. */
bool __hak_large_free(void *p);
/* Usable bytes of p, or 0 when p is not a registered large block. */
size_t __hak_large_usable(const void *p);
/*
 * Resize to n bytes in place or by moving the mapping (mremap). A growth
 * in place over a cached range may stop short of n at no fewer than least
 * bytes (least <= n: the caller's request, n with its headroom). NULL when
 * it cannot: the block is then untouched and still registered.
 */
void *__hak_large_resize(void *p, size_t n, size_t least) __must_check;

/*
 * Give mappings kept by the BigCache box, and the grow areas' free slots,
 * back to the OS; bytes released.
 */
size_t __hak_large_release_cache(void);
size_t __hak_large_decay(unsigned now, unsigned delay);
extern size_t __hak_large_whole_min;

struct hak_large_stats {
	size_t blocks;		/* live large blocks */
	size_t bytes;		/* bytes mapped for them */
	size_t maps;		/* total mappings made */
	size_t unmaps;		/* total mappings released */
	size_t moves;		/* growths that moved the pages to a new mapping */
	size_t move_fails;	/* moves the kernel refused (then a copy) */
	size_t fills;		/* cached blocks moved into a miss's new block */
	size_t wholes_kept;	/* freed whole blocks' mappings kept (grow_whole) */
	size_t whole_bytes;	/* their bytes */
	size_t whole_takes;	/* kept mappings taken by a block growing whole */
	size_t whole_maps;	/* fresh mappings made for one */
};
void __hak_large_stats(struct hak_large_stats *st);
/*
 * Resident bytes (mincore, for the statistics): of the live blocks that
 * have their own mapping (a grow area's are the area's: lib/grow.h), and
 * of the kept whole mappings. Each shard is walked under its lock.
 */
struct hak_os_rss;
void __hak_large_resident(struct hak_os_rss *r, size_t *live, size_t *kept);

bool __hak_large_fork_prepare(void);
void __hak_large_fork_parent(void);
void __hak_large_fork_child(void);

#endif /* HAK_LARGE_H */
