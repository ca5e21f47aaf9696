// SPDX-License-Identifier: MIT
/*
 * Large-block registry: 16 shards, each a chained hash table under its own
 * lock, keyed by block address (= mapping start: aligned requests are
 * trimmed to their alignment by the OS layer, so there is no offset).
 * Entries come from the metadata arena and are recycled per shard. A table
 * doubles when it holds more entries than buckets; if the OS refuses the
 * memory, chains just grow longer.
 *
 * With the BigCache box, a block about to be unmapped is offered to the
 * cache instead, and a new block is looked for there first; a cached
 * mapping is not registered (it is no block until handed out again). A
 * growing block first asks for the cached range right after it and, when
 * it gets it, just extends its entry (no system call, resident pages). A
 * miss grows the longest shorter resident cached block where it lies,
 * when the address space next to it is free, before it maps a fresh one
 * (grow_shorter).
 *
 * Whole blocks (grow_whole): a block that realloc grows past 2 MiB moves
 * once into a mapping of its own (kept from an earlier whole block, or
 * fresh) and grows from then on over that mapping's tail and by mremap of
 * it (entry->map: the mapping's bytes, entry->len the block's); freed, the
 * mapping is kept whole, apart from BigCache, for the next such block.
 * With the hardened box the mapping holds the block's guard page, right
 * after the block (entry->guard) wherever its end is inside the mapping,
 * moved at every change of its length (whole_guard). Not under valgrind.
 *
 * With the hardened box, a block's mapping ends in a guard page (PROT_NONE,
 * right after the block: entry->guard says it is there), so a linear
 * overflow off the end faults. A cached range keeps its guard: BigCache
 * takes only guarded blocks, and every range it hands out is followed by
 * one. Growth over the cached range after a block goes over the block's
 * own guard first (the range after it starts a page later), and mremap
 * moves the guard with the block.
 *
 * Usable size without the lock: realloc asks for the usable size of a
 * large block at every call, and taking its shard lock for it was 13% of
 * realloc-chain's profile. Each shard has a sequence count, odd while a
 * writer (under the lock) links or unlinks an entry or grows the table;
 * __hak_large_usable walks the chain with acquire loads and keeps the
 * answer only if the count was even and unchanged around the walk, else it
 * takes the lock. For that the walk must never fault and never see a torn
 * word: entries live in the metadata arena (never unmapped), a grown
 * table's old array is kept, not unmapped (the old arrays of a shard add up
 * to less than its current one), and every store to a field the walk
 * reads (key, len, next, the bucket heads, tab, bits) is a release store.
 * A walk that meets a recycled entry only wastes its time: the entry's
 * unlink changed the count. The walk gives up after WALK_MAX entries.
 *
 * Per-thread memo: a thread that reallocs the same few blocks over and
 * over (string builders, vectors: realloc-chain's in-place steps, 57% of
 * its calls, were a 54-instruction walk over 3 dependent cache lines each)
 * keeps MEMO_N (key, len, seq) triples of its own lookups. One is still
 * true while its shard's count is the seq it was read at: every change of
 * a block's len happens while its entry is unlinked (resize, free), and
 * unlinking bumps the count. A block freed and mapped again at the same
 * address has passed through two unlinks. (After exactly 2^32 count
 * changes a stale triple would pass; a shard changes a few times per
 * mapping or mremap, so that is hours of nothing but system calls between
 * two reallocs of one block.)
 *
 * Grow areas (lib/grow.c): a block that realloc moves past the L2.5 pool
 * is placed in a slot of its thread's reserved area instead of a mapping
 * of its own (entry->area), and grows there to HAK_GROW_SLOT with no
 * system call (hardened: a guard page right after the block, moved by a
 * resize, which is given room to spare so that few resizes move it);
 * past it, it is copied out to a block of this file's usual kind
 * (area_move_out). Free and usable size go through the registry as
 * for any block; the area's functions are called with no shard lock held.
 *
 * Lock order: shard lock -> meta_lock. No other lock is held with a shard.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <asm/atomic.h>
#include <asm/processor.h>
#include "init.h"
#include "grow.h"
#include "large.h"
#include "lock.h"
#include "meta.h"
#include "os.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"

#define NSHARD_BITS	4
#define NSHARD		(1u << NSHARD_BITS)
#define INIT_BITS	6
#define WALK_MAX	64
#define MEMO_BITS	5
#define MEMO_N		(1u << MEMO_BITS)

struct large_ent {
	uintptr_t key;
	size_t len;
	size_t guard;		/* bytes of the guard page after it, or 0 */
	struct large_ent *next;
	bool area;		/* in a grow area's slot (lib/grow.c), not a mapping */
	size_t map;		/* whole block: its mapping's bytes (grow_whole), or 0 */
};

struct large_shard {
	struct hak_lock lock;
	unsigned seq;		/* odd while the chains or the table change */
	struct large_ent **tab;
	unsigned bits;
	size_t count;
	size_t bytes;
	size_t maps, unmaps;
	size_t moves, move_fails, fills;
	struct large_ent *spare;
	struct large_ent *init_tab[1u << INIT_BITS];
} __aligned(ARCH_CACHE_LINE);

static struct large_shard shards[NSHARD];

struct large_memo {
	uintptr_t key;
	size_t len;
	unsigned seq;
};

static __thread struct large_memo memo[MEMO_N] __attribute__((tls_model("initial-exec")));

static inline uint64_t key_hash(uintptr_t key)
{
	return (uint64_t)(key >> 12) * 0x9e3779b97f4a7c15ULL;
}

static struct large_shard *shard_of(uintptr_t key)
{
	return &shards[key_hash(key) >> (64 - NSHARD_BITS)];
}

static inline unsigned bucket_index(uintptr_t key, unsigned bits)
{
	return (unsigned)(key_hash(key) >> 24) & ((1u << bits) - 1);
}

/*
 * tab is stored before bits (both release): a lock-free reader loads bits
 * first, so its index is never beyond the table it then loads.
 */
