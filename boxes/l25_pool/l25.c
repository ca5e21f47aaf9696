// SPDX-License-Identifier: MIT
/*
 * The L2.5 pool: mid-size blocks (HAK_SMALL_MAX < n <= CONFIG_HAK_L25_MAX_KIB
 * KiB) from size-classed 2 MiB regions, in shards: one per thread up to
 * the cap, with lock-free frees from other shards' threads.
 *
 * Classes: four per doubling above 32 KiB: 40, 48, 56, 64, 80, ... KiB, size
 * ((c & 3) + 5) << ((c >> 2) + 13). Every class is a multiple of 8 KiB and
 * blocks start 4 KiB into the region, so every block is 4 KiB aligned. The
 * worst internal waste is just under 25% of the request (32 KiB + 1 -> 40 KiB),
 * under 20% for every request above 40 KiB. A request whose class has no
 * resident free block among its first regions takes one of up to
 * L25_BORROW classes above (borrow()), if one is resident: a page fault
 * costs more than the address space, and a clean block of the request's
 * class would add to the resident set while a larger free block sits in
 * it unused (one class per region keeps about as many bytes free as in
 * use on a random mix; the sum of the classes' peaks is what this cuts).
 * Waste is then under 75% of the request, in address space: the block's
 * pages past the request were resident already. Within its class a
 * request takes the newest free resident block when that block's span
 * (the most pages its requests asked for since it was last clean: what a
 * program that writes its buffers has resident) covers it, else the one
 * whose span covers it most tightly (span_fit()), so a request does not
 * fault in the tail of a block while another block of the class has
 * those pages resident.
 *
 * Region (2 MiB, 2 MiB aligned, registered as HAK_SSMAP_L25): one class, one
 * shard. Its first 4 KiB is the header below; blocks follow at the class
 * stride. Free blocks are tracked in the header only (a stack of indices and
 * a state byte per block), never inside the block, so a purged block is not
 * touched again until it is handed out, and a write after free corrupts
 * nothing of ours.
 *
 * Shard: a lock, for each class the list of its regions with a free block,
 * counters, and a stack of regions with remote frees. A thread takes a
 * sequence number on its first mid-size request and uses shard (number
 * mod nshards); taking it grows nshards (a power of two) to cover every
 * thread so far, up to shard_cap (2 x CPUs, CONFIG_HAK_L25_MAX_SHARDS),
 * so the first shard_cap threads each have a shard of their own from
 * their first block on, and its lock is uncontended but for the decay
 * pass. Past the cap nshards still doubles when a shard's trylock fails
 * in more than L25_GROW_FAILS of L25_WINDOW acquisitions (until the cap).
 *
 * Remote frees: a thread frees a live block of another shard's region
 * (region->shard, stable while the region has a live block) without a
 * lock: LIVE -> B_REMOTE by compare-and-swap, its bit set in
 * region->remote, and the region pushed on its shard's remote_head stack
 * when that bit is the first. The shard's own thread collects the stack
 * (one exchange) and each region's bits (another) on its next miss, as
 * do the decay pass, trim and the stats, under the shard lock. A REMOTE
 * block is live for its shard until collected; see remote_collect().
 *
 * Giving memory back, with a delay (the decay rule of lib/purge.h): a
 * freed block is stamped with the coarse clock (ms), and a region when it
 * becomes wholly free. The core's decay pass (hak_l25_decay, every quarter
 * of the purge delay of allocator activity, or from the background purge
 * thread) purges (madvise) the free blocks unused for the delay, merging
 * neighbours, and sends the regions empty that long to the pool, except
 * the first empty region of each class, kept for reuse. Blocks reused
 * within the delay stay resident: what is hot is never purged. Only a
 * size bound acts sooner: a shard holding more freed resident bytes than
 * its recent peak in use plus L25_DIRTY_BASE purges the longest-free ones until
 * 3/4 of that limit is left (a burst of frees, not a steady mix: the
 * mid-size mix keeps about as many bytes free as in use, one class per
 * region). Thread-cache blocks are live for their shard; the decay pass
 * purges the pages of those cached for the delay in place (tc_purge()).
 * The pool keeps up to L25_RESERVE purged regions for any shard and
 * class; it unmaps the rest. hak_l25_release() purges and unmaps
 * everything empty, and the blocks other threads cached before its
 * spare_ms.
 *
 * Guard pages (hardened box): a block's slot (the stride) is its class
 * and a guard page (PROT_NONE) after it, made when the block is first
 * handed out after the region got its class (guard_first_use; r->gmask
 * says which were) and cleared (one mprotect of the whole block area)
 * before the region goes back to the pool, where it may get another class. Classes
 * and usable sizes stay as without the box; a region holds fewer blocks
 * (46 instead of 51 of 40 KiB). Purging leaves the guards as they are.
 * region->guards counts them (the hardened box keeps a budget of guards).
 *
 * Locks: shard lock -> pool_lock. The remote stacks and bits are
 * lock-free (pushed by any thread, taken under the shard lock). madvise
 * happens under a shard lock;
 * mmap and munmap happen with no lock but the shard's held (or none).
 * Fork takes every shard lock in index order, then pool_lock; the core
 * takes its own locks after ours (lib/init.c).
 *
 * Thread cache (CONFIG_HAK_L25_TCACHE blocks per class, at most
 * CONFIG_HAK_L25_TCACHE_KIB bytes, initial-exec TLS): free pushes a
 * block of the freeing thread's own shard to its cache when there is
 * room (another shard's block takes the remote path), malloc pops from
 * it (from one of the next L25_BORROW classes when its own has none),
 * neither takes a lock. A cached block stays live in its shard's
 * accounting (so its region cannot be released), with state B_CACHED:
 * the thread whose cache holds it writes that byte (pop: B_LIVE; flush,
 * under the shard lock: B_DIRTY, or B_CLEAN if the decay purged it), the
 * decay pass too (below), and the lock-free writes are
 * LIVE -> CACHED by the thread caching a live block, LIVE -> REMOTE
 * (compare-and-swap) by a thread of another shard, and CACHED -> CPURGE
 * -> CACHED by the decay pass (under the shard lock; the owner's pop is a
 * compare-and-swap CACHED -> LIVE that waits out CPURGE), so state bytes of
 * live, cached or remote blocks are read and written with atomics. A
 * second free of a cached or remote block sees B_CACHED or B_REMOTE,
 * not B_LIVE, and is reported; two frees of one block racing on two
 * threads at the same instant are not (as before the remote path). The
 * cache is flushed to the shards by a pthread key destructor at thread
 * exit (the thread then bypasses it), by hak_l25_release() for the
 * calling thread, and a class at a time when full. After fork the child keeps the forking thread's
 * cache; blocks in other threads' caches stay live (leaked) in the child.
 * A remote free another thread was in the middle of is made whole in the
 * child (remote_rebuild(), over all_regions, the list of every mapped
 * region).
 *
 * Validation: hak_l25_free checks without a lock that p is the start of
 * a live block of its region (magic, stride, state B_LIVE) before caching
 * or remote-freeing it (the latter by a compare-and-swap of that state);
 * anything that fails goes to the locked path, which checks again
 * under the owning shard's lock, as do flushes (state B_CACHED), and
 * reports to __hak_bad_free. hak_l25_usable checks the same without a
 * lock. A bad pointer racing with the unmapping of its region can still
 * fault: the registry is cleared before munmap, so the window is the few
 * instructions between the registry load and ours.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/l25_pool/l25.h"
#include "boxes/hardened/hardened.h"

#define L25_REGION	HAK_SS_SIZE
#define L25_HDR		4096UL
#define L25_NCLASS	20		/* 40 KiB .. 1 MiB: the Kconfig range */
#define L25_MAXBLK	64		/* (2 MiB - 4 KiB) / 40 KiB = 51 */
#define L25_MAGIC	0x68616b4cu	/* "hakL" */
#define L25_MAX		((size_t)CONFIG_HAK_L25_MAX_KIB << 10)

#define L25_DIRTY_BASE	(16UL << 20)	/* freed resident bytes a shard may hold, */
					/* plus as many as it has in use */
#define L25_PEAK_PASSES	(4 * L25_HOLD)	/* decay passes (L25_HOLD delays) a peak is kept */
#define L25_BORROW	2		/* classes up a resident block may come from */
#define L25_RESERVE	2		/* purged regions kept in the pool */
#define L25_WINDOW	1024		/* lock acquisitions per contention window */
#define L25_GROW_FAILS	8		/* failed trylocks in a window to grow */
#define L25_FIT_SCAN	64		/* free blocks span_fit() looks at */
#define L25_COLORS	32		/* header offsets, 64 bytes apart (region_at) */
#define L25_HOLD	HAK_L25_HOLD	/* delays a class in demand keeps its blocks */
#define L25_STEAL_SCAN	16		/* regions region_steal() looks at per shard */
#define L25_CARVE_MAX	16		/* regions mapped at once, at most (region_map) */
#define L25_LAG_MS	12		/* a shard with no miss of its own for that long */
					/* lends its resident blocks (shard_alloc_other) */

/* Thread cache: slots per class, byte cap, classes up to L25_MAX. */
#define L25_TC_N	CONFIG_HAK_L25_TCACHE
#define L25_TC_SLOTS	(L25_TC_N ? L25_TC_N : 1)
#define L25_TC_BYTES	((size_t)CONFIG_HAK_L25_TCACHE_KIB << 10)
#define L25_LOG2(m)	((m) >= (1UL << 19) ? 19 : (m) >= (1UL << 18) ? 18 : \
			 (m) >= (1UL << 17) ? 17 : (m) >= (1UL << 16) ? 16 : 15)
#define L25_TC_NCLASS	((L25_LOG2(L25_MAX - 1) - 15) * 4 + \
			 (unsigned)((L25_MAX - 1) >> (L25_LOG2(L25_MAX - 1) - 2)) - 3)