static struct large_ent **bucket(struct large_shard *sh, uintptr_t key)
{
	if (!sh->tab) {
		arch_store_release(&sh->tab, sh->init_tab);
		arch_store_release(&sh->bits, INIT_BITS);
	}
	return &sh->tab[bucket_index(key, sh->bits)];
}

/*
 * Writer side of the sequence count; the shard lock is held. The stores
 * between begin and end are release stores, so none is seen before the odd
 * count.
 */
static inline void seq_begin(struct large_shard *sh)
{
	arch_store_relaxed(&sh->seq, sh->seq + 1);
}

static inline void seq_end(struct large_shard *sh)
{
	arch_store_release(&sh->seq, sh->seq + 1);
}

/* A field the lock-free walk reads, written while it may be walking. */
#define ent_store(field, v)	arch_store_release(&(field), (v))

static void grow(struct large_shard *sh)
{
	unsigned bits = sh->bits + 1, i;
	size_t n = (size_t)1 << bits;
	struct large_ent **old = sh->tab, **tab;

	tab = __hak_os_map(HAK_ALIGN_UP(n * sizeof(*tab), HAK_OS_PAGE));
	if (!tab)
		return;
	/* filled before it is published: no reader sees it half built */
	for (i = 0; i < (1u << (bits - 1)); i++) {
		struct large_ent *e = old[i], *next;

		for (; e; e = next) {
			struct large_ent **b = &tab[bucket_index(e->key, bits)];

			next = e->next;
			ent_store(e->next, *b);
			*b = e;
		}
	}
	arch_store_release(&sh->tab, tab);
	arch_store_release(&sh->bits, bits);
	/* the old array is kept: a lock-free reader may still be in it */
}

/* Link e (key and len set) into its shard. */
static void ent_link(struct large_ent *e)
{
	struct large_shard *sh = shard_of(e->key);
	struct large_ent **b;

	hak_lock(&sh->lock);
	seq_begin(sh);
	if (sh->tab && sh->count >= ((size_t)1 << sh->bits))
		grow(sh);
	b = bucket(sh, e->key);
	ent_store(e->next, *b);
	ent_store(*b, e);
	seq_end(sh);
	sh->count++;
	arch_store_relaxed(&sh->bytes, sh->bytes + e->len);	/* live_bytes() */
	hak_unlock(&sh->lock);
}

/* Unlink and return key's entry, NULL when key is not registered. */
static struct large_ent *ent_take(uintptr_t key)
{
	struct large_shard *sh = shard_of(key);
	struct large_ent **pp, *e;

	hak_lock(&sh->lock);
	for (pp = bucket(sh, key); (e = *pp); pp = &e->next) {
		if (e->key != key)
			continue;
		seq_begin(sh);
		ent_store(*pp, e->next);
		seq_end(sh);
		sh->count--;
		arch_store_relaxed(&sh->bytes, sh->bytes - e->len);
		break;
	}
	hak_unlock(&sh->lock);
	return e;
}

/*
 * A spare entry of key's shard, or a new one (not whole: map 0); counts a
 * mapping if mapped.
 */
static struct large_ent *ent_get(uintptr_t key, bool mapped)
{
	struct large_shard *sh = shard_of(key);
	struct large_ent *e;

	hak_lock(&sh->lock);
	e = sh->spare;
	if (e)
		sh->spare = e->next;
	else
		e = __hak_meta_alloc(sizeof(*e));
	if (e && mapped)
		sh->maps++;
	hak_unlock(&sh->lock);
	if (e)
		e->map = 0;
	return e;
}

/* Recycle e into its shard's spare list; counts an unmapping if unmapped. */
static void ent_put(struct large_ent *e, bool unmapped)
{
	struct large_shard *sh = shard_of(e->key);

	hak_lock(&sh->lock);
	ent_store(e->next, sh->spare);
	sh->spare = e;
	if (unmapped)
		sh->unmaps++;
	hak_unlock(&sh->lock);
}

static inline size_t large_len(size_t n)
{
	return HAK_ALIGN_UP(n ? n : 1, HAK_OS_PAGE);
}

/*
 * A fresh mapping for a len-byte block, with a guard page after it when
 * the hardened box is on and its budget allows (*guard: its bytes, or 0).
 */
static void *map_block(size_t len, size_t align, size_t *guard)
{
	size_t g = hak_hd_guard_len();
	void *p = __hak_os_map_aligned(len + g, align);

	if (p && g && !hak_hd_guard_set((char *)p + len)) {
		__hak_os_unmap((char *)p + len, g);
		g = 0;
	}
	*guard = g;
	return p;
}

static void unmap_block(void *p, size_t len, size_t guard)
{
	__hak_os_unmap(p, len + guard);
	if (guard)
		hak_hd_guard_gone(1);
}

/*
 * Offer a freed block to BigCache: true when it kept it. With the hardened
 * box it takes only guarded blocks (every cached range is followed by its
 * guard, so the ranges it hands out are too).
 */
static bool cache_put(void *p, size_t len, size_t guard)
{
	if (hak_hd_guard_len() && !guard)
		return false;
	return hak_bigcache_put(p, len);
}

/*
 * Whole blocks: a block that realloc grows past __hak_large_whole_min
 * gets a mapping of its own (one kernel mapping, never split or joined by
 * BigCache) and grows from then on by mremap of that mapping, which moves
 * page tables, not bytes (growth into a cached block copied the whole
 * block every 50%, and BigCache's ranges, split and joined anywhere, could
 * not be mremapped). Freed, the mapping is kept whole here, not in
 * BigCache: the next block that grows past the threshold takes the
 * longest one and grows over its resident pages with no copy and no page
 * fault. At most WHOLE_N of them, each at most a quarter of BigCache's
 * bound and together at most the bound; beyond that the shortest goes to
 * BigCache as ordinary stock (where the chains below 2 MiB use it). With
 * half the bound, realloc-large at 2 threads made 3-3.6x the page faults:
 * mappings kept 32-48 MiB long went to BigCache, were split, and fresh
 * ones were mapped. Unused for the purge delay, they are unmapped.
 * Documentation/boxes/bigcache.md, "Whole blocks".
 */
#define WHOLE_N		8

/* 2 MiB; SIZE_MAX: none (the selftests of the page move set it) */
size_t __hak_large_whole_min = 2u << 20;

/*
 * A kept mapping: len bytes at p; with guard pages, its guard (guard bytes,
 * or none: 0) where the freed block ended, at p + at. A whole block's
 * mapping always has room for a guard after the block (len >= at +
 * hak_hd_guard_len()), so a guard can be put after it whatever its length.
 */
struct whole_map {
	char *p;
	size_t len;
	size_t at, guard;
	unsigned stamp;
};

static struct {
	struct hak_lock lock;
	unsigned n;
	size_t bytes;
	size_t takes, maps;
	struct whole_map m[WHOLE_N + 1];	/* one more while whole_put trims */
} wholes = { .lock = HAK_LOCK_INIT };

static void whole_unmap(const struct whole_map *w)
{
	__hak_os_unmap(w->p, w->len);
	if (w->guard)
		hak_hd_guard_gone(1);
}

/*
 * Give a whole mapping up: to BigCache as ordinary stock, else unmapped.
 * With a guard, BigCache gets the part before it (its ranges end at their
 * guard); the rest after the guard is unmapped first, while it is ours.
 */
static void whole_drop(const struct whole_map *w)
{
	size_t end = w->at + w->guard;

	if (w->guard) {
		if (w->len > end)
			__hak_os_unmap(w->p + end, w->len - end);
		if (!cache_put(w->p, w->at, w->guard))
			unmap_block(w->p, w->at, w->guard);
		return;
	}
	if (!cache_put(w->p, w->len, 0))
		whole_unmap(w);
}

/*
 * A freed whole block's mapping (p, len bytes; its guard, guard bytes or
 * 0, at p + at), kept; the shortest kept ones given up while there are
 * too many.
 */
static void whole_put(char *p, size_t len, size_t at, size_t guard)
{
	struct whole_map out[WHOLE_N + 1];
	size_t max = __hak_opt.bigcache_max;
	unsigned i, k = 0, min;

	out[0] = (struct whole_map){ p, len, at, guard, __hak_now_ms() };
	if (len > max / 4) {
		whole_drop(&out[0]);
		return;
	}
	hak_lock(&wholes.lock);
	wholes.m[wholes.n++] = out[0];
	wholes.bytes += len;
	while (wholes.n > WHOLE_N || wholes.bytes > max) {
		for (min = 0, i = 1; i < wholes.n; i++)
			if (wholes.m[i].len < wholes.m[min].len)
				min = i;
		out[k++] = wholes.m[min];
		wholes.bytes -= wholes.m[min].len;
		wholes.m[min] = wholes.m[--wholes.n];
	}
	hak_unlock(&wholes.lock);
	for (i = 0; i < k; i++)
		whole_drop(&out[i]);
}

/* The longest kept whole mapping, or false. */
static bool whole_take(struct whole_map *w)
{
	unsigned i, max = 0;

	hak_lock(&wholes.lock);
	if (!wholes.n) {
		hak_unlock(&wholes.lock);
		return false;
	}
	for (i = 1; i < wholes.n; i++)
		if (wholes.m[i].len > wholes.m[max].len)
			max = i;
	*w = wholes.m[max];
	wholes.bytes -= w->len;
	wholes.takes++;
	wholes.m[max] = wholes.m[--wholes.n];
	hak_unlock(&wholes.lock);
	return true;
}

/* Unmap the kept mappings unused for delay ms (all with delay 0): bytes. */
static size_t whole_release(unsigned now, unsigned delay)
{
	struct whole_map out[WHOLE_N];
	unsigned i = 0, k = 0;
	size_t bytes = 0;

	hak_lock(&wholes.lock);
	while (i < wholes.n) {
		if (delay && __hak_ms_age(now, wholes.m[i].stamp) < delay) {
			i++;
			continue;
		}
		out[k++] = wholes.m[i];
		wholes.bytes -= wholes.m[i].len;
		wholes.m[i] = wholes.m[--wholes.n];
	}
	hak_unlock(&wholes.lock);
	for (i = 0; i < k; i++) {
		whole_unmap(&out[i]);
		bytes += out[i].len;
	}
	return bytes;
}

size_t __hak_large_decay(unsigned now, unsigned delay)
{
	return whole_release(now, delay);
}

/*
 * Bytes in live large blocks, all shards, read without their locks: an
 * estimate for hak_bigcache_offset_miss at a miss (which maps anyway).
 */
static size_t live_bytes(void)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < NSHARD; i++)
		n += arch_load_relaxed(&shards[i].bytes);
	return n;
}

/*
 * After a cache miss: a shorter resident cached block grown to len where it
 * lies (its pages stay, only len minus its length are fresh), or NULL. A
 * miss that maps len fresh bytes while shorter blocks sit cached and
 * resident adds its whole length to the footprint. The block grows up or
 * down into free address space (__hak_os_extend); when both sides are
 * taken it goes back to the cache; grown, its fresh part asks BigCache to
 * make room as a miss does (hak_bigcache_offset_miss). With guard pages it
 * grows down only:
 * the cached range's guard, right after it, then stays right after the
 * grown block (no mprotect; growing up would need the guard opened, the
 * range remapped over it and a new guard made). Not for alignments above
 * a page. *dirty: where the cached pages are in the grown block.
 */
static void *grow_shorter(size_t len, size_t align, struct hak_large_dirty *dirty)
{
	size_t got, g = hak_hd_guard_len();
	void *p, *q;

	if (align > HAK_OS_PAGE)
		return NULL;
	p = hak_bigcache_take_shorter(len, &got);
	if (!p)
		return NULL;
	q = __hak_os_extend(p, got, len, !g);
	if (q) {
		hak_bigcache_offset_miss(len - got, live_bytes() + len);
		dirty->off = q == p ? 0 : len - got;	/* grown up, or down */
		dirty->len = got;
	} else if (!cache_put(p, got, g))
		unmap_block(p, got, g);
	return q;
}