#define POW2_FLOOR(x)	((x) >= 64 ? 64 : (x) >= 32 ? 32 : (x) >= 16 ? 16 : \
			 (x) >= 8 ? 8 : (x) >= 4 ? 4 : (x) >= 2 ? 2 : 1)
#define L25_SHARDS_MAX	POW2_FLOOR(CONFIG_HAK_L25_MAX_SHARDS)

/* Block states (region->state[]). */
#define B_CLEAN		0	/* free, not resident (never touched or purged) */
#define B_LIVE		1	/* handed out */
#define B_DIRTY		2	/* free, probably resident */
#define B_CACHED	3	/* free, in a thread cache; live for its shard */
#define B_REMOTE	4	/* freed by a thread of another shard, not yet */
				/* collected by its own; live for its shard */
#define B_CPURGE	5	/* cached, its pages being purged (tc_purge, */
				/* shard lock): the owner's pop waits */

struct l25_shard;

/*
 * Laid out by who writes what: the first line is read by every thread's
 * free and written only when the region gets its class; the owner's
 * fields (its shard lock) follow; the lines other shards' threads write
 * on every remote free (state[], remote, rnext) come last, each of their
 * own, so an owner walking its regions (pick_region, span_fit) reads
 * lines no other CPU keeps taking away.
 */
struct l25_region {
	uint32_t magic;
	uint32_t stride;		/* class size */
	uint8_t cls;
	uint8_t nblocks;
	struct l25_shard *shard;	/* atomic; NULL in the pool */
	/* the owner's (shard lock) */
	uint8_t nfree __aligned(64);	/* depth of stack[] */
	uint8_t listed;			/* on its shard's partial list */
	uint32_t idle;			/* ms (__hak_now_ms) it became wholly free */
	uint32_t guards;		/* guard pages made in it (hardened) */
	struct l25_region *next;	/* partial list, or pool */
	struct l25_region *prev;
	struct l25_region *snext, *sprev;	/* every region of its shard */
	uint64_t gmask;			/* blocks whose guard was tried (hardened) */
	uint8_t stack[L25_MAXBLK];	/* free block indices, top = nfree - 1 */
	/*
	 * Pages its requests covered since clean; 0 for a clean free block
	 * (never touched or purged), and only for one: the walks tell dirty
	 * from clean by it without reading state[].
	 */
	uint16_t span[L25_MAXBLK];
	/*
	 * ms a dirty block was freed at; for a cached block, its thread's
	 * __hak_tick_ms when it went in (written by that thread, atomic)
	 */
	uint32_t stamp[L25_MAXBLK];
	/* written by other shards' threads (remote frees) */
	uint8_t state[L25_MAXBLK] __aligned(64);
	uint64_t remote __aligned(64);	/* atomic: B_REMOTE blocks, one bit each */
	struct l25_region *rnext;	/* its shard's remote stack (atomic push) */
	struct l25_region *anext, *aprev;	/* all_regions (pool_lock) */
};

struct l25_shard {
	struct hak_lock lock;
	struct l25_region *partial[L25_NCLASS];	/* regions with a free block */
	struct l25_region *all;		/* every region of the shard (snext) */
	size_t dirty_bytes;		/* B_DIRTY blocks */
	uint32_t win_ops, win_fails;	/* contention window */
	size_t regions;
	size_t blocks_in_use, bytes_in_use;
	size_t peak_in_use;		/* peak of bytes_in_use since the last decay pass */
	size_t peak_recent;		/* the largest of peak_pass[] */
	size_t peak_pass[L25_PEAK_PASSES];	/* peak_in_use of the last passes */
	unsigned peak_next;		/* next peak_pass[] slot to fill */
	uint64_t allocs, frees, remote_frees, contended, purged_bytes;
	uint64_t cap_purged;		/* bytes purged at dirty_limit() */
	uint64_t tc_purged;		/* bytes of cached blocks purged (tc_purge) */
	/*
	 * The re-take reserve (take_note(), purge_class()): bytes of each
	 * class handed out in the take window that ends at take_end and in
	 * the one before; the decay pass keeps that many of the class's
	 * blocks free longer than the delay resident.
	 */
	uint32_t take_end;		/* ms the current take window ends */
	size_t take_cur[L25_NCLASS], take_prev[L25_NCLASS];
	uint32_t take_last[L25_NCLASS];	/* ms of the class's last take */
	size_t purge_left;		/* purge_class(): bytes it may still purge */
	size_t reserve_kept;		/* old free bytes the last pass kept */
	uint64_t handed;		/* regions other shards took (region_steal) */
	uint64_t reserve_passes;	/* passes that kept some */
	/* ms (coarse clock) of its own threads' last miss: shard_alloc_other */
	uint32_t miss_ms;		/* atomic */
	/* Written by other shards' threads: a line of its own. */
	struct l25_region *remote_head __aligned(64);	/* atomic */
} __aligned(64);

HAK_BUILD_BUG_ON(sizeof(struct l25_region) + (L25_COLORS - 1) * 64 > L25_HDR);
HAK_BUILD_BUG_ON(L25_COLORS & (L25_COLORS - 1));
HAK_BUILD_BUG_ON(L25_TC_NCLASS < 1 || L25_TC_NCLASS > L25_NCLASS);
HAK_BUILD_BUG_ON(L25_MAXBLK > 4096);	/* an index fits below a block's 4 KiB alignment */
HAK_BUILD_BUG_ON(L25_MAXBLK > 64);	/* region->remote has a bit per block */
HAK_BUILD_BUG_ON(L25_MAX <= HAK_SMALL_MAX || L25_MAX > (1UL << 20));
HAK_BUILD_BUG_ON((L25_REGION - L25_HDR) / (40UL << 10) > L25_MAXBLK);

static struct l25_shard shards[L25_SHARDS_MAX] = {
	[0 ... L25_SHARDS_MAX - 1] = { .lock = HAK_LOCK_INIT },
};
static unsigned nshards = 1;		/* atomic; a power of two */
static unsigned shard_cap;		/* atomic; set on first use */
static unsigned next_tidx;		/* atomic */
static __thread unsigned my_tidx;	/* 1 + sequence number, 0: none yet */
/* The shard of this thread's last miss: the free path's "mine?" test (NULL: none yet). */
static __thread struct l25_shard *my_home;

/*
 * The thread cache. An entry is a block address (4 KiB aligned) or'ed
 * with its index in the region; blk[c][0] is the oldest.
 */
enum { TC_NONE, TC_ON, TC_DEAD };

struct l25_tcache {
	uint8_t state;			/* TC_* */
	uint8_t n[L25_TC_NCLASS];
	size_t bytes;
	uintptr_t blk[L25_TC_NCLASS][L25_TC_SLOTS];
};

static __thread struct l25_tcache tc __attribute__((tls_model("initial-exec")));
static pthread_key_t tc_key;
static unsigned tc_key_state;		/* atomic: 0 none, 1 being made, 2 made, 3 failed */

static struct hak_lock pool_lock = HAK_LOCK_INIT;
static struct l25_region *pool;		/* pool_lock */
static struct l25_region *all_regions;	/* pool_lock: every mapped region */
static size_t npool;			/* pool_lock; written atomic (pool_put_list peeks) */
/* Address space mapped ahead for regions, not yet handed out (pool_lock). */
static uintptr_t carve_cur, carve_end;
static unsigned carve_n = 1;		/* regions the next mapping takes */

/* Atomic counters. */
static size_t nr_regions, nr_maps, nr_unmaps, nr_grows, nr_map_calls;
static uint64_t pool_purged_bytes, unmapped_bytes;

/* ---- classes ---- */

static inline unsigned class_of(size_t n)
{
	size_t m = n - 1;
	unsigned k = 63 - (unsigned)__builtin_clzl(m);	/* m >= 32 KiB: k >= 15 */

	return (k - 15) * 4 + (unsigned)(m >> (k - 2)) - 4;
}

static inline size_t class_size(unsigned c)
{
	return (size_t)((c & 3) + 5) << ((c >> 2) + 13);
}

/* A block's slot in its region: the class, and its guard page (hardened). */
static inline size_t slot_size(unsigned c)
{
	return class_size(c) + hak_hd_guard_len();
}

/*
 * The header of the region at base (L25_REGION aligned). It sits at one
 * of L25_COLORS offsets 64 bytes apart in the header page, by the
 * region's number: at offset 0 in every region, the headers (2 MiB
 * aligned) all fall in the same set of every cache level and evict one
 * another when a miss walks a few dozen of them (span_fit, the partial
 * lists; see the box page, "header colouring").
 */
static inline struct l25_region *region_at(uintptr_t base)
{
	return (struct l25_region *)(base +
		((base / L25_REGION) & (L25_COLORS - 1)) * 64);
}

static inline uintptr_t region_base(const struct l25_region *r)
{
	return (uintptr_t)r & ~(L25_REGION - 1);
}

static inline struct l25_region *region_of(uintptr_t p)
{
	return region_at(p & ~(L25_REGION - 1));
}

static inline uintptr_t block_addr(const struct l25_region *r, unsigned i)
{
	return region_base(r) + L25_HDR + (uintptr_t)i * r->stride;
}

/* ---- shards ---- */

/*
 * Twice the process's CPUs (the core's count, not this thread's mask: the
 * first mid-size request may come from a worker pinned to one CPU).
 */
static unsigned compute_cap(void)
{
	unsigned cpus = __hak_nr_cpus(), cap = 1;

	while (cap * 2 <= 2 * cpus && cap * 2 <= L25_SHARDS_MAX)
		cap *= 2;
	return cap;
}

/*
 * A thread's first mid-size request: its sequence number, and shards for
 * every thread seen so far (up to the cap) before it takes a block. Each
 * of the first shard_cap threads then has a shard to itself from its
 * first block on; growing only on contention left the second thread
 * filling a new shard in mid-run while its old blocks sat in the first
 * one for a purge delay (about 10 MiB and 4k page faults more on the
 * 2-thread mid-size row, and a lock shared by both threads until then).
 */