/*
 * A miss's new block p (len bytes, fresh; its guard page, if any, at
 * p + len) filled from the cache's fragments: the longest resident cached
 * blocks that fit in what is left (at least len/8 each, at most
 * FILL_PIECES of them) have their
 * pages moved onto it, one mremap each (__hak_os_move), instead of
 * faulting fresh pages while they stay cached and resident. A miss is a
 * request longer than every cached block, and in a churn of big buffers
 * the cache then often holds several times its length in shorter blocks
 * (large-replace: 24 MiB asked with 12 blocks of 2..21 MiB, 141 MiB,
 * cached): mapped fresh, each such miss added its whole length to the
 * footprint for good. Only while the cache holds at least FILL_STOCK
 * times len resident, so that twice len is left for the next requests:
 * with no such floor the fills took the stock the next requests needed,
 * misses rose 3x, and so did the moves, which cost about what page faults
 * do on the measuring machine (+7% CPU in large-replace).
 *
 * Returns p, or a new fresh block when the kernel gave part of p's range
 * to another thread (HAK_MOVE_LOST), or NULL when none can be mapped;
 * *dirty the pieces moved in (at its head), *filled their bytes (0 when
 * none); *guard: the returned block's guard page (map_block). With guard
 * pages a piece's guard stays where it was and is unmapped after the move:
 * p's own guard, after p + len, is the one the block keeps (a piece never
 * reaches it). Not under valgrind (as before guard pages were allowed,
 * 2026-12-02). The moved pieces
 * stay separate kernel mappings inside the block (munmap and madvise of
 * the block work; mremap growth of it fails and copies, as for a block
 * grown over a cached neighbour).
 */
#define FILL_PIECES	4
#define FILL_STOCK	3

static char *fill_from_cache(char *p, size_t len, size_t *guard,
			     struct hak_large_dirty *dirty, size_t *filled)
{
	struct large_shard *sh = shard_of(hak_vg_key(p));
	size_t off = 0, got, moved = 0, fails = 0, g = hak_hd_guard_len();
	struct hak_bigcache_stats st;
	unsigned i;
	char *c;

	*filled = 0;
	hak_bigcache_stats(&st);
	if (st.resident_bytes < FILL_STOCK * len)
		return p;
	for (i = 0; i < FILL_PIECES && len - off >= len / 8; i++) {
		c = hak_bigcache_take_shorter(len - off + 1, &got);
		if (!c)
			break;
		if (got < len / 8) {
			if (!cache_put(c, got, g))
				unmap_block(c, got, g);
			break;
		}
		switch (__hak_os_move(c, p + off, got)) {
		case HAK_MOVE_DONE:
			/* the piece's guard stayed behind, alone */
			if (g)
				unmap_block(c + got, 0, g);
			off += got;
			moved++;
			continue;
		case HAK_MOVE_KEPT:
			fails++;
			if (!cache_put(c, got, g))
				unmap_block(c, got, g);
			goto out;
		case HAK_MOVE_LOST:
			/* [p + off, + got) is not ours: give back the rest, map anew */
			fails++;
			if (!cache_put(c, got, g))
				unmap_block(c, got, g);
			if (off)
				unmap_block(p, off, 0);
			if (off + got < len)
				unmap_block(p + off + got, len - off - got, *guard);
			else if (*guard)
				unmap_block(p + len, 0, *guard);
			p = map_block(len, HAK_OS_PAGE, guard);
			moved = 0;
			goto out;
		case HAK_MOVE_SPLIT:
			__hak_report("mremap moved part of a cached block %p (%zu bytes) and failed: "
				     "the kernel left it split", c, got);
			abort();
		}
	}
out:
	*filled = moved ? off : 0;
	hak_lock(&sh->lock);
	sh->fills += moved;
	sh->move_fails += fails;
	hak_unlock(&sh->lock);
	dirty->off = 0;
	dirty->len = *filled;
	return p;
}

/*
 * Fill e in for the block p of len bytes (guard bytes after it; in a grow
 * area or not) and link it: every way a block enters the registry.
 */
static void *link_block(struct large_ent *e, void *p, size_t len, size_t guard, bool area)
{
	ent_store(e->key, hak_vg_key(p));
	ent_store(e->len, len);
	e->guard = guard;
	e->area = area;
	ent_link(e);
	return p;
}

void *__hak_large_alloc(size_t n, size_t align, struct hak_large_dirty *dirty)
{
	struct large_ent *e;
	size_t len, got, guard, filled = 0;
	bool cached, zeroed = false;
	void *p;

	if (n > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
		errno = ENOMEM;
		return NULL;
	}
	len = large_len(n);	/* n <= SIZE_MAX / 2: len plus a guard page cannot wrap */
	p = hak_bigcache_take(len, align, &got, &zeroed);
	if (p) {
		dirty->off = 0;
		dirty->len = zeroed ? 0 : SIZE_MAX;
	} else {
		p = grow_shorter(len, align, dirty);
		got = len;
	}
	cached = p != NULL;
	if (cached) {
		len = got;
		guard = hak_hd_guard_len();
	} else {
		p = map_block(len, align, &guard);
		if (!p)
			return NULL;
		dirty->off = dirty->len = 0;
		if (align <= HAK_OS_PAGE && !hak_vg_running()) {
			p = fill_from_cache(p, len, &guard, dirty, &filled);
			if (!p)
				return NULL;
		}
		hak_bigcache_offset_miss(len - filled, live_bytes() + len);
	}
	e = ent_get(hak_vg_key(p), !cached);
	if (!e) {
		unmap_block(p, len, guard);
		errno = ENOMEM;
		return NULL;
	}
	return link_block(e, p, len, guard, false);
}

/*
 * A growth that adds at least this many fresh bytes lets BigCache unmap as
 * many of its stale blocks (hak_bigcache_offset). Smaller ones (a chain of
 * 1..256-byte steps grows page by page with mremap once nothing cached
 * fits) would take the cache's lock for every page and find nothing stale.
 */
#define OFFSET_MIN	(64u << 10)

/*
 * Fresh pages counted for a grow area's block: stale cached blocks make
 * room, as for a growth by mremap (the stock the chains' earlier growth
 * took pieces of, before the areas, would otherwise stay whole).
 */
static void grow_offset(size_t fresh)
{
	if (fresh >= OFFSET_MIN)
		hak_bigcache_offset(fresh);
}

/*
 * A block that realloc moves out of the pool (or out of a small block)
 * and will likely grow on: a slot of this thread's grow area, where it
 * grows without system calls (lib/grow.c); else as __hak_large_alloc.
 */
void *__hak_large_alloc_grow(size_t n, struct hak_large_dirty *dirty)
{
	struct large_ent *e;
	size_t len, fresh;
	void *p;

	if (n > HAK_GROW_SLOT)
		return __hak_large_alloc(n, HAK_OS_PAGE, dirty);
	len = large_len(n);
	p = __hak_grow_take(&len, &fresh);
	if (!p)
		return __hak_large_alloc(n, HAK_OS_PAGE, dirty);
	grow_offset(fresh);
	e = ent_get(hak_vg_key(p), false);
	if (!e) {
		__hak_grow_free(p);
		errno = ENOMEM;
		return NULL;
	}
	dirty->off = 0;
	dirty->len = SIZE_MAX;
	return link_block(e, p, len, 0, true);
}

bool __hak_large_free(void *p)
{
	struct large_ent *e = ent_take(hak_vg_key(p));
	bool unmap;

	if (!e)
		return false;
	if (e->area) {
		__hak_grow_free(p);
		ent_put(e, false);
		return true;
	}
	if (e->map) {
		whole_put(p, e->map, e->len, e->guard);
		ent_put(e, false);
		return true;
	}
	unmap = !cache_put(p, e->len, e->guard);
	if (unmap)
		unmap_block(p, e->len, e->guard);
	ent_put(e, unmap);
	return true;
}

size_t __hak_large_release_cache(void)
{
	return whole_release(0, 0) + hak_bigcache_release() + __hak_grow_release();
}

/*
 * The lock-free lookup (see the top of the file): true with *len set when
 * the walk saw a stable shard, found or not.
 */
static bool usable_nolock(struct large_shard *sh, uintptr_t key, size_t *len,
			  unsigned *seqp)
{
	unsigned seq = arch_load_acquire(&sh->seq), bits, i;
	struct large_ent **tab, *e;
	size_t n = 0;

	if (seq & 1)
		return false;
	bits = arch_load_acquire(&sh->bits);
	tab = arch_load_acquire(&sh->tab);
	if (tab) {
		e = arch_load_acquire(&tab[bucket_index(key, bits)]);
		for (i = 0; e; i++) {
			if (i == WALK_MAX)
				return false;
			if (arch_load_acquire(&e->key) == key) {
				n = arch_load_acquire(&e->len);
				break;
			}
			e = arch_load_acquire(&e->next);
		}
	}
	if (arch_load_acquire(&sh->seq) != seq)
		return false;
	*len = n;
	*seqp = seq;
	return true;
}

/* The lookup past the memo: the lock-free walk, else under the lock. */
static __noinline size_t usable_walk(struct large_shard *sh, uintptr_t key,
				     struct large_memo *m)
{
	struct large_ent *e;
	size_t len = 0;
	unsigned seq;

	if (usable_nolock(sh, key, &len, &seq)) {
		if (len) {
			/*
			 * The key last: a signal handler that reallocs in
			 * between finds no key, not a new key's old len.
			 */
			m->key = 0;
			barrier();
			m->len = len;
			m->seq = seq;
			barrier();
			m->key = key;
		}
		return len;
	}
	hak_lock(&sh->lock);
	for (e = *bucket(sh, key); e; e = e->next) {
		if (e->key == key) {
			len = e->len;
			break;
		}
	}
	hak_unlock(&sh->lock);
	return len;
}

size_t __hak_large_usable(const void *p)
{
	uintptr_t key = hak_vg_key(p);
	uint64_t h = key_hash(key);
	struct large_shard *sh = &shards[h >> (64 - NSHARD_BITS)];
	struct large_memo *m = &memo[(h >> (64 - NSHARD_BITS - MEMO_BITS)) & (MEMO_N - 1)];

	if (likely(m->key == key && arch_load_acquire(&sh->seq) == m->seq))
		return m->len;
	return usable_walk(sh, key, m);
}

enum move_result { MOVED, COPY, NO_ROOM };

/*
 * Move e's block (at p, unlinked) onto the head of *q, a fresh mapping of
 * got bytes and *guard after them (the pages move, nothing is copied or
 * faulted). MOVED: p's range is gone (unmapped by mremap, maybe mapped by
 * another thread a moment later: never touched or unmapped here again,
 * only the old guard page after it is), e is recycled. COPY: not moved, p
 * intact, *q (maybe a new mapping, *guard with it) ready for the copy.
 * NO_ROOM: not moved, p intact, no mapping to copy into (nothing left
 * mapped).
 */
static enum move_result move_block(void *p, struct large_ent *e, void **q,
				   size_t got, size_t *guard)
{
	enum hak_os_move r = __hak_os_move(p, *q, e->len);
	struct large_shard *sh = shard_of(hak_vg_key(p));
	char *d = *q;

	hak_lock(&sh->lock);
	if (r == HAK_MOVE_DONE)
		sh->moves++;
	else
		sh->move_fails++;
	hak_unlock(&sh->lock);
	switch (r) {
	case HAK_MOVE_DONE:
		if (e->guard)
			unmap_block((char *)p + e->len, 0, e->guard);
		ent_put(e, true);
		return MOVED;
	case HAK_MOVE_KEPT:
		return COPY;
	case HAK_MOVE_LOST:
		/*
		 * The head of *q is not ours to use or unmap (another thread
		 * may have mapped it): give back the rest and map anew.
		 */
		unmap_block(d + e->len, got - e->len, *guard);
		*q = map_block(got, HAK_OS_PAGE, guard);
		return *q ? COPY : NO_ROOM;
	case HAK_MOVE_SPLIT:
		break;
	}
	__hak_report("mremap moved part of the large block %p (%zu bytes) and failed: "
		     "the kernel left it split", p, e->len);
	abort();
}