static __noinline unsigned tidx_assign(void)
{
	unsigned cap, cur, want = 1;

	__hak_init();
	cap = arch_load_relaxed(&shard_cap);
	if (!cap) {
		cap = compute_cap();
		arch_store_relaxed(&shard_cap, cap);
	}
	my_tidx = arch_fetch_add(&next_tidx, 1) + 1;
	while (want < my_tidx && want < cap)
		want *= 2;
	while ((cur = arch_load_relaxed(&nshards)) < want)
		if (arch_cmpxchg(&nshards, cur, want) == cur) {
			arch_fetch_add(&nr_grows, 1);
			break;
		}
	return my_tidx;
}

static inline unsigned shard_index(unsigned tidx)
{
	return (tidx - 1) & (arch_load_relaxed(&nshards) - 1);
}

static struct l25_shard *my_shard(void)
{
	unsigned t = my_tidx;

	if (unlikely(!t))
		t = tidx_assign();
	my_home = &shards[shard_index(t)];
	return my_home;
}

static void shards_grow(void)
{
	unsigned cur = arch_load_relaxed(&nshards);

	if (cur < arch_load_relaxed(&shard_cap) &&
	    arch_cmpxchg(&nshards, cur, cur * 2) == cur)
		arch_fetch_add(&nr_grows, 1);
}

/*
 * Lock sh, counting whether we had to wait: the contention signal that
 * makes the pool add shards.
 */
static void shard_lock(struct l25_shard *sh) __acquires(&sh->lock)
{
	bool waited = hak_lock_waited(&sh->lock);

	sh->win_ops++;
	if (waited) {
		sh->win_fails++;
		sh->contended++;
	}
	if (sh->win_ops >= L25_WINDOW) {
		if (sh->win_fails >= L25_GROW_FAILS)
			shards_grow();
		sh->win_ops = sh->win_fails = 0;
	}
}

/* ---- partial lists (shard lock) ---- */

static void partial_add(struct l25_shard *sh, struct l25_region *r)
{
	r->prev = NULL;
	r->next = sh->partial[r->cls];
	if (r->next)
		r->next->prev = r;
	sh->partial[r->cls] = r;
	r->listed = 1;
}

static void partial_del(struct l25_shard *sh, struct l25_region *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		sh->partial[r->cls] = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	r->listed = 0;
}

/* ---- regions and the pool ---- */

static void region_unmap(struct l25_region *r)
{
	hak_lock(&pool_lock);
	if (r->aprev)
		r->aprev->anext = r->anext;
	else
		all_regions = r->anext;
	if (r->anext)
		r->anext->aprev = r->aprev;
	hak_unlock(&pool_lock);
	if (r->guards)
		hak_hd_guard_gone(r->guards);
	__hak_ssmap_set(region_base(r), 0);
	__hak_os_unmap((void *)region_base(r), L25_REGION);
	arch_fetch_add(&nr_regions, -1);
	arch_fetch_add(&nr_unmaps, 1);
	arch_fetch_add(&unmapped_bytes, L25_REGION);
}

/* Purge every dirty block of r; false when the OS refused. */
static bool region_purge_all(struct l25_region *r, uint64_t *bytes)
{
	unsigned i, n = 0;

	for (i = 0; i < r->nblocks; i++)
		n += r->state[i] == B_DIRTY;
	if (!n)
		return true;
	if (!__hak_os_purge((char *)region_base(r) + L25_HDR, L25_REGION - L25_HDR))
		return false;
	*bytes += (uint64_t)n * r->stride;
	memset(r->state, B_CLEAN, sizeof(r->state));
	memset(r->span, 0, sizeof(r->span));
	return true;
}

/* Make r's guard pages ordinary again (for the pool); false when refused. */
static bool guards_clear(struct l25_region *r)
{
	if (!r->guards)
		return true;
	if (!hak_hd_guards_clear((char *)region_base(r) + L25_HDR, L25_REGION - L25_HDR, r->guards))
		return false;
	r->guards = 0;
	r->gmask = 0;
	return true;
}

/*
 * Make the guard page at the end of block i's slot, the first time the
 * block is handed out since its region got its class (shard lock held).
 * Made for every block when the region got its class, a region of a large
 * class cost up to its 46 mprotect calls (each takes the process's mmap
 * lock for writing, waiting for the page faults of other threads) for the
 * few blocks a chain of reallocs used of it. A guard that cannot be made
 * (budget spent, OS refused) is not tried again for the block until the
 * region is given a class again, as when they were all made at once.
 */
static inline void guard_first_use(struct l25_region *r, unsigned i)
{
	size_t g = hak_hd_guard_len();

	if (!g || (r->gmask >> i & 1))
		return;
	r->gmask |= 1ULL << i;
	if (hak_hd_guard_set((void *)(block_addr(r, i) + r->stride - g)))
		r->guards++;
}

/*
 * Give wholly free regions (detached from their shard, linked by next) to
 * the pool, or unmap them: all of them when keep is false.
 */
static void pool_put_list(struct l25_region *r, bool keep)
{
	struct l25_region *next;
	uint64_t purged = 0;

	for (; r; r = next) {
		next = r->next;
		if (keep && arch_load_relaxed(&npool) < L25_RESERVE &&
		    region_purge_all(r, &purged) && guards_clear(r)) {
			hak_lock(&pool_lock);
			if (npool < L25_RESERVE) {
				r->next = pool;
				pool = r;
				arch_store_relaxed(&npool, npool + 1);
				r = NULL;
			}
			hak_unlock(&pool_lock);
		}
		if (r)
			region_unmap(r);
	}
	if (purged)
		arch_fetch_add(&pool_purged_bytes, purged);
}

/*
 * Address space for one more region (never touched), 0 when the OS
 * refuses. Regions are cut from mappings of carve_n regions, carve_n
 * doubling from 1 to L25_CARVE_MAX: one mmap (and the two munmap calls of
 * its alignment trim) per up to 16 regions instead of per region. Each
 * of those calls takes the process's mmap lock for writing, and a region
 * mapped next to the last one extends the mapping the other threads are
 * faulting pages into at that moment (producer-consumer-mid: ~1,000
 * mapping calls per run, against tbbmalloc's ~200..450). The part not yet
 * handed out costs address space only; hak_l25_release() unmaps it.
 * Not where address space is memory: under vm.overcommit_memory=2 the
 * rest is charged as commit, and under an RLIMIT_AS or RLIMIT_DATA below
 * 64 GiB it comes out of the limit whole (as the superslab stock's and
 * the grow areas', lib/os.c and lib/grow.c): there a mapping takes 2
 * regions at most (rv35: 400 blocks of 100,000 B under ulimit -v held
 * 62 MiB of VmData for 39 MiB, 16 regions' carve untouched).
 */
static uintptr_t region_map(void)
{
	uintptr_t p = 0, m;
	unsigned n;
	int err;
	bool spare = false;

	hak_lock(&pool_lock);
	if (carve_cur < carve_end) {
		p = carve_cur;
		carve_cur += L25_REGION;
	}
	n = carve_n;
	hak_unlock(&pool_lock);
	if (p)
		return p;
	if (n > 2 && __hak_os_space_costly())
		n = 2;
	err = errno;
	m = (uintptr_t)__hak_os_map_aligned(n * L25_REGION, L25_REGION);
	if (!m && n > 1) {
		/* a malloc that succeeds with one region keeps errno */
		errno = err;
		n = 1;
		m = (uintptr_t)__hak_os_map_aligned(L25_REGION, L25_REGION);
	}
	if (!m) {
		errno = err;	/* lib/alloc.c sets ENOMEM if its retry fails too */
		return 0;
	}
	arch_fetch_add(&nr_map_calls, 1);
	if (n > 1) {
		hak_lock(&pool_lock);
		if (carve_cur == carve_end) {
			carve_cur = m + L25_REGION;
			carve_end = m + (uintptr_t)n * L25_REGION;
		} else {
			spare = true;	/* another thread refilled meanwhile */
		}
		hak_unlock(&pool_lock);
		if (spare)
			__hak_os_unmap((void *)(m + L25_REGION), (size_t)(n - 1) * L25_REGION);
	}
	hak_lock(&pool_lock);
	if (carve_n < L25_CARVE_MAX)
		carve_n *= 2;
	hak_unlock(&pool_lock);
	return m;
}

static void region_attach(struct l25_shard *sh, struct l25_region *r);

/* A fresh, clean region of class c for sh; NULL when the OS refuses. */
static struct l25_region *region_get(struct l25_shard *sh, unsigned c)
{
	struct l25_region *r;
	unsigned i, nb;

	hak_lock(&pool_lock);
	r = pool;
	if (r) {
		pool = r->next;
		arch_store_relaxed(&npool, npool - 1);
	}
	hak_unlock(&pool_lock);
	if (!r) {
		uintptr_t m = region_map();
		int err = errno;

		if (!m)
			return NULL;
		/* its registry byte writable (an mprotect the first time) */
		if (!__hak_ssmap_open(m)) {
			__hak_os_unmap((void *)m, L25_REGION);
			errno = err;	/* as region_map: the caller sets ENOMEM */
			return NULL;
		}
		r = region_at(m);
		arch_fetch_add(&nr_regions, 1);
		arch_fetch_add(&nr_maps, 1);
		hak_lock(&pool_lock);
		r->aprev = NULL;
		r->anext = all_regions;
		if (all_regions)
			all_regions->aprev = r;
		all_regions = r;
		hak_unlock(&pool_lock);
	}
	nb = (unsigned)((L25_REGION - L25_HDR) / slot_size(c));
	r->magic = L25_MAGIC;
	r->stride = (uint32_t)slot_size(c);
	r->cls = (uint8_t)c;
	r->nblocks = (uint8_t)nb;
	r->nfree = (uint8_t)nb;
	r->idle = __hak_now_ms();
	memset(r->state, B_CLEAN, sizeof(r->state));
	memset(r->span, 0, sizeof(r->span));
	for (i = 0; i < nb; i++)
		r->stack[i] = (uint8_t)(nb - 1 - i);	/* block 0 on top */
	r->gmask = 0;	/* no guard yet (a pooled region's were cleared) */
	region_attach(sh, r);
	return r;
}

/* r (no live block, on no list) is sh's from now on (shard lock). */
static void region_attach(struct l25_shard *sh, struct l25_region *r)
{
	arch_store_release(&r->shard, sh);
	/*
	 * Always stored, never tested first: a plain read here races (for
	 * TSan) with the store of the thread that unmapped the region last
	 * held at this address; the kernel orders the two, TSan cannot see it.
	 */
	__hak_ssmap_set(region_base(r), HAK_SSMAP_L25);
	partial_add(sh, r);
	r->sprev = NULL;
	r->snext = sh->all;
	if (r->snext)
		r->snext->sprev = r;
	sh->all = r;
	/* the decay pass peeks at it without the lock */
	arch_store_relaxed(&sh->regions, sh->regions + 1);
}

/* Take the wholly free region r away from sh (shard lock held). */
static void region_detach(struct l25_shard *sh, struct l25_region *r)
{
	unsigned i;

	for (i = 0; i < r->nblocks; i++)
		if (r->state[i] == B_DIRTY)
			sh->dirty_bytes -= r->stride;
	partial_del(sh, r);
	if (r->sprev)
		r->sprev->snext = r->snext;
	else
		sh->all = r->snext;
	if (r->snext)
		r->snext->sprev = r->sprev;
	arch_store_relaxed(&r->shard, NULL);
	arch_store_relaxed(&sh->regions, sh->regions - 1);
}

/* ---- decay (shard lock) ---- */

/*
 * The run walk of both decay purges: take(r, i, now, min_age) claims block
 * i; neighbouring claimed blocks share one madvise, then settle(r, j, purged)
 * finishes each block of the run (a purged block's span is 0 by then).
 * Returns the bytes purged.
 */
static uint64_t purge_runs(struct l25_region *r, uint32_t now, uint32_t min_age,
			   bool (*take)(struct l25_region *, unsigned, uint32_t, uint32_t),
			   void (*settle)(struct l25_region *, unsigned, bool))
{
	unsigned i, j, run = 0, start = 0;
	uint64_t done = 0;

	for (i = 0; i <= r->nblocks; i++) {
		size_t len;
		bool purged;

		if (i < r->nblocks && take(r, i, now, min_age)) {
			if (!run++)
				start = i;
			continue;
		}
		if (!run)
			continue;
		len = (size_t)run * r->stride;
		purged = __hak_os_purge((void *)block_addr(r, start), len);
		if (purged)
			done += len;
		for (j = start; j < start + run; j++) {
			if (purged)
				r->span[j] = 0;
			settle(r, j, purged);
		}
		run = 0;
	}
	return done;
}

static bool dirty_old(struct l25_region *r, unsigned i, uint32_t now, uint32_t min_age)
{
	return arch_load_relaxed(&r->state[i]) == B_DIRTY && __hak_ms_age(now, r->stamp[i]) >= min_age;
}

static void dirty_settle(struct l25_region *r, unsigned j, bool purged)
{
	if (purged)
		r->state[j] = B_CLEAN;
}

/*
 * Purge r's dirty free blocks freed at least min_age ms before now (all of
 * them for 0) that take() claims (dirty_old, or dirty_left within a
 * budget), merging neighbours into one madvise, then restack so the
 * blocks still resident are handed out first.
 */
static void region_purge_by(struct l25_shard *sh, struct l25_region *r, uint32_t now,
			    uint32_t min_age,
			    bool (*take)(struct l25_region *, unsigned, uint32_t, uint32_t))
{
	uint64_t done = purge_runs(r, now, min_age, take, dirty_settle);
	uint8_t clean[L25_MAXBLK], dirty[L25_MAXBLK];
	unsigned i, n, nc = 0, nd = 0;

	sh->dirty_bytes -= (size_t)done;
	sh->purged_bytes += done;
	n = r->nfree;
	for (i = 0; i < n; i++) {
		uint8_t b = r->stack[i];

		if (r->state[b] == B_CLEAN)
			clean[nc++] = b;
		else
			dirty[nd++] = b;
	}
	memcpy(r->stack, clean, nc);
	memcpy(r->stack + nc, dirty, nd);
}

static void region_purge(struct l25_shard *sh, struct l25_region *r, uint32_t now,
			 uint32_t min_age)
{
	region_purge_by(sh, r, now, min_age, dirty_old);
}

static void purge_older(struct l25_shard *sh, uint32_t now, uint32_t min_age)
{
	struct l25_region *r;
	unsigned c;

	for (c = 0; c < L25_NCLASS && sh->dirty_bytes; c++)
		for (r = sh->partial[c]; r && sh->dirty_bytes; r = r->next)
			region_purge(sh, r, now, min_age);
}

/*
 * The re-take rule. A block free for the delay is purged by the pass
 * unless its class is in demand: a program whose phases are a little
 * longer than the delay (threads that each work a few hundred ms and are
 * replaced, as mimalloc-bench's mstress does) frees blocks that the next
 * phase takes again, and purging them cost a madvise and a page fault
 * per page for nothing (707 MB purged and faulted back in a 2.6 s run).
 * So a shard notes, per class, when it last handed a block out and how
 * many bytes it handed out in windows of one delay (take_note(), on the
 * locked path only: the thread cache does not count), and the pass
 * (purge_class()):
 *  - purges at the delay, as before, a class not taken for L25_HOLD
 *    delays: an idle program, or a size it no longer asks for;
 *  - keeps the blocks of a class taken within L25_HOLD delays until they
 *    are L25_HOLD delays old, and past that as many bytes of them as the
 *    class handed out in the current window and the one before (the
 *    re-take reserve, one to two delays' worth of demand), purging the
 *    longest-free first.
 * A wholly free region with a block so kept stays with its shard
 * (detach_empty()). L25_HOLD is 3: an idle program gives its mid blocks
 * back within 3.25 delays of its last take (under the 1 s of the
 * idle-rss row at the default delay, with the background purge thread
 * too); mstress's gaps between a block's free and its next take are
 * mostly under 500 ms, up to about 700 ms on a loaded machine.
 */
static __noinline void take_roll_slow(struct l25_shard *sh, uint32_t now, uint32_t delay)
{
	bool near = __hak_ms_age(now, sh->take_end) < delay;
	unsigned c;

	for (c = 0; c < L25_NCLASS; c++) {
		sh->take_prev[c] = near ? sh->take_cur[c] : 0;
		sh->take_cur[c] = 0;
	}
	sh->take_end = near ? sh->take_end + delay : now + delay;
}

/* Start a new take window when the current one has ended (shard lock). */
static inline void take_roll(struct l25_shard *sh, uint32_t now, uint32_t delay)
{
	if (unlikely(__hak_ms_due(now, sh->take_end)))
		take_roll_slow(sh, now, delay);
}

/* The shard hands out bytes of class c (shard lock): count them. */
static inline void take_note(struct l25_shard *sh, unsigned c, size_t bytes)
{
	uint32_t delay = (uint32_t)__hak_opt.purge_delay_ms;

	if (!delay)
		return;
	/* this thread's tick ran just before its miss: no clock read */
	take_roll(sh, __hak_tick_ms, delay);
	sh->take_cur[c] += bytes;
	sh->take_last[c] = __hak_tick_ms;
}

/* dirty_old, while the pass's purge budget (sh->purge_left) lasts. */
static bool dirty_left(struct l25_region *r, unsigned i, uint32_t now, uint32_t min_age)
{
	struct l25_shard *sh = arch_load_relaxed(&r->shard);	/* locked: its owner's */

	if (!dirty_old(r, i, now, min_age) || sh->purge_left < r->stride)
		return false;
	sh->purge_left -= r->stride;
	return true;
}

/*
 * The decay of class c (shard lock) by the re-take rule (above). Past
 * the hold, the longest-free go first: walks at 4, 2 and 1 holds, only
 * while what is left exceeds the reserve.
 */
static void purge_class(struct l25_shard *sh, unsigned c, uint32_t now, uint32_t delay)
{
	size_t keep = sh->take_cur[c] + sh->take_prev[c], old = 0;
	uint64_t before = sh->purged_bytes;
	struct l25_region *r;
	uint32_t age, hold;
	unsigned k;

	if (__hak_ms_age(now, sh->take_last[c]) >= delay * L25_HOLD) {
		for (r = sh->partial[c]; r; r = r->next)
			region_purge(sh, r, now, delay);
		return;
	}
	for (r = sh->partial[c]; r; r = r->next)
		for (k = 0; k < r->nfree; k++)
			if (dirty_old(r, r->stack[k], now, delay))
				old += r->stride;
	if (old > keep) {
		sh->purge_left = old - keep;
		hold = delay * L25_HOLD;
		for (age = hold * 4;; age /= 2) {
			if (age < hold)
				age = hold;
			for (r = sh->partial[c]; r && sh->purge_left; r = r->next)
				region_purge_by(sh, r, now, age, dirty_left);
			if (age == hold || !sh->purge_left)
				break;
		}
	}
	sh->reserve_kept += old - (size_t)(sh->purged_bytes - before);
}

/*
 * A cached block's stamp is min_age ms or more before now (0: every
 * block, for trim). The stamp is its thread's __hak_tick_ms, which may
 * be a little ahead of a pass's now (read before) and lags the clock by
 * the time since that thread's last slow path: a block cached after a
 * long run of fast paths only (a thread back from an idle spell, before
 * its next miss or 64th hit) can look older than it is and be purged
 * early, which costs its page faults and nothing else.
 */
static inline bool tc_old(uint32_t stamp, uint32_t now, uint32_t min_age)
{
	return !min_age || __hak_ms_age(now, stamp) >= min_age;
}