/*
 * The block a growth by copy of a block of old_len bytes to new_len goes
 * to, with its entry: half again old_len or new_len bytes, whichever is
 * more (a chain of small increments copies once per 50% of growth; *got:
 * its length), a resident cached block unless *fresh, else (or,
 * with map_on_miss, when the cache has none) a new mapping; *fresh says
 * which it is. A new mapping's fresh pages make stale cached blocks room
 * (hak_bigcache_offset), as a growth by mremap does. NULL when neither can
 * be had.
 */
static void *copy_target(size_t old_len, size_t new_len, bool *fresh, bool map_on_miss,
			 size_t *got, size_t *guard, struct large_ent **f)
{
	size_t want = large_len(old_len + old_len / 2);
	bool zeroed;
	void *q = NULL;

	if (want < new_len)
		want = new_len;
	if (!*fresh) {
		q = hak_bigcache_take_grow(want, got, &zeroed);
		*guard = hak_hd_guard_len();
		*fresh = !q && map_on_miss;
	}
	if (*fresh) {
		*guard = 0;
		q = map_block(want, HAK_OS_PAGE, guard);
		*got = want;
	}
	if (!q)
		return NULL;
	*f = ent_get(hak_vg_key(q), *fresh);
	if (!*f) {
		if (*fresh || !cache_put(q, *got, *guard))
			unmap_block(q, *got, *guard);
		return NULL;
	}
	if (*fresh && *got - old_len >= OFFSET_MIN)
		hak_bigcache_offset(*got - old_len);
	return q;
}

/*
 * Growth that cannot extend in place, by a copy: into a cached block
 * (resident pages; fresh == false) or a new mapping (fresh == true, when
 * mremap failed: the block spans two mappings, EFAULT). Preferred to
 * mremap, whose new pages are fresh (page faults) while the blocks freed
 * later fill the cache. A copy costs the old length, so the new block is at
 * least half again as long (a chain of small increments copies once per 50%
 * of growth, not once per page). e is p's entry, unlinked. NULL when
 * nothing fits (e untouched).
 *
 * Into a new mapping the old pages are moved, not copied, where the kernel
 * can (move_block): no page faults, no copy, and the old block is not left
 * behind resident.
 */
static void *grow_by_copy(void *p, struct large_ent *e, size_t new_len, bool fresh)
{
	size_t got = 0, guard = 0;
	struct large_ent *f;
	bool unmap;
	void *q;

	q = copy_target(e->len, new_len, &fresh, false, &got, &guard, &f);
	if (!q)
		return NULL;
	if (fresh) {
		switch (move_block(p, e, &q, got, &guard)) {
		case MOVED:
			goto link;
		case COPY:
			break;
		case NO_ROOM:
			ent_put(f, false);
			return NULL;
		}
	}
	memcpy(q, p, e->len);
	unmap = !cache_put(p, e->len, e->guard);
	if (unmap)
		unmap_block(p, e->len, e->guard);
	ent_put(e, unmap);
link:
	return link_block(f, q, got, guard, false);
}

/* Cached bytes a block (e) needs after its guard to reach len bytes. */
static size_t over_need(const struct large_ent *e, size_t len)
{
	size_t need = len - e->len;

	return need > e->guard + HAK_OS_PAGE ? need - e->guard : HAK_OS_PAGE;
}

/*
 * Grow e's block (at p, unlinked) in place over the cached range right
 * after it, to new_len bytes, or to what the range holds when that is at
 * least min_len (the caller's request: new_len adds the headroom): after
 * its guard, with one, which then joins the block (the range brings its
 * own guard). false when there is no such range.
 *
 * Taking a range shorter than the headroom saves a copy of the whole
 * block into a cached one (realloc-large, 1 thread, fixed work: copied
 * bytes -40%, CPU -27%; Documentation/boxes/bigcache.md, "Growth over a
 * range shorter than the headroom").
 */
static bool grow_over_cache(void *p, struct large_ent *e, size_t min_len, size_t new_len)
{
	char *end = (char *)p + e->len;
	size_t got;
	void *q;

	if (min_len > new_len || min_len <= e->len)
		min_len = new_len;
	q = hak_bigcache_take_at(end + e->guard, over_need(e, min_len), over_need(e, new_len),
				 &got);
	if (!q)
		return false;
	if (e->guard && !hak_hd_guard_unset(end)) {
		if (!cache_put(q, got, hak_hd_guard_len()))
			unmap_block(q, got, hak_hd_guard_len());
		return false;
	}
	ent_store(e->len, e->len + e->guard + got);
	e->guard = hak_hd_guard_len();
	return true;
}

/*
 * mremap the block, its guard with it: the guard goes read-write for the
 * call (one mapping again, so the block may grow in place) and is made
 * again at the new end. NULL when the OS refused (the block is as it was,
 * though it may have lost its guard).
 */
static void *remap_block(void *p, struct large_ent *e, size_t new_len)
{
	size_t g = e->guard;
	char *q;
	bool moved;

	if (g && !hak_hd_guard_unset((char *)p + e->len))
		return NULL;
	q = __hak_os_remap(p, e->len + g, new_len + g);
	moved = q != NULL;
	if (!moved) {
		q = p;
		new_len = e->len;
	}
	if (g && !hak_hd_guard_set(q + new_len)) {
		__hak_os_unmap(q + new_len, g);
		e->guard = 0;
	}
	if (!moved)
		return NULL;
	if (new_len - e->len >= OFFSET_MIN)
		hak_bigcache_offset(new_len - e->len);
	ent_store(e->len, new_len);
	return q;
}

/*
 * Shrink in place: a guarded block makes its new guard first and unmaps
 * the rest with the old one; when the guard cannot be made it keeps its
 * length (p, unchanged). NULL when the OS refused an unguarded shrink.
 */
static void *shrink_block(void *p, struct large_ent *e, size_t new_len)
{
	void *q;

	if (!e->guard) {
		q = __hak_os_remap(p, e->len, new_len);
		if (q)
			ent_store(e->len, new_len);
		return q;
	}
	if (!hak_hd_guard_set((char *)p + new_len))
		return p;
	__hak_os_unmap((char *)p + new_len + e->guard, e->len - new_len);
	hak_hd_guard_gone(1);
	ent_store(e->len, new_len);
	return p;
}

/*
 * A grow area's block (e, unlinked) that grows past its slot: copied into
 * a resident cached block or a fresh mapping of at least half again its
 * length (as grow_by_copy), its slot freed. NULL when neither can be had
 * (e untouched). Its pages are copied, not moved: mremap would leave a
 * hole in the area.
 */
static void *area_move_out(void *p, struct large_ent *e, size_t new_len)
{
	size_t got = 0, guard = 0;
	struct large_ent *f;
	bool fresh = false;
	void *q;

	q = copy_target(e->len, new_len, &fresh, true, &got, &guard, &f);
	if (!q)
		return NULL;
	memcpy(q, p, e->len);
	__hak_grow_free(p);
	ent_put(e, false);
	return link_block(f, q, got, guard, false);
}

/*
 * Whole blocks are not made under valgrind (memcheck cannot follow a
 * block that mremap moves).
 */
static bool whole_wants(size_t new_len)
{
	return new_len >= __hak_large_whole_min && !hak_vg_running();
}

/*
 * Put a whole mapping's guard (*guard bytes at q + at, or none: 0) right
 * after its block, at q + to: the old one removed first (a move never
 * counts one guard more than the budget), then the new one made (*guard:
 * its bytes; 0 when it could not be, the block goes on without one, as a
 * block past the budget does). One guard call with none before, two for a
 * move, none when it is there already. false when the OS refused to
 * remove the old one (nothing changed).
 */
static bool whole_guard(char *q, size_t *guard, size_t at, size_t to)
{
	if (*guard) {
		if (at == to)
			return true;
		if (!hak_hd_guard_unset(q + at))
			return false;
	}
	*guard = hak_hd_guard_len();
	if (*guard && !hak_hd_guard_set(q + to))
		*guard = 0;
	return true;
}

/*
 * A whole mapping (q, *map bytes, its guard *guard bytes at q + at)
 * mremapped to len bytes, its guard removed first (an mprotect guard
 * splits the mapping, and mremap takes only one; the caller puts the new
 * one): the new start, or NULL when the OS refused (the mapping as it
 * was, *guard 0 if its guard went).
 */
static char *whole_remap(char *q, size_t *map, size_t *guard, size_t at, size_t len)
{
	char *r;

	if (*guard) {
		if (!hak_hd_guard_unset(q + at))
			return NULL;
		*guard = 0;
	}
	r = __hak_os_remap(q, *map, len);
	if (!r)
		return NULL;
	if (len - *map >= OFFSET_MIN)
		hak_bigcache_offset(len - *map);
	*map = len;
	return r;
}

/*
 * A block (e, unlinked, not whole) growing past __hak_large_whole_min:
 * copied once into the longest kept whole mapping (mremapped longer when
 * it is shorter than the request) or a fresh one, half again its length;
 * its old block is cached as usual and e recycled. The block's length is at most half
 * again the old one even where the mapping is longer, so that realloc's
 * stay-in-place rule (a block more than twice the request shrinks) never
 * cuts the mapping's resident tail off. With guard pages the mapping
 * holds the guard after the block: a kept one's guard is moved there, a
 * fresh one gets it. NULL when neither can be had (e untouched).
 */
static void *grow_whole(void *p, struct large_ent *e, size_t new_len)
{
	size_t want = large_len(e->len + e->len / 2), g = hak_hd_guard_len(), map, len;
	struct large_ent *f;
	struct whole_map w;
	bool fresh = false;
	char *q;

	if (want < new_len)
		want = new_len;
	if (whole_take(&w)) {
		q = w.p;
		map = w.len;
		if (map < new_len + g) {
			q = whole_remap(q, &map, &w.guard, w.at, want + g);
			if (!q) {
				whole_drop(&w);
				return NULL;
			}
		}
	} else {
		q = __hak_os_map_aligned(want + g, HAK_OS_PAGE);
		if (!q)
			return NULL;
		w = (struct whole_map){ q, want + g, 0, 0, 0 };
		map = want + g;
		fresh = true;
		hak_lock(&wholes.lock);
		wholes.maps++;
		hak_unlock(&wholes.lock);
		if (want - e->len >= OFFSET_MIN)
			hak_bigcache_offset(want - e->len);
	}
	len = want < map - g ? want : map - g;
	/* before the copy, which must not run into the kept mapping's guard */
	if (!whole_guard(q, &w.guard, w.at, len)) {
		w.p = q;
		w.len = map;
		whole_drop(&w);
		return NULL;
	}
	w.p = q;
	w.len = map;
	w.at = len;
	f = ent_get(hak_vg_key(q), fresh);
	if (!f) {
		whole_unmap(&w);
		return NULL;
	}
	memcpy(q, p, e->len);
	fresh = !cache_put(p, e->len, e->guard);
	if (fresh)
		unmap_block(p, e->len, e->guard);
	ent_put(e, fresh);
	f->map = map;
	return link_block(f, q, len, w.guard, false);
}

/*
 * A whole block (e, unlinked) resized: within its mapping by its length
 * alone (no call; with guard pages the guard moved after it: two), past
 * it by mremap of the whole mapping, half again (the pages move with their
 * page tables; one mapping, so mremap cannot fail for being over two),
 * shorter with the mapping cut to it (a program that shrinks gets the
 * memory back). The mapping keeps a guard page's room after the block. NULL
 * when the OS refused (e as it was, though it may have lost its guard).
 */