/*
 * Purge the pages of blocks that sit in thread caches (any thread's: an
 * idle thread never runs this for itself) and went in min_age ms or more
 * before now (tc_old()); they stay cached, clean (span 0): the owner's pop faults
 * them in again, its flush puts them back as clean blocks (block_put).
 * The shard lock is held, so no flush (shard_free, which wants B_CACHED)
 * runs meanwhile; the owner's pop takes no lock, so each block is claimed
 * first, B_CACHED -> B_CPURGE by compare-and-swap, and put back B_CACHED
 * (release) after the madvise: a pop that finds B_CPURGE waits
 * (tc_wait()), and a block a pop took first is live and left alone. The
 * stamp is read again after the claim (the block may have been popped
 * and cached anew since the look). Neighbouring blocks share one madvise.
 */
static bool tc_claim(struct l25_region *r, unsigned i, uint32_t now, uint32_t min_age)
{
	if (arch_load_relaxed(&r->state[i]) != B_CACHED ||
	    !tc_old(arch_load_relaxed(&r->stamp[i]), now, min_age) ||
	    arch_cmpxchg(&r->state[i], (uint8_t)B_CACHED, (uint8_t)B_CPURGE) != B_CACHED)
		return false;
	if (r->span[i] && tc_old(arch_load_relaxed(&r->stamp[i]), now, min_age))
		return true;
	arch_store_release(&r->state[i], B_CACHED);
	return false;
}

static void tc_settle(struct l25_region *r, unsigned j, bool purged)
{
	(void)purged;
	arch_store_release(&r->state[j], B_CACHED);
}

static void tc_purge(struct l25_shard *sh, uint32_t now, uint32_t min_age)
{
	struct l25_region *r;

	for (r = sh->all; r; r = r->snext) {
		uint64_t done = purge_runs(r, now, min_age, tc_claim, tc_settle);

		sh->purged_bytes += done;
		sh->tc_purged += done;
	}
}

/* A free block of r is resident (dirty; span 0 is clean, region header). */
static bool region_dirty(const struct l25_region *r)
{
	unsigned k;

	for (k = 0; k < r->nfree; k++)
		if (r->span[r->stack[k]])
			return true;
	return false;
}

/*
 * Detach the wholly free regions of sh empty for at least min_age ms,
 * except the first empty region of each class unless all, and for the
 * decay pass (kept) those with a block the re-take reserve kept resident.
 * Returns them linked by next, for pool_put_list() once unlocked.
 */
static struct l25_region *detach_empty(struct l25_shard *sh, bool all, uint32_t now,
				       uint32_t min_age, bool kept_stay)
{
	struct l25_region *out = NULL, *r, *next;
	unsigned c;

	for (c = 0; c < L25_NCLASS; c++) {
		bool kept = all;

		for (r = sh->partial[c]; r; r = next) {
			next = r->next;
			if (r->nfree != r->nblocks)
				continue;
			if (!kept) {
				kept = true;
				continue;
			}
			if (__hak_ms_age(now, r->idle) < min_age ||
			    (kept_stay && region_dirty(r)))
				continue;
			region_detach(sh, r);
			r->next = out;
			out = r;
		}
	}
	return out;
}

/*
 * The size bound: freed bytes a shard may hold resident, whatever their
 * age. The time rule (hak_l25_decay) is what normally gives them back;
 * this only stops a burst of frees from staying resident for a whole
 * delay. A program that frees its mid blocks and takes as many again
 * within the delay (phases, cycles: the footprint row purged 94 MB at a
 * bound of 16 MiB + bytes in use, and faulted it all back) keeps them up
 * to its recent peak in use: the largest in use over the last
 * L25_PEAK_PASSES decay passes (L25_HOLD purge delays; one delay until
 * 2026-12-03: a thread freeing 600 MB at its exit for longer than that
 * on a loaded machine had 450 MB of them purged at the bound, which its
 * successor faulted back). Until 2026-12-02 the
 * peak was halved at each pass: a producer descheduled for a pass or two
 * (2 threads on a loaded machine) then saw the blocks it had in flight,
 * freed by its consumer, purged at the bound and faulted back.
 */
static inline size_t dirty_limit(const struct l25_shard *sh)
{
	/* bytes_in_use <= peak_in_use: shard_alloc() raises the peak */
	return L25_DIRTY_BASE + (sh->peak_in_use > sh->peak_recent ?
				  sh->peak_in_use : sh->peak_recent);
}

/* Purge the longest-free blocks until dirty_bytes is at most goal. */
static void purge_to(struct l25_shard *sh, uint32_t now, size_t goal)
{
	static const uint32_t ages[] = { 4000, 2000, 1000, 500, 250, 100, 30, 10, 0 };
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(ages) && sh->dirty_bytes > goal; i++)
		purge_older(sh, now, ages[i]);
}

/* Over dirty_limit(): purge the longest-free down to 3/4 of it. */
static __noinline struct l25_region *shard_over(struct l25_shard *sh, uint32_t now)
{
	uint64_t before = sh->purged_bytes;

	purge_to(sh, now, dirty_limit(sh) * 3 / 4);
	sh->cap_purged += sh->purged_bytes - before;
	return detach_empty(sh, false, now, 0, false);
}

/* After a free (shard lock): apply the size bound. Regions to release. */
static inline struct l25_region *shard_check(struct l25_shard *sh, uint32_t now)
{
	if (unlikely(sh->dirty_bytes > dirty_limit(sh)))
		return shard_over(sh, now);
	return NULL;
}

/* ---- frees into a shard (shard lock) ---- */

/*
 * A cached block that tc_purge() purged (span 0) goes back clean, below
 * the dirty ones: the walks tell clean from dirty by span.
 */
static __noinline void stack_put_clean(struct l25_region *r, unsigned i)
{
	r->state[i] = B_CLEAN;
	memmove(r->stack + 1, r->stack, r->nfree);
	r->stack[0] = (uint8_t)i;
	r->nfree++;
}

/* Block i of r (sh's, which is locked) is free from now (ms) on. */
static void block_put(struct l25_shard *sh, struct l25_region *r, unsigned i, uint32_t now)
{
	if (likely(r->span[i])) {
		r->state[i] = B_DIRTY;
		r->stamp[i] = now;
		r->stack[r->nfree++] = (uint8_t)i;
		sh->dirty_bytes += r->stride;
	} else {
		stack_put_clean(r, i);
	}
	if (!r->listed)
		partial_add(sh, r);
	if (r->nfree == r->nblocks)
		r->idle = now;
	sh->frees++;
	sh->blocks_in_use--;
	sh->bytes_in_use -= r->stride;
}

/*
 * Collect the blocks other shards' threads freed into sh (shard lock
 * held): take the whole stack of regions, then each region's bits. A
 * region whose bits go from 0 to non-zero again after our exchange is
 * pushed anew; we read its link before the exchange, so it is on at
 * most one stack at a time (the pop takes everything: no ABA).
 */
static void remote_collect(struct l25_shard *sh, uint32_t now)
{
	struct l25_region *r = arch_xchg(&sh->remote_head, (struct l25_region *)NULL);
	struct l25_region *next;

	for (; r; r = next) {
		uint64_t bits;

		next = arch_load_relaxed(&r->rnext);
		bits = arch_xchg(&r->remote, (uint64_t)0);
		while (bits) {
			unsigned i = (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			block_put(sh, r, i, now);
			sh->remote_frees++;
		}
	}
}

/* ---- the hooks ---- */

/*
 * Which of a class's regions to take a block from: the first few are
 * scored, a resident (dirty) block on top of the stack first (no page
 * faults, and the purged blocks stay unused), then a region in use over a
 * wholly free one (so empty regions stay empty and can be given back).
 */
static struct l25_region *pick_region(struct l25_region *r)
{
	struct l25_region *best = r;
	unsigned score, best_score = 0, n;

	for (n = 0; r && n < 4; r = r->next, n++) {
		score = (r->span[r->stack[r->nfree - 1]] != 0) * 2 +
			(r->nfree != r->nblocks);
		if (score > best_score) {
			best = r;
			best_score = score;
			if (score == 3)
				break;
		}
	}
	return best;
}

/* The block on top of r's stack is dirty (span: see struct l25_region). */
static inline bool top_dirty(const struct l25_region *r)
{
	return r->span[r->stack[r->nfree - 1]] != 0;
}

/*
 * No resident block in class c: a resident block of one of the next
 * L25_BORROW classes, if any (no page fault, and no clean block of c
 * touched while a larger free block sits resident).
 */
static struct l25_region *borrow(struct l25_shard *sh, unsigned c)
{
	unsigned k;

	for (k = c + 1; k <= c + L25_BORROW && k < L25_NCLASS; k++) {
		struct l25_region *r = pick_region(sh->partial[k]);

		if (r && top_dirty(r))
			return r;
	}
	return NULL;
}

/*
 * Best fit on resident pages. A free dirty block's span is the most pages
 * any request it served since it was last clean asked for: a program that
 * writes its buffer has them resident, so a request of up to that many
 * pages takes no page fault there. Called when the block on top does not
 * cover the request: the first regions of the class (at most
 * L25_FIT_SCAN free dirty blocks in all) are searched for the block with
 * the smallest span that covers `pages` (one of exactly `pages` ends the
 * search), else the one with the largest span; it is swapped to
 * the top of its region's stack and the region returned. NULL when none
 * of those regions has a dirty block. A region's stack holds its clean
 * blocks below its dirty ones (block_put pushes dirty ones on top,
 * region_purge() reorders), so each walk stops at the first clean one.
 */
static struct l25_region *span_fit(struct l25_region *r, unsigned pages)
{
	struct l25_region *best = NULL;
	unsigned seen = 0, best_k = 0, best_span = 0;

	for (; r && seen < L25_FIT_SCAN; r = r->next) {
		unsigned k = r->nfree;

		while (k-- > 0 && seen++ < L25_FIT_SCAN) {
			uint8_t b = r->stack[k];
			unsigned sp = r->span[b];

			if (!sp)	/* clean: the rest below is too */
				break;
			if (!best || (sp >= pages ? best_span < pages || sp < best_span :
				      best_span < pages && sp > best_span)) {
				best = r;
				best_k = k;
				best_span = sp;
				if (sp == pages)
					goto found;
			}
		}
	}
	if (!best)
		return NULL;
found:
	if (best_k != best->nfree - 1u) {
		uint8_t b = best->stack[best_k];

		best->stack[best_k] = best->stack[best->nfree - 1];
		best->stack[best->nfree - 1] = b;
	}
	return best;
}

/*
 * Hand-over. A shard is a thread's by its sequence number, so a thread
 * that replaces another (a pool that recreates its workers, mstress's
 * iterations) may land in another shard than the one holding the
 * blocks its predecessor freed: mstress's thread 0 frees 600 MB of
 * 80 KiB blocks at its end, and its successor, one shard further
 * (whichever new thread asked first), faulted 600 MB anew while the
 * old ones waited for the delay (RSS 1.2 GB with a longer one). So
 * before it takes a fresh region, a shard takes a wholly free region of
 * the class with resident blocks from another shard (try-lock only, at
 * most L25_STEAL_SCAN regions looked at per shard); it counts as a take
 * of the shard it came from (take_note()), whose re-take reserve then
 * keeps the rest of them while the hand-over goes on. A wholly free
 * region has no live, cached or remote block: no free can race with the
 * move (a stray one finds region->shard changed and is reported as any
 * pointer that is not a live block).
 */
static bool shard_trylock(struct l25_shard *v) __attribute__((warn_unused_result));
static bool shard_trylock(struct l25_shard *v)
{
	/* inside fork's window every lock is this thread's: no hand-over */
	return hak_trylock(&v->lock);
}

static __noinline struct l25_region *region_steal(struct l25_shard *sh, unsigned c)
{
	unsigned n = arch_load_relaxed(&nshards), k, walk;
	struct l25_region *r = NULL;

	for (k = 0; k < n && !r; k++) {
		struct l25_shard *v = &shards[k];
		size_t bytes = 0;
		unsigned j;

		if (v == sh || !arch_load_relaxed(&v->regions) || !shard_trylock(v))
			continue;
		__acquire(&v->lock);
		for (r = v->partial[c], walk = 0; r && walk < L25_STEAL_SCAN; r = r->next, walk++)
			if (r->nfree == r->nblocks && region_dirty(r))
				break;
		if (r && walk < L25_STEAL_SCAN) {
			for (j = 0; j < r->nblocks; j++)
				if (r->state[j] == B_DIRTY)
					bytes += r->stride;
			region_detach(v, r);
			take_note(v, c, bytes);
			v->handed++;
		} else {
			r = NULL;
		}
		hak_unlock(&v->lock);
		if (r) {
			region_attach(sh, r);
			sh->dirty_bytes += bytes;
			/*
			 * its resident bytes come with their credit at the
			 * size bound: a thief that frees what it took must not
			 * find itself over dirty_limit() by what it stole
			 */
			sh->peak_in_use += bytes;
		}
	}
	return r;
}

/*
 * The region of sh to serve a request of class c (pages 4 KiB pages) from,
 * best first: a resident free block that covers the request, then any
 * resident one (span_fit), of the class or of one of the next L25_BORROW
 * (borrow); else a region of the class with only clean free blocks; NULL
 * when the class has no free block in sh (shard lock).
 */
static struct l25_region *shard_pick(struct l25_shard *sh, unsigned c, unsigned pages)
{
	struct l25_region *r = pick_region(sh->partial[c]);

	if (r && (!top_dirty(r) || r->span[r->stack[r->nfree - 1]] < pages)) {
		struct l25_region *f = span_fit(sh->partial[c], pages);

		if (f)
			r = f;
	}

	if (L25_BORROW && (!r || !top_dirty(r))) {
		struct l25_region *b = borrow(sh, c);

		if (b)
			r = b;
	}
	return r;
}

/*
 * Bit 0 of what the slow path returns: the block was B_CLEAN (never
 * touched, or purged with MADV_DONTNEED), so it reads as zero and calloc
 * need not write it (hak_l25_alloc_zero). Blocks are page-aligned.
 */
#define L25_ZERO_TAG	((uintptr_t)1)

/*
 * Hand out the block on top of r's stack (r is sh's, which is locked),
 * tagged with L25_ZERO_TAG when it was clean.
 */
static void *block_take(struct l25_shard *sh, struct l25_region *r, unsigned pages)
{
	unsigned i = r->stack[--r->nfree];
	uintptr_t zero = r->state[i] == B_CLEAN ? L25_ZERO_TAG : 0;

	guard_first_use(r, i);
	if (r->state[i] == B_DIRTY) {
		sh->dirty_bytes -= r->stride;
		if (r->span[i] > pages)
			pages = r->span[i];
	}
	r->span[i] = (uint16_t)pages;
	r->state[i] = B_LIVE;
	if (!r->nfree)
		partial_del(sh, r);
	take_note(sh, r->cls, r->stride);
	sh->allocs++;
	sh->blocks_in_use++;
	sh->bytes_in_use += r->stride;
	if (sh->bytes_in_use > sh->peak_in_use)
		sh->peak_in_use = sh->bytes_in_use;
	return (void *)(block_addr(r, i) | zero);
}

/*
 * Past the cores: a resident free block of another shard before a clean
 * one of ours. Threads share the shards (2 x CPUs of them) and wait for a
 * CPU, and a shard's blocks freed by other threads wait on its remote
 * stack until one of its own threads misses: so each shard's regions were
 * touched up to that shard's own peak, lag included, and the sum of those
 * peaks stayed resident. batch-pool at 16 threads (8 producers on 4
 * shards, every batch array of 32,784 B freed by a consumer) held 7.9 MB
 * of 40 KiB blocks resident for ~3 MB in use (Documentation/design.md,
 * "Mid blocks past the cores"). So a miss that finds no resident block of
 * its class (or the next L25_BORROW) in its own shard tries the shards
 * none of whose threads missed for L25_LAG_MS (miss_ms), with a try-lock
 * (never waited for, as region_steal): it collects their remote frees and
 * takes a resident block of its class there (span_fit: no borrowing from
 * the classes above, which took the larger blocks the lender's own
 * threads then faulted in anew: producer-consumer-mid at 16 pairs, 1.10x
 * main's CPU and 1.15x its faults with borrowing and no lag rule; a lag
 * of 4 ms still cost it 1.02-1.14x, 12 ms 0.97x). The block stays that
 * shard's (its free by this thread is a remote free to it). Regions the
 * collection leaves over the size bound are added to *rel for the caller
 * to give back once unlocked.
 * Only past the cores (__hak_tcache_past_cores, the core's rule): with
 * a CPU each, a shard's threads collect at their next miss, and the rows
 * at 1-2 threads keep their own shards' blocks.
 */
static __noinline void *shard_alloc_other(struct l25_shard *sh, unsigned c, unsigned pages,
					  struct l25_region **rel)
{
	unsigned n = arch_load_relaxed(&nshards), k;
	uint32_t now = __hak_now_ms();

	for (k = 0; k < n; k++) {
		struct l25_shard *v = &shards[k];
		struct l25_region *r, *out = NULL;
		void *p = NULL;

		if (v == sh || !arch_load_relaxed(&v->regions) ||
		    __hak_ms_age(now, arch_load_relaxed(&v->miss_ms)) < L25_LAG_MS ||
		    !shard_trylock(v))
			continue;
		__acquire(&v->lock);
		if (arch_load_relaxed(&v->remote_head)) {
			remote_collect(v, now);
			out = shard_check(v, now);
		}
		r = span_fit(v->partial[c], pages);
		if (r)
			p = block_take(v, r, pages);
		hak_unlock(&v->lock);
		while (out) {
			r = out->next;
			out->next = *rel;
			*rel = out;
			out = r;
		}
		if (p)
			return p;
	}
	return NULL;
}

static void *shard_alloc(struct l25_shard *sh, unsigned c, unsigned pages,
			 struct l25_region **rel)
{
	struct l25_region *r = shard_pick(sh, c, pages);

	if ((!r || !top_dirty(r)) && arch_load_relaxed(&nshards) > 1 && __hak_tcache_past_cores()) {
		void *p = shard_alloc_other(sh, c, pages, rel);

		if (p)
			return p;
	}
	if (!r && arch_load_relaxed(&nshards) > 1)
		r = region_steal(sh, c);
	if (!r) {
		r = region_get(sh, c);
		if (!r)
			return NULL;
	}
	return block_take(sh, r, pages);
}

static __noinline void *l25_alloc_slow(unsigned c, unsigned pages)
{
	struct l25_shard *sh = my_shard();
	struct l25_region *rel = NULL;
	void *p;

	shard_lock(sh);
	if (arch_load_relaxed(&sh->miss_ms) != __hak_tick_ms)
		arch_store_relaxed(&sh->miss_ms, __hak_tick_ms);
	if (arch_load_relaxed(&sh->remote_head)) {
		uint32_t now = __hak_now_ms();

		remote_collect(sh, now);
		rel = shard_check(sh, now);
	}
	p = shard_alloc(sh, c, pages, &rel);
	hak_unlock(&sh->lock);
	if (unlikely(rel))
		pool_put_list(rel, true);
	return p;
}

/*
 * The decay pass is purging block i's pages (B_CPURGE, tc_purge()): wait
 * for it to put the block back, clean, then take it. The pass may run on
 * this CPU at a lower priority (a background purge thread under a
 * SCHED_FIFO program): back off to naps (os.h, __hak_os_backoff). The nap
 * is no cancellation point: a thread cancelled here, inside malloc, would
 * lose block i (out of its cache, never marked live); errno is kept, as
 * malloc's success leaves it.
 */
static __noinline void tc_wait(struct l25_region *r, unsigned i)
{
	unsigned n;

	for (n = 0; arch_cmpxchg(&r->state[i], (uint8_t)B_CACHED, (uint8_t)B_LIVE) != B_CACHED;
	     n++)
		__hak_os_backoff(n);
}

/*
 * No cached block of class c: one of the next L25_BORROW classes (waste
 * under 75%, as the shard's borrow()), or L25_TC_NCLASS. Unlike borrow()
 * it does not ask for a resident block: a cached block is resident but
 * for the decay's purge of one that sat a whole delay.
 */
static __noinline unsigned tc_borrow(unsigned c)
{
	unsigned k;

	for (k = c + 1; k <= c + L25_BORROW && k < L25_TC_NCLASS; k++)
		if (tc.n[k])
			return k;
	return L25_TC_NCLASS;
}

/*
 * Fast path, about 20 instructions: pop the newest cached block of the
 * class (a cached block's region cannot go away), mark it live, raise
 * its span; NULL when the class has none (no lock, no clock read: the
 * core runs its purge tick only when this misses). The mark is a
 * compare-and-swap B_CACHED -> B_LIVE: the decay pass of another thread
 * may be purging the block's pages (tc_purge()), and must not once it is
 * live.
 */
void *hak_l25_alloc_cached(size_t n)
{
	unsigned c = class_of(n), pages = (unsigned)((n + 4095) >> 12), i;
	struct l25_region *r;
	uintptr_t e;

	if (unlikely(!tc.n[c])) {
		c = tc_borrow(c);
		if (c >= L25_TC_NCLASS)
			return NULL;
	}
	e = tc.blk[c][--tc.n[c]];
	tc.bytes -= slot_size(c);
	r = region_of(e);
	i = (unsigned)(e & 4095);
	if (unlikely(arch_cmpxchg(&r->state[i], (uint8_t)B_CACHED, (uint8_t)B_LIVE) != B_CACHED))
		tc_wait(r, i);
	/* a cached (now live) block's span is its thread's alone */
	if (r->span[i] < pages)
		r->span[i] = (uint16_t)pages;
	return (void *)(e & ~4095UL);
}

void *hak_l25_alloc(size_t n)
{
	bool zero;

	return hak_l25_alloc_zero(n, &zero);
}

/*
 * A thread-cache block is taken as written (B_CACHED holds no clean
 * state); a shard's clean block, fresh or purged, reads as zero.
 */
void *hak_l25_alloc_zero(size_t n, bool *zero)
{
	uintptr_t p = (uintptr_t)hak_l25_alloc_cached(n);

	if (!p)
		p = (uintptr_t)l25_alloc_slow(class_of(n), (unsigned)((n + 4095) >> 12));
	*zero = p & L25_ZERO_TAG;
	return (void *)(p & ~L25_ZERO_TAG);
}

/*
 * Lock the shard owning p's region and return it with the block index,
 * or report p: it must be the first byte of a live block.
 */
static struct l25_shard *lock_block(const void *p, unsigned *idx, uint8_t want,
				    const char *what)
	__acquires(shards)
{
	struct l25_region *r = region_of((uintptr_t)p);
	struct l25_shard *sh = arch_load_acquire(&r->shard);
	uintptr_t off = (uintptr_t)p - region_base(r);
	unsigned i;

	if (!sh)
		__hak_bad_free(p, what);
	shard_lock(sh);
	if (r->shard != sh || r->magic != L25_MAGIC || off < L25_HDR ||
	    (off - L25_HDR) % r->stride)
		goto bad;
	i = (unsigned)((off - L25_HDR) / r->stride);
	if (i >= r->nblocks || arch_load_relaxed(&r->state[i]) != want)
		goto bad;
	*idx = i;
	return sh;
bad:
	hak_unlock(&sh->lock);
	__hak_bad_free(p, what);
}

/* remote_free(), first half: LIVE -> REMOTE and the bit; the old word. */
static inline bool remote_mark(struct l25_region *r, unsigned i, uint64_t *was)
{
	uint64_t old, seen, bit = 1ULL << i;

	if (arch_cmpxchg(&r->state[i], (uint8_t)B_LIVE, (uint8_t)B_REMOTE) != B_LIVE)
		return false;
	old = arch_load_relaxed(&r->remote);
	while ((seen = arch_cmpxchg(&r->remote, old, old | bit)) != old)
		old = seen;
	*was = old;
	return true;
}

/* remote_free(), second half: push r on its shard's stack. */
static inline void remote_push(struct l25_region *r)
{
	struct l25_shard *sh = arch_load_acquire(&r->shard);
	struct l25_region *head, *was;

	head = arch_load_relaxed(&sh->remote_head);
	for (;;) {
		arch_store_relaxed(&r->rnext, head);
		was = arch_cmpxchg(&sh->remote_head, head, r);
		if (was == head)
			return;
		head = was;
	}
}

/*
 * Free block i of r, LIVE and (by the caller's look) not of this thread's
 * shard, without a lock: LIVE -> REMOTE (a second free sees REMOTE and
 * goes to the locked path, which reports it), set its bit, and push the
 * region on its shard's stack when the bit is the first. The block stays
 * live for its shard (so the region and r->shard stay) until the shard's
 * own thread, or the decay pass, collects it under the shard lock.
 * False when the block was not LIVE.
 */
static bool remote_free(struct l25_region *r, unsigned i)
{
	uint64_t old;

	if (!remote_mark(r, i, &old))
		return false;
	if (!old)
		remote_push(r);
	return true;
}

/* Give p (in state want) back to its shard, locked, freed at now (ms). */
static void shard_free(void *p, uint8_t want, const char *what, uint32_t now)
{
	struct l25_region *r = region_of((uintptr_t)p);
	struct l25_shard *sh;
	struct l25_region *rel;
	unsigned i, t = my_tidx;

	sh = lock_block(p, &i, want, what);
	block_put(sh, r, i, now);
	if (!t || &shards[shard_index(t)] != sh)
		sh->remote_frees++;
	rel = shard_check(sh, now);
	hak_unlock(&sh->lock);
	if (unlikely(rel))
		pool_put_list(rel, true);
}

/*
 * Index of p in its region when p is, by a lock-free look, the start of
 * a live block; -1 otherwise (the locked path then decides). Reads of a
 * live block's region header are stable: the region keeps its class
 * while it has a live block.
 */
static inline int live_index(uintptr_t p, const struct l25_region *r)
{
	uint32_t off = (uint32_t)(p - region_base(r)), stride, i;

	if (unlikely(r->magic != L25_MAGIC || off < L25_HDR))
		return -1;
	stride = r->stride;
	i = (off - (uint32_t)L25_HDR) / stride;
	if (unlikely(i * stride != off - L25_HDR || i >= r->nblocks ||
		     arch_load_relaxed(&r->state[i]) != B_LIVE))
		return -1;
	return (int)i;
}

/*
 * Selftests only (selftests/l25_pool/l25_fork): step 1 does the first
 * half of a remote free of the live block p (state and bit), as a thread
 * stopped there by a fork would have, and returns 1 when p's bit was the
 * first in its region's word (the case that must push); step 2 does the
 * push. Nothing else calls it.
 */
int __hak_l25_test_remote_free(void *p, int step)
{
	struct l25_region *r = region_of((uintptr_t)p);
	uint64_t old;
	int i;

	if (step == 2) {
		remote_push(r);
		return 0;
	}
	i = live_index((uintptr_t)p, r);
	if (i < 0 || !remote_mark(r, (unsigned)i, &old))
		return -1;
	return !old;
}

/* Flush the oldest k cached blocks of class c to their shards. */
static void tc_flush(unsigned c, unsigned k)
{
	unsigned j, n = tc.n[c];
	uint32_t now = __hak_now_ms();

	for (j = 0; j < k; j++)
		shard_free((void *)(tc.blk[c][j] & ~4095UL), B_CACHED,
			   "corrupt L2.5 thread cache entry", now);
	memmove(tc.blk[c], tc.blk[c] + k, (n - k) * sizeof(tc.blk[c][0]));
	tc.n[c] = (uint8_t)(n - k);
	tc.bytes -= (size_t)k * slot_size(c);
}

static void tc_flush_all(void)
{
	unsigned c;

	for (c = 0; c < L25_TC_NCLASS; c++)
		if (tc.n[c])
			tc_flush(c, tc.n[c]);
}

/* Thread exit: give the cache back; later frees of this thread bypass it. */
static void tc_dtor(void *arg)
{
	(void)arg;
	tc_flush_all();
	tc.state = TC_DEAD;
}

/* First free of this thread: register the exit flush, turn the cache on. */
static __noinline bool tc_attach(void)
{
	unsigned st = arch_load_acquire(&tc_key_state);

	if (st == 0 && arch_cmpxchg(&tc_key_state, 0, 1) == 0) {
		st = pthread_key_create(&tc_key, tc_dtor) == 0 ? 2 : 3;
		arch_store_release(&tc_key_state, st);
	}
	for (unsigned n = 0; (st = arch_load_acquire(&tc_key_state)) == 1; n++)
		__hak_os_backoff(n);
	if (st != 2 || pthread_setspecific(tc_key, &tc) != 0) {
		tc.state = TC_DEAD;
		return false;
	}
	tc.state = TC_ON;
	return true;
}

static __noinline void l25_free_slow(void *p)
{
	if (L25_TC_N && tc.state == TC_NONE && tc_attach()) {
		hak_l25_free(p);
		return;
	}
	shard_free(p, B_LIVE, "not a live L2.5 pool block", __hak_now_ms());
}

/*
 * r belongs to the shard this thread allocates from: the one of its last
 * miss (a shard count grown since then only sends a block the other way
 * until the next miss: both ways are correct).
 */
static inline bool region_mine(const struct l25_region *r)
{
	return arch_load_relaxed(&r->shard) == my_home && my_home;
}

/*
 * Fast path, about 40 instructions: check by a lock-free look that p is
 * a live block; another shard's block goes to it on the lock-free remote
 * path (remote_free), one of ours is marked cached and pushed; when the
 * class is full, its older half is flushed first. Over the byte cap, or
 * anything unusual (including every bad pointer), the locked path. True
 * only when p went into the cache and nothing else was done (no lock, no
 * clock read): the core skips its purge tick then, as the small fast
 * path does.
 */
bool hak_l25_free(void *p)
{
	struct l25_region *r = region_of((uintptr_t)p);
	bool cached = true;
	unsigned c;
	int i;

	i = live_index((uintptr_t)p, r);
	if (unlikely(i < 0))
		goto slow;
	if (unlikely(!region_mine(r))) {
		if (remote_free(r, (unsigned)i))
			return false;
		goto slow;
	}
	if (unlikely(tc.state != TC_ON))
		goto slow;
	c = r->cls;
	if (unlikely(c >= L25_TC_NCLASS || tc.bytes + r->stride > L25_TC_BYTES))
		goto slow;
	if (unlikely(tc.n[c] == L25_TC_N)) {
		tc_flush(c, (L25_TC_N + 1) / 2);
		cached = false;
	}
	/* the stamp first: tc_purge() reads it once it sees B_CACHED */
	arch_store_relaxed(&r->stamp[i], __hak_tick_ms);
	arch_store_release(&r->state[i], B_CACHED);
	tc.blk[c][tc.n[c]++] = (uintptr_t)p | (unsigned)i;
	tc.bytes += r->stride;
	return cached;
slow:
	l25_free_slow(p);
	return false;
}

size_t hak_l25_usable(const void *p)
{
	const struct l25_region *r = region_of((uintptr_t)p);
	struct l25_shard *sh;
	unsigned i;
	size_t n;

	if (likely(live_index((uintptr_t)p, r) >= 0))
		return r->stride - hak_hd_guard_len();
	sh = lock_block(p, &i, B_LIVE, "usable size of a pointer that is not a live L2.5 block");
	n = r->stride - hak_hd_guard_len();
	hak_unlock(&sh->lock);
	return n;
}

/*
 * A decay pass (shard lock): the peak in use of the pass that ends goes
 * into the window of the last L25_PEAK_PASSES passes (L25_HOLD delays),
 * whose largest is what dirty_limit() allows above L25_DIRTY_BASE.
 */
static void peak_pass(struct l25_shard *sh)
{
	size_t m = 0;
	unsigned k;

	sh->peak_pass[sh->peak_next] = sh->peak_in_use;
	sh->peak_next = (sh->peak_next + 1) % L25_PEAK_PASSES;
	for (k = 0; k < L25_PEAK_PASSES; k++)
		if (sh->peak_pass[k] > m)
			m = sh->peak_pass[k];
	sh->peak_recent = m;
	sh->peak_in_use = sh->bytes_in_use;
}

size_t hak_l25_decay(unsigned now, unsigned delay)
{
	struct l25_region *rel, *r;
	size_t done = 0;
	unsigned c, s, n = arch_load_relaxed(&nshards);

	for (s = 0; s < n; s++) {
		struct l25_shard *sh = &shards[s];
		uint64_t before;

		if (!arch_load_relaxed(&sh->regions))
			continue;
		hak_lock(&sh->lock);
		remote_collect(sh, now);
		before = sh->purged_bytes;
		peak_pass(sh);
		take_roll(sh, now, delay);
		sh->reserve_kept = 0;
		for (c = 0; c < L25_NCLASS && sh->dirty_bytes; c++)
			purge_class(sh, c, now, delay);
		if (sh->reserve_kept)
			sh->reserve_passes++;
		tc_purge(sh, now, delay);
		rel = detach_empty(sh, false, now, delay, true);
		done += (size_t)(sh->purged_bytes - before);
		hak_unlock(&sh->lock);
		for (r = rel; r; r = r->next)
			done += L25_REGION;
		pool_put_list(rel, true);
	}
	return done;
}

/*
 * Other threads' cached blocks are theirs to reuse: a trim from one thread
 * (qemu's RCU thread calls malloc_trim(4 MiB) after each batch of
 * callbacks, 40 times in one qemu-img convert) purged every worker's
 * cache, and the workers faulted those pages straight back (def 1.32x
 * glibc's CPU, 7-15x its faults: reliability.md, twentieth run). So a trim
 * spares what was cached within spare_ms, as the decay pass does, and
 * purges what sat longer; glibc's trim leaves its thread caches alone.
 */
size_t hak_l25_release(unsigned spare_ms)
{
	struct l25_region *rel, *r;
	uintptr_t cur, end;
	size_t done = 0;
	unsigned s, n = arch_load_relaxed(&nshards), now = __hak_now_ms();

	tc_flush_all();
	for (s = 0; s < n; s++) {
		struct l25_shard *sh = &shards[s];
		uint64_t before;

		shard_lock(sh);
		remote_collect(sh, now);
		before = sh->purged_bytes;
		purge_older(sh, 0, 0);
		tc_purge(sh, now, spare_ms);
		rel = detach_empty(sh, true, 0, 0, false);
		done += (size_t)(sh->purged_bytes - before);
		hak_unlock(&sh->lock);
		for (r = rel; r; r = r->next)
			done += L25_REGION;
		pool_put_list(rel, false);
	}
	hak_lock(&pool_lock);
	rel = pool;
	pool = NULL;
	arch_store_relaxed(&npool, (size_t)0);
	cur = carve_cur;
	end = carve_end;
	carve_cur = carve_end = 0;
	hak_unlock(&pool_lock);
	for (r = rel; r; r = r->next)
		done += L25_REGION;
	pool_put_list(rel, false);
	if (cur < end)
		__hak_os_unmap((void *)cur, end - cur);
	return done;
}

void hak_l25_stats(struct hak_l25_stats *st)
{
	unsigned s, n = arch_load_relaxed(&nshards);
	uint64_t purged = arch_load_relaxed(&pool_purged_bytes);

	*st = (struct hak_l25_stats){ 0 };
	for (s = 0; s < n; s++) {
		struct l25_shard *sh = &shards[s];

		hak_lock(&sh->lock);
		remote_collect(sh, __hak_now_ms());
		st->blocks_in_use += sh->blocks_in_use;
		st->bytes_in_use += sh->bytes_in_use;
		st->allocs += sh->allocs;
		st->frees += sh->frees;
		st->remote_frees += sh->remote_frees;
		st->contended += sh->contended;
		st->dirty_bytes += sh->dirty_bytes;
		purged += sh->purged_bytes;
		st->cap_purged_bytes += (size_t)sh->cap_purged;
		st->tc_purged_bytes += (size_t)sh->tc_purged;
		st->reserve_bytes += sh->reserve_kept;
		st->reserve_passes += (size_t)sh->reserve_passes;
		st->handed += (size_t)sh->handed;
		hak_unlock(&sh->lock);
	}
	st->regions = arch_load_relaxed(&nr_regions);
	st->shards = n;
	st->shard_cap = arch_load_relaxed(&shard_cap);
	st->shard_grows = arch_load_relaxed(&nr_grows);
	st->region_maps = arch_load_relaxed(&nr_maps);
	st->map_calls = arch_load_relaxed(&nr_map_calls);
	st->region_unmaps = arch_load_relaxed(&nr_unmaps);
	st->purged_bytes = (size_t)purged;
	st->pages_released = (size_t)((purged + arch_load_relaxed(&unmapped_bytes)) / HAK_OS_PAGE);
	hak_lock(&pool_lock);
	st->pooled = npool;
	st->reserved_bytes = carve_end - carve_cur;
	hak_unlock(&pool_lock);
	for (s = 0; s < L25_TC_NCLASS; s++)
		st->cached += tc.n[s];
}

/*
 * Fork: every shard lock (all of the static array, so a shard added
 * meanwhile is covered), then the pool. Calls without lock context: sparse cannot
 * follow a lock count that depends on a loop.
 */
/* Give back the first n shards' locks, in reverse. */
static void l25_fork_give(unsigned n)
{
	for (; n; n--)
		hak_lock_fork_give(&shards[n - 1].lock);
}

/* False: backed off (lock.h), nothing held. */
bool hak_l25_fork_prepare(void)
{
	unsigned s;

	for (s = 0; s < L25_SHARDS_MAX; s++)
		if (!hak_lock_fork_take(&shards[s].lock)) {
			l25_fork_give(s);
			return false;
		}
	if (hak_lock_fork_take(&pool_lock))
		return true;
	l25_fork_give(L25_SHARDS_MAX);
	return false;
}

void hak_l25_fork_parent(void)
{
	hak_lock_fork_give(&pool_lock);
	l25_fork_give(L25_SHARDS_MAX);
}

/*
 * The child of a fork (one thread, every lock of ours was held at the
 * fork): rebuild the remote state a remote_free() may have left half
 * done in another thread of the parent. A block it had turned REMOTE
 * may lack its bit, and a region whose word it had made non-zero may be
 * missing from its shard's stack; later remote frees into that region
 * would then never be pushed, nor collected. So: every REMOTE block gets
 * its bit, every shard's stack is emptied, and each region with a bit is
 * pushed again. Collections run under the shard locks, so no bit was
 * being taken at the fork.
 */
static void remote_rebuild(void)
{
	struct l25_region *r;
	unsigned s, i;

	for (s = 0; s < L25_SHARDS_MAX; s++)
		arch_store_relaxed(&shards[s].remote_head, (struct l25_region *)NULL);
	for (r = all_regions; r; r = r->anext) {
		struct l25_shard *sh = arch_load_relaxed(&r->shard);
		uint64_t bits;

		if (!sh)
			continue;
		bits = arch_load_relaxed(&r->remote);
		for (i = 0; i < r->nblocks; i++)
			if (arch_load_relaxed(&r->state[i]) == B_REMOTE)
				bits |= 1ULL << i;
		arch_store_relaxed(&r->remote, bits);
		if (!bits)
			continue;
		arch_store_relaxed(&r->rnext, arch_load_relaxed(&sh->remote_head));
		arch_store_relaxed(&sh->remote_head, r);
	}
}

void hak_l25_fork_child(void)
{
	unsigned s;

	hak_lock_fork_reset(&pool_lock);
	for (s = 0; s < L25_SHARDS_MAX; s++)
		hak_lock_fork_reset(&shards[s].lock);
	remote_rebuild();
}