static void *whole_resize(void *p, struct large_ent *e, size_t new_len)
{
	size_t want = large_len(e->len + e->len / 2), g = hak_hd_guard_len(), len;
	char *q = p;

	if (new_len < e->len) {
		if (!g) {
			q = __hak_os_remap(p, e->map, new_len);
			if (q) {
				e->map = new_len;
				ent_store(e->len, new_len);
			}
			return q;
		}
		if (!whole_guard(q, &e->guard, e->len, new_len))
			return NULL;
		__hak_os_unmap(q + new_len + g, e->map - new_len - g);
		e->map = new_len + g;
		ent_store(e->len, new_len);
		return q;
	}
	if (want < new_len)
		want = new_len;
	if (new_len + g > e->map) {
		q = whole_remap(p, &e->map, &e->guard, e->len, want + g);
		/* the guard, removed (or never made), put after the block */
		if (!q) {
			(void)whole_guard(p, &e->guard, e->len, e->len);
			return NULL;
		}
		(void)whole_guard(q, &e->guard, want, want);
		ent_store(e->len, want);
		return q;
	}
	len = want < e->map - g ? want : e->map - g;
	if (!whole_guard(q, &e->guard, e->len, len))
		return NULL;
	ent_store(e->len, len);
	return q;
}

void *__hak_large_resize(void *p, size_t n, size_t least)
{
	struct large_ent *e;
	size_t new_len, fresh;
	void *q;

	if (n > SIZE_MAX / 2)
		return NULL;
	new_len = large_len(n);
	e = ent_take(hak_vg_key(p));
	if (!e)
		return NULL;
	q = p;
	if (e->area) {
		/* in its slot, or out of it by a copy */
		if (new_len > HAK_GROW_SLOT) {
			q = area_move_out(p, e, new_len);
			if (q)
				return q;	/* e recycled */
		} else if (__hak_grow_resize(p, e->len, &new_len, &fresh)) {
			ent_store(e->len, new_len);
			grow_offset(fresh);
		} else {
			q = NULL;
		}
	} else if (e->map) {
		if (new_len != e->len)
			q = whole_resize(p, e, new_len);
	} else if (new_len > e->len && whole_wants(new_len) &&
		   (q = grow_whole(p, e, new_len))) {
		return q;	/* e recycled */
	} else if (new_len > e->len) {
		q = p;
		/* The cached range right after p, a cached block, mremap. */
		if (!grow_over_cache(p, e, large_len(least), new_len)) {
			q = grow_by_copy(p, e, new_len, false);
			if (q)
				return q;
			q = remap_block(p, e, new_len);
			if (!q) {
				q = grow_by_copy(p, e, new_len, true);
				if (q)
					return q;
			}
		}
	} else if (new_len != e->len) {
		q = shrink_block(p, e, new_len);
	}
	if (q)
		ent_store(e->key, hak_vg_key(q));
	ent_link(e);
	return q;
}

void __hak_large_stats(struct hak_large_stats *st)
{
	unsigned i;

	*st = (struct hak_large_stats){ 0 };
	for (i = 0; i < NSHARD; i++) {
		hak_lock(&shards[i].lock);
		st->blocks += shards[i].count;
		st->bytes += shards[i].bytes;
		st->maps += shards[i].maps;
		st->unmaps += shards[i].unmaps;
		st->moves += shards[i].moves;
		st->move_fails += shards[i].move_fails;
		st->fills += shards[i].fills;
		hak_unlock(&shards[i].lock);
	}
	hak_lock(&wholes.lock);
	st->wholes_kept = wholes.n;
	st->whole_bytes = wholes.bytes;
	st->whole_takes = wholes.takes;
	st->whole_maps = wholes.maps;
	hak_unlock(&wholes.lock);
}

/*
 * Each shard's blocks are copied under its lock and counted after it
 * (lib/os.h, __hak_os_rss_reserve): a large malloc or free of another thread
 * waits for the copy (~625 ranges at 10,000 blocks), not for a system
 * call per block.
 */
void __hak_large_resident(struct hak_os_rss *r, size_t *live, size_t *kept)
{
	struct large_ent *e;
	unsigned i, b;

	*live = *kept = 0;
	for (i = 0; i < NSHARD; i++) {
		hak_lock(&shards[i].lock);
		__hak_os_rss_reserve(r, &shards[i].lock, shards[i].count);
		for (b = 0; shards[i].tab && b < (1u << shards[i].bits); b++)
			for (e = shards[i].tab[b]; e; e = e->next)
				if (!e->area)
					__hak_os_rss_add(r, hak_vg_unkey(e->key), e->len);
		hak_unlock(&shards[i].lock);
		*live += __hak_os_rss_flush(r);
	}
	hak_lock(&wholes.lock);
	__hak_os_rss_reserve(r, &wholes.lock, wholes.n);
	for (i = 0; i < wholes.n; i++)
		__hak_os_rss_add(r, wholes.m[i].p, wholes.m[i].len);
	hak_unlock(&wholes.lock);
	*kept = __hak_os_rss_flush(r);
}

/* Give back the first n shards (in reverse), then the wholes' lock. */
static void large_fork_give(unsigned n)
{
	for (; n; n--)
		hak_lock_fork_give(&shards[n - 1].lock);
	hak_lock_fork_give(&wholes.lock);
}

/* False: backed off (lock.h), nothing held. */
bool __hak_large_fork_prepare(void)
{
	unsigned i;

	if (!hak_lock_fork_take(&wholes.lock))
		return false;
	for (i = 0; i < NSHARD; i++)
		if (!hak_lock_fork_take(&shards[i].lock)) {
			large_fork_give(i);
			return false;
		}
	return true;
}

void __hak_large_fork_parent(void)
{
	large_fork_give(NSHARD);
}

void __hak_large_fork_child(void)
{
	unsigned i;

	for (i = 0; i < NSHARD; i++) {
		struct large_shard *sh = &shards[i];

		/*
		 * A lock the fork left to a holder that the child does not
		 * have may have been left mid-change, its count odd: made even
		 * again, or the child's next writer would flip its meaning
		 * (odd read as stable). The chains stay as left, as any left
		 * lock's data does. A lock our own frame holds keeps its odd
		 * count for that frame's seq_end().
		 */
		if ((sh->lock.fork_state & HAK_FORK_MASK) != HAK_FORK_OWN &&
		    (sh->seq & 1))
			sh->seq++;
		hak_lock_fork_reset(&sh->lock);
	}
	hak_lock_fork_reset(&wholes.lock);
}
