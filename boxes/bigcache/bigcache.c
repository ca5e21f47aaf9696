// SPDX-License-Identifier: MIT
/*
 * BigCache box: freed large mappings kept for reuse (Documentation/boxes/
 * bigcache.md).
 *
 * Size classes: a block of n pages has class n for n < 16, else 8 classes
 * per doubling of n (16 + 8 * (log2 n - 4) + the next 3 bits of n), so a
 * class spans at most 1/8 of its sizes; 264 classes cover 47 bits.
 *
 * Table: buckets of chains (hlist style: next, pprev), bucket = FNV-1a of
 * the class & mask. The blocks of one class are contiguous in their chain,
 * newest first, so take() finds a class's hottest block after skipping only
 * the blocks of the other classes that share the bucket. The table starts
 * with 256 buckets (static), doubles when it holds more blocks than
 * buckets (up to 65,536) and halves when it holds fewer than a quarter
 * (down to 256); a resize rebuilds the chains from the LRU lists.
 *
 * Split and join: a cached block is a page range, not necessarily a whole
 * mapping (munmap, madvise and a shrinking mremap work on any range). A
 * put keeps the freed block as it came, next to cached neighbours it may
 * have (found in two more hash tables, by start and by end address): its
 * boundaries are where its user's touched pages are. A take of len bytes
 * uses, in this order, a whole block of len..len + len/4 bytes (best fit);
 * the best run of adjacent cached blocks that holds len (joined from its
 * first block as far as needed, the head handed out, the rest of the last
 * block kept); any longer block (head handed out, tail kept); a purged
 * whole block only when no resident block or run holds len (take()).
 * Merging at the put, as this box first did, made every reuse a cut of a
 * merged range whose pages nobody had touched: twice the page faults and
 * 3x the peak RSS in producer-consumer at 8..512 KiB. A bitmap of the
 * classes that hold blocks lets take() skip empty classes.
 *
 * LRU: every cached block is on one of two lists, newest first: hot
 * (resident) and cold (purged with madvise: no RSS, reads as zero). Blocks
 * are purged from the hot list's old end, so every cold block is older
 * than every hot one and the coldest block is the cold list's oldest (or,
 * when that is empty, the hot list's oldest).
 *
 * Invariants, under bc.lock:
 *   bytes = bytes of linked blocks + inflight <= max, always;
 *   resident = bytes of hot blocks; count = linked blocks.
 * A block being purged is "in flight": off the table and the lists, its
 * bytes still in bytes (so the bound holds), purged by the thread that
 * took it off, outside the lock, then linked to the cold list. So is a
 * block being split with guard pages, while its head's guard is made.
 *
 * Growth: take_at(addr, len) hands out (the head of) the cached block that
 * starts at addr, so lib/large.c extends a block over the range after it.
 *
 * Decay: a hot block carries bc.now of its put (a split tail: of the take);
 * each put/take/take_at purges up to BC_DECAY_BATCH hot blocks older than
 * delay_ms from the hot list's old end (the list is in stamp order).
 * delay_ms is the delay the core's last decay pass used (lib/purge.c: the
 * configured one, or the one learned from refaults while the program is
 * busy; pass_delay()); the demand windows stay counted in the configured
 * one (decay_ms), so a delay that doubles keeps the demand history.
 *
 * Policy (put): refuse blocks over max/4; evict (unmap) the coldest until
 * the new block fits in max. Under memory pressure (MemAvailable below
 * 1/16 of RAM, sampled from /proc/meminfo at a put at most every 10 ms) purge every hot
 * block, oldest first, at each put. Without pressure everything cached
 * stays resident (BC_RESIDENT_DIV = 1): a purged block costs the same page
 * faults as a fresh mapping, and keeping only half resident cost ~6x in the
 * large-block churn (Documentation/boxes/bigcache.md).
 * The growth rule (pay_growth, at the decay passes): when the rest of the
 * process grows its resident set past its high-water mark, idle resident
 * blocks are purged to pay for it; once a take got paid pages back, not
 * those that could serve a take of that length (paid_back).
 * munmap and madvise run outside the lock; a table resize maps its bucket
 * array under it (rare: log2 steps).
 *
 * Guard pages (hardened box): lib/large.c puts only blocks followed by
 * their guard page, which stays outside the cached range, protected, while
 * the range is cached; a split makes the head's guard out of the first
 * page of the tail (the tail keeps the old one), so every range handed
 * out is followed by a guard; that mprotect runs after the lock is
 * dropped, the block in flight meanwhile (split_settle). Two cached
 * ranges are adjacent when one's guard ends where the other starts; a
 * join makes the guards between them read-write: the joined range keeps
 * the last guard. A join that a take hands out (or splits) at once does
 * that with one call for all of them after the lock is dropped
 * (join_settle; the block is no one else's by then), before the split's
 * guard; a join that stays cached, under the lock, one call each. Unmapping a range takes its guard
 * with it. Purging leaves the guard alone.
 *
 * Lock order: bc.lock -> meta lock (entries come from the metadata arena
 * and are recycled on a spare list). The large registry's locks are never
 * held with bc.lock: lib/large.c calls in with no lock held.
 */
#include <stdint.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/bigcache/bc_internal.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"

#define BC_MIN_BITS		8
#define BC_MAX_BITS		16
#define BC_WALK_MAX		32	/* chain entries take() looks at */
#define BC_PRESSURE_MS		10	/* ms between memory samples, at least */
#define BC_RESIDENT_DIV		1	/* resident limit: max / this (no pressure) */
#define BC_DECAY_BATCH		4	/* idle blocks purged per operation, at most */
#define BC_DEMAND_WINDOWS	8	/* decay windows of requests remembered */
#define BC_ACTIVE_DELAYS	2	/* a cache is idle 2 delays after its last take */
#define BC_RUN_MAX		32	/* neighbours a run walk looks at */
#define BC_RUN_SCAN		1024	/* blocks a miss looks at for a run */
#define BC_NCLASS		320	/* > bc_class() of any length below 2^52 */
#define BC_MAP_WORDS		(BC_NCLASS / 64)
#define BC_USERS_MAX		4	/* threads the default bound scales to */
#define BC_USER_WINDOW_MS	1000	/* users counted per window of this */
#define BC_STALE_TAKES		32	/* a block no take chose for this many */
#define BC_STALE_PER_BLOCK	4	/* ... or 4 per cached block, is stale */
#define BC_MISS_STALE_PER_BLOCK	8	/* at a miss: 8 per cached block */
#define BC_PAY_IDLE_DIV		4	/* growth is paid by blocks idle delay/4 */
#define BC_PAY_SLACK_DIV	32	/* ... once it is 1/32 over the mark */

struct bc_ent {
	struct bc_ent *next, **pprev;	/* hash chain */
	struct bc_ent *snext, **spprev;	/* address chain, by start */
	struct bc_ent *enext, **epprev;	/* address chain, by end */
	struct bc_ent *newer, *older;	/* hot or cold list; batch link */
	void *addr;
	size_t len;
	unsigned cls;
	unsigned stamp;			/* bc.now when it went on the hot list */
	unsigned long taken;		/* bc.takes when it was cached */
	bool purged;
	bool paid;			/* holds pages pay_growth purged */
};

struct bc_list {
	struct bc_ent *newest, *oldest;
};

static struct {
	struct hak_lock lock;
	struct bc_ent **tab;		/* by class; then by start, by end */
	struct bc_ent **atab_s, **atab_e;
	unsigned bits;
	size_t count;			/* blocks on the table */
	size_t bytes;			/* linked + in flight */
	size_t resident;		/* bytes on the hot list */
	size_t inflight;		/* bytes being purged or split */
	size_t foot_peak;		/* most live large + resident, at a miss */
	size_t proc_peak;		/* the resident set's mark (pay_growth) */
	size_t proc_rss;		/* the resident set at the last pass, less its pay */
	size_t proc_grown;		/* the large path's growth since that pass */
	size_t proc_credit;		/* of the one before it, not resident at that pass */
	size_t back_min;		/* shortest take a paid block served (paid_back) */
	size_t back_bytes;		/* bytes of those takes (paid_back's budget) */
	size_t max;			/* the bound: base * users (note_user) */
	size_t base;			/* HAKMEM_BIGCACHE_MAX */
	bool scaled;			/* base is the default: scale it */
	unsigned uwin;			/* window (now / BC_USER_WINDOW_MS + 1) */
	unsigned users, users_prev;	/* threads seen in it, in the one before */
	unsigned decay_ms;		/* the configured delay; 0: never purge */
	unsigned delay_ms;		/* the delay in force (pass_delay); 0 with decay_ms */
	bool delay_read;		/* decay_ms taken from HAKMEM_PURGE_DELAY_MS */
	unsigned now;			/* ms, coarse clock, at the last operation */
	unsigned last_take;		/* bc.now of the last take() */
	unsigned long takes;		/* take() calls and take_at() hits, ever */
	unsigned dwin[BC_DEMAND_WINDOWS];	/* window (now / decay_ms) of dmin[i] */
	size_t dmin[BC_DEMAND_WINDOWS];		/* shortest take() of that window */
	struct bc_list hot, cold;
	struct bc_ent *spare;
	uint32_t cls_count[BC_NCLASS];	/* linked blocks per class */
	uint64_t cls_map[BC_MAP_WORDS];	/* bit c: cls_count[c] != 0 */
	struct hak_bigcache_stats st;
	struct bc_ent *init_tab[3u << BC_MIN_BITS];
} bc = {
	.lock = HAK_LOCK_INIT,
	.max = HAK_BIGCACHE_DEFAULT_MAX,
	.base = HAK_BIGCACHE_DEFAULT_MAX,
	.scaled = true,
	.decay_ms = CONFIG_HAK_PURGE_DELAY_MS,
	.delay_ms = CONFIG_HAK_PURGE_DELAY_MS,
};

static unsigned bc_sampled_ms;		/* __hak_now_ms() of the last sample, 0: none yet */
static int bc_pressure;
static int bc_pressure_forced = -1;	/* tests: -1 sample, else 0/1 */
static bool bc_merge = true;		/* tests may turn merging off */
/* tests: called by join_settle() before a deferred join's guards go */
static void (*bc_join_hook)(void *from, size_t len, size_t n);

/* Work left for after the lock: blocks to unmap and blocks to purge. */
struct bc_batch {
	struct bc_ent *dead, *purge;
	size_t dead_bytes;
};

static unsigned bc_class(size_t len)
{
	size_t n = len / HAK_OS_PAGE;
	unsigned b;

	if (n < 16)
		return (unsigned)n;
	b = 63 - (unsigned)__builtin_clzl(n);
	/*
	 * Lengths of 2^52 and more share the last class: no mapping is that
	 * long (ARCH_MAP_WINDOW), but a request may be asked about, and the
	 * class indexes the class map and counts (prev_class read past
	 * cls_map for one of 2^54 when the generic window was 2^57).
	 */
	if (b >= 52 - 12)
		return BC_NCLASS - 1;
	return 16 + (b - 4) * 8 + (unsigned)((n >> (b - 3)) & 7);
}

/* FNV-1a (64 bit) over the 4 bytes of the class. */
static uint64_t bc_hash(unsigned cls)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned i;

	for (i = 0; i < 4; i++) {
		h ^= (cls >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct bc_ent **bc_bucket(unsigned cls)
{
	return &bc.tab[bc_hash(cls) & ((1u << bc.bits) - 1)];
}

static uint64_t addr_hash(uintptr_t a)
{
	return ((uint64_t)a >> 12) * 0x9e3779b97f4a7c15ULL;
}

static struct bc_ent **addr_bucket(struct bc_ent **t, uintptr_t a)
{
	return &t[addr_hash(a) >> (64 - bc.bits)];
}

/* The cached block starting (or ending) at a, or NULL. */
static struct bc_ent *find_start(uintptr_t a)
{
	struct bc_ent *e;

	for (e = *addr_bucket(bc.atab_s, a); e; e = e->snext)
		if ((uintptr_t)e->addr == a)
			return e;
	return NULL;
}

static struct bc_ent *find_end(uintptr_t a)
{
	struct bc_ent *e;

	for (e = *addr_bucket(bc.atab_e, a); e; e = e->enext)
		if ((uintptr_t)e->addr + e->len == a)
			return e;
	return NULL;
}

/* The cached block right after e (past e's guard), or NULL. */
static struct bc_ent *right_of(const struct bc_ent *e)
{
	return find_start((uintptr_t)e->addr + e->len + hak_hd_guard_len());
}

/* The cached block right before e (its guard ends where e starts), or NULL. */
static struct bc_ent *left_of(const struct bc_ent *e)
{
	return find_end((uintptr_t)e->addr - hak_hd_guard_len());
}

/*
 * Bytes of the run of cached neighbours from e rightwards (guards between
 * them included), counted until want or BC_RUN_MAX blocks.
 */
static size_t run_right(const struct bc_ent *e, size_t want)
{
	size_t g = hak_hd_guard_len(), n = e->len;
	unsigned i;

	for (i = 0; n < want && i < BC_RUN_MAX && (e = right_of(e)); i++)
		n += g + e->len;
	return n;
}

/* Bytes of e's run on both sides, counted until want (bounded walks). */
static size_t run_len(const struct bc_ent *e, size_t want)
{
	size_t g = hak_hd_guard_len(), n = run_right(e, want);
	unsigned i;

	for (i = 0; n < want && i < BC_RUN_MAX && (e = left_of(e)); i++)
		n += g + e->len;
	return n;
}

static void tab_insert(struct bc_ent *e)
{
	struct bc_ent **pp = bc_bucket(e->cls), *f;

	pp = addr_bucket(bc.atab_s, (uintptr_t)e->addr);
	e->snext = *pp;
	if (e->snext)
		e->snext->spprev = &e->snext;
	e->spprev = pp;
	*pp = e;
	pp = addr_bucket(bc.atab_e, (uintptr_t)e->addr + e->len);
	e->enext = *pp;
	if (e->enext)
		e->enext->epprev = &e->enext;
	e->epprev = pp;
	*pp = e;
	pp = bc_bucket(e->cls);

	/* In front of its class's group, or at the head. */
	for (f = *pp; f; f = f->next) {
		if (f->cls == e->cls) {
			pp = f->pprev;
			break;
		}
	}
	e->next = *pp;
	if (e->next)
		e->next->pprev = &e->next;
	e->pprev = pp;
	*pp = e;
	if (!bc.cls_count[e->cls]++)
		bc.cls_map[e->cls / 64] |= 1ULL << (e->cls % 64);
}

static void tab_remove(struct bc_ent *e)
{
	*e->pprev = e->next;
	if (e->next)
		e->next->pprev = e->pprev;
	*e->spprev = e->snext;
	if (e->snext)
		e->snext->spprev = e->spprev;
	*e->epprev = e->enext;
	if (e->enext)
		e->enext->epprev = e->epprev;
	if (!--bc.cls_count[e->cls])
		bc.cls_map[e->cls / 64] &= ~(1ULL << (e->cls % 64));
}

/* The first class >= c that holds a block, or BC_NCLASS. */
static unsigned next_class(unsigned c)
{
	unsigned w = c / 64;
	uint64_t m;

	if (c >= BC_NCLASS)
		return BC_NCLASS;
	m = bc.cls_map[w] & (~0ULL << (c % 64));
	while (!m) {
		if (++w == BC_MAP_WORDS)
			return BC_NCLASS;
		m = bc.cls_map[w];
	}
	return w * 64 + (unsigned)__builtin_ctzll(m);
}

static void list_add_newest(struct bc_list *l, struct bc_ent *e)
{
	e->older = l->newest;
	e->newer = NULL;
	if (l->newest)
		l->newest->newer = e;
	else
		l->oldest = e;
	l->newest = e;
}

static void list_remove(struct bc_list *l, struct bc_ent *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		l->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		l->oldest = e->newer;
}

static size_t tab_size(unsigned bits)
{
	return HAK_ALIGN_UP(((size_t)3 << bits) * sizeof(struct bc_ent *), HAK_OS_PAGE);
}

/* Rebuild the chains with 2^bits buckets; keeps the old table on failure. */
static void tab_resize(unsigned bits)
{
	struct bc_ent **old = bc.tab, **tab, *e;
	unsigned old_bits = bc.bits;

	if (bits == BC_MIN_BITS) {
		tab = bc.init_tab;
		memset(tab, 0, sizeof(bc.init_tab));
	} else {
		tab = __hak_os_map(tab_size(bits));
		if (!tab)
			return;
	}
	bc.tab = tab;
	bc.atab_s = tab + ((size_t)1 << bits);
	bc.atab_e = tab + ((size_t)2 << bits);
	bc.bits = bits;
	memset(bc.cls_count, 0, sizeof(bc.cls_count));
	memset(bc.cls_map, 0, sizeof(bc.cls_map));
	/* Oldest first, each in front of its group: groups end newest first. */
	for (e = bc.cold.oldest; e; e = e->newer)
		tab_insert(e);
	for (e = bc.hot.oldest; e; e = e->newer)
		tab_insert(e);
	if (old != bc.init_tab)
		__hak_os_unmap(old, tab_size(old_bits));
	if (bits > old_bits)
		bc.st.grows++;
	else
		bc.st.shrinks++;
	if (((size_t)1 << bits) > bc.st.peak_buckets)
		bc.st.peak_buckets = (size_t)1 << bits;
}

static void tab_check_size(void)
{
	size_t n = (size_t)1 << bc.bits;

	if (bc.count > n && bc.bits < BC_MAX_BITS)
		tab_resize(bc.bits + 1);
	else if (bc.count < n / 4 && bc.bits > BC_MIN_BITS)
		tab_resize(bc.bits - 1);
}

static void bc_setup(void)
{
	if (!bc.tab) {
		bc.tab = bc.init_tab;
		bc.atab_s = bc.init_tab + (1u << BC_MIN_BITS);
		bc.atab_e = bc.init_tab + (2u << BC_MIN_BITS);
		bc.bits = BC_MIN_BITS;
		bc.st.peak_buckets = (size_t)1 << BC_MIN_BITS;
	}
}

/* Take e off the table and its list (it stays counted in bytes). */
static void unlink_ent(struct bc_ent *e)
{
	tab_remove(e);
	list_remove(e->purged ? &bc.cold : &bc.hot, e);
	bc.count--;
	if (!e->purged)
		bc.resident -= e->len;
}

/* Unlink e and put it on b->dead, to be unmapped by finish(). */
static void evict(struct bc_batch *b, struct bc_ent *e)
{
	unlink_ent(e);
	bc.bytes -= e->len;
	bc.st.evictions++;
	e->older = b->dead;
	b->dead = e;
	b->dead_bytes += e->len;
}

/* Evict the coldest block onto b->dead; false when nothing is linked. */
static bool evict_coldest(struct bc_batch *b)
{
	struct bc_ent *e = bc.cold.oldest ? bc.cold.oldest : bc.hot.oldest;

	if (!e)
		return false;
	evict(b, e);
	return true;
}

/*
 * The cache's clock moves to now, never back: callers read the clock
 * before the lock (and the decay pass before its other caches' work), so
 * a later holder may bring an earlier time than the stamps already made.
 */
static void bc_clock(unsigned now)
{
	if (__hak_ms_age(now, bc.now))
		bc.now = now;
}

/*
 * How long after the last take the cache counts as in use (ms): two delays
 * (of the delay in force: an idle program's pass brings the configured one).
 * With one, a program descheduled for 450 ms on a loaded machine
 * (large-replace at load 30 on 2 cores) found its whole stock purged at its
 * next take, faulted it back (slower still), and did so again at the next
 * stall. Longer windows (up to 8 delays, stretched by the longest recent gap
 * between takes) were tried: they kept a program that had gone idle
 * resident past a second (issue 11's idle bar, bgp_basic's fork child).
 */
static unsigned active_ms(void)
{
	return BC_ACTIVE_DELAYS * bc.delay_ms;
}

/*
 * Demand: the shortest request take() saw in each of the last
 * BC_DEMAND_WINDOWS decay windows (hits and misses alike; take_at is growth
 * of a live block, not a new request). A slot belongs to the window in its
 * dwin; a slot of an older window is reused. Windows are configured delays
 * long, whatever delay is in force: the learned one doubles at each judged
 * window and halves back, and windows counted in it would not compare
 * across a move (each move would wipe the history it is learned for).
 * Called under the lock with bc.now set.
 */
static void note_demand(size_t len)
{
	unsigned w, i;

	if (bc.delay_ms && __hak_ms_age(bc.now, bc.last_take) > active_ms())
		bc.back_min = bc.back_bytes = 0;	/* the cache was idle: paid_back starts again */
	bc.last_take = bc.now;
	if (!bc.decay_ms)
		return;
	w = bc.now / bc.decay_ms;
	i = w % BC_DEMAND_WINDOWS;
	if (bc.dwin[i] != w || !bc.dmin[i]) {
		bc.dwin[i] = w;
		bc.dmin[i] = len;
	} else if (len < bc.dmin[i]) {
		bc.dmin[i] = len;
	}
}

/*
 * The default bound is per thread that churns large blocks, up to
 * BC_USERS_MAX of them: one stock serves one thread's reuse, and two
 * threads that share one stock of the same size evict each other's blocks
 * (large-block at 2 threads: 57 evictions of blocks of up to 16 MiB, then
 * 201,503 page faults for 40,000 operations against 57,710 for 20,000 at
 * one thread; with the bound doubled, 101,101, and the peak RSS 382 -> 405
 * MB against mimalloc's 460). Users are the threads that put or took in the
 * current window of BC_USER_WINDOW_MS or the one before, so the bound
 * follows the program down within two windows (the extra blocks are then
 * evicted by the next puts, or purged by the decay like any others). A
 * bound set with HAKMEM_BIGCACHE_MAX is the process's and is not scaled.
 * Called under the lock with bc.now set.
 */
static __thread unsigned bc_user_win __attribute__((tls_model("initial-exec")));

static void note_user(void)
{
	unsigned w = bc.now / BC_USER_WINDOW_MS + 1, n;

	if (w != bc.uwin) {
		bc.users_prev = w == bc.uwin + 1 ? bc.users : 0;
		bc.users = 0;
		bc.uwin = w;
	}
	if (bc_user_win != w) {
		bc_user_win = w;
		bc.users++;
	}
	if (!bc.scaled)
		return;
	/* at least 1: the caller was counted in this window */
	n = bc.users > bc.users_prev ? bc.users : bc.users_prev;
	if (n > BC_USERS_MAX)
		n = BC_USERS_MAX;
	bc.max = bc.base * n;
}

/*
 * Is the idle block e still wanted? Yes while the program takes from the
 * cache (a take within the delay) and e could serve a request of the size
 * it has been making (no shorter than the shortest take of the last
 * BC_DEMAND_WINDOWS windows: one window's few requests are a noisy floor,
 * and a block purged for sitting just above it faults back a window later).
 * Such a block is the stock best fit draws on: purging it only makes the
 * next take of it fault every page back (large-replace: 4-5x the page
 * faults of keeping it). Blocks too short for any recent request (a split's
 * tail, a burst's leftovers) and every block of a cache that is no longer
 * used decay as before.
 */
static bool wanted(const struct bc_ent *e)
{
	unsigned w, i;
	size_t m = SIZE_MAX;

	if (__hak_ms_age(bc.now, bc.last_take) > active_ms())
		return false;
	w = bc.now / bc.decay_ms;
	for (i = 0; i < BC_DEMAND_WINDOWS; i++)
		if (bc.dmin[i] && w - bc.dwin[i] < BC_DEMAND_WINDOWS && bc.dmin[i] < m)
			m = bc.dmin[i];
	return e->len >= m || (bc_merge && run_len(e, m) >= m);
}

/*
 * Pages the growth rule purged come back: a take of len bytes hands out a
 * block that holds some (e, before the take cuts it). The rule's pay
 * saved nothing then, the pages fault in again; len becomes a length the
 * program asks for again after a pay (paid_back). Under the lock.
 */
static void note_back(const struct bc_ent *e, size_t len)
{
	if (!e->paid)
		return;
	bc.st.paid_back++;
	bc.back_bytes += len;
	if (!bc.back_min || len < bc.back_min)
		bc.back_min = len;
}

/*
 * Does the growth rule leave the idle block e alone? Yes when, since the
 * cache was last idle (no take for active_ms), a take got paid pages back
 * (note_back) and e could serve one of that length (as long, or in a run
 * that long). A program whose large-block phases alternate with phases of
 * heap growth takes the blocks back at its next large phase: paying with
 * them lowers no peak (the peak is the next large phase, on top of the
 * heap), it only faults every page in again (numpy at a fixed pace: +8 to
 * +28 % minor faults; Documentation/boxes/bigcache.md, "Paid blocks that
 * come back"). One such take is the evidence; the blocks that could serve
 * it are kept while the program keeps taking, shorter ones still pay, and
 * a program that never takes paid pages back (soffice: its burst's blocks
 * stay unused) pays as before. An idle cache forgets it (note_demand).
 */
static bool paid_back(const struct bc_ent *e)
{
	if (!bc.back_min)
		return false;
	if (bc.delay_ms && __hak_ms_age(bc.now, bc.last_take) > active_ms())
		return false;
	return e->len >= bc.back_min || (bc_merge && run_len(e, bc.back_min) >= bc.back_min);
}

/*
 * Has the hot block e sat unused longer than the decay window? A block
 * that is old but still wanted is stamped anew and moved to the hot list's
 * new end, to be looked at again when the cache stops counting as in use
 * (or a window later, whichever is first). Its stamp may then be older
 * than its neighbours': the list stays in stamp order but for such blocks,
 * which can only wait behind younger ones, never hold an older one back.
 */
static bool decayed(struct bc_ent *e)
{
	unsigned due;

	if (!bc.delay_ms || __hak_ms_age(bc.now, e->stamp) <= bc.delay_ms)
		return false;
	if (!wanted(e))
		return true;
	/*
	 * Due again when the cache stops counting as in use, not a whole
	 * delay after this look: a pass (the background thread's, every
	 * quarter delay while the program is idle) that re-stamped it to now
	 * would keep it resident up to a delay and a pass longer than the
	 * program's activity warrants (idle-rss: 180 MiB still resident one
	 * second after the last take).
	 */
	due = bc.last_take + active_ms() - bc.delay_ms;
	list_remove(&bc.hot, e);
	e->stamp = (int)(due - bc.now) < 0 ? due : bc.now;	/* never ahead */
	list_add_newest(&bc.hot, e);
	return false;
}

/*
 * Put the oldest hot blocks in flight until at most the limit is resident
 * and none is older than the decay window (the hot list is in stamp order).
 * Decay takes a few blocks per operation: a block in flight is invisible to
 * take(), and one thread should not spend a burst of madvise calls.
 */
static void pick_purges(struct bc_batch *b)
{
	size_t limit = arch_load_relaxed(&bc_pressure) ? 0 : bc.max / BC_RESIDENT_DIV;
	unsigned decay = BC_DECAY_BATCH;

	while (bc.hot.oldest) {
		struct bc_ent *e = bc.hot.oldest;

		if (bc.resident <= limit) {
			if (!decay || __hak_ms_age(bc.now, e->stamp) <= bc.delay_ms || !bc.delay_ms)
				break;
			if (!decayed(e))
				continue;	/* re-stamped: look at the next */
			decay--;
		}

		unlink_ent(e);
		bc.inflight += e->len;
		e->older = b->purge;
		b->purge = e;
	}
}

static void spare_put(struct bc_ent *e)
{
	e->next = bc.spare;
	bc.spare = e;
}

/* Unmap a cached range, and its guard page with the hardened box. */
static void range_unmap(const struct bc_ent *e)
{
	__hak_os_unmap(e->addr, e->len + hak_hd_guard_len());
	if (hak_hd_guard_len())
		hak_hd_guard_gone(1);
}

/* Unmap and purge outside the lock, then settle the books under it. */
static void finish(struct bc_batch *b)
{
	struct bc_ent *e, *next;

	if (!b->dead && !b->purge)
		return;
	for (e = b->dead; e; e = e->older)
		range_unmap(e);
	for (e = b->purge; e; e = e->older) {
		e->purged = __hak_os_purge(e->addr, e->len);
		if (!e->purged)
			range_unmap(e);
	}
	hak_lock(&bc.lock);
	for (e = b->dead; e; e = next) {
		next = e->older;
		spare_put(e);
	}
	for (e = b->purge; e; e = next) {
		next = e->older;
		bc.inflight -= e->len;
		if (!e->purged) {
			bc.bytes -= e->len;
			bc.st.evictions++;
			spare_put(e);
			continue;
		}
		bc.st.purges++;
		bc.st.purged_bytes += e->len;
		list_add_newest(&bc.cold, e);
		tab_insert(e);
		bc.count++;
	}
	tab_check_size();
	hak_unlock(&bc.lock);
}

/*
 * Memory is tight when what the machine can still give (MemAvailable: free
 * RAM and the page cache it can drop) is below 1/16 of all RAM; without
 * /proc, free + buffer RAM (sysinfo), which reads "tight" whenever the page
 * cache has filled the memory (a loaded build machine: selftests found
 * every cached block purged at each put).
 */
static void sample_pressure(void)
{
	struct sysinfo si;
	size_t avail, total;
	int tight = 0;

	if (__hak_mem_available(&avail, &total)) {
		tight = avail < total / 16;
	} else if (__hak_os_sandboxed()) {
		/* sysinfo is not malloc's (OpenSSH's filter kills on it): as it was */
		tight = arch_load_relaxed(&bc_pressure);
	} else if (sysinfo(&si) == 0) {
		unsigned long long unit = si.mem_unit ? si.mem_unit : 1;
		unsigned long long spare = (si.freeram + si.bufferram) * unit;

		tight = spare < si.totalram * unit / 16;
	}
	if (arch_load_relaxed(&bc_pressure_forced) >= 0)
		tight = arch_load_relaxed(&bc_pressure_forced);
	arch_store_relaxed(&bc_pressure, tight);
}

/*
 * A sample reads /proc/meminfo (open, read, close: microseconds). Every 256
 * puts it was 12,066 reads in 2 s of a 1 MiB malloc/free loop (report-wait
 * under strace; the loop runs ~3M pairs a second without it): by time, at
 * most one per BC_PRESSURE_MS, by whichever put claims it. The first put
 * samples at once (a reading is never 0): the clock starts at 1 in each
 * process, and a process short of memory from the start kept its first
 * 10 ms of frees resident (selftests/bigcache/bc_pressure_first).
 */
static void pressure_tick(unsigned now)
{
	unsigned last = arch_load_relaxed(&bc_sampled_ms);

	if ((!last || __hak_ms_age(now, last) >= BC_PRESSURE_MS) &&
	    arch_cmpxchg(&bc_sampled_ms, last, now) == last)
		sample_pressure();
}

void __hak_bigcache_set_merge(bool on)
{
	hak_lock(&bc.lock);
	bc_merge = on;
	hak_unlock(&bc.lock);
}

void __hak_bigcache_set_join_hook(void (*fn)(void *from, size_t len, size_t n))
{
	bc_join_hook = fn;
}

bool __hak_bigcache_lock_held(void)
{
	if (pthread_mutex_trylock(&bc.lock.mu))
		return true;
	pthread_mutex_unlock(&bc.lock.mu);
	return false;
}

void __hak_bigcache_set_decay(unsigned ms)
{
	hak_lock(&bc.lock);
	/* windows are counted in delays: those of another delay do not compare */
	if (bc.decay_ms != ms)
		memset(bc.dmin, 0, sizeof(bc.dmin));
	bc.decay_ms = ms;
	bc.delay_ms = ms;
	hak_unlock(&bc.lock);
}

void __hak_bigcache_force_pressure(int tight)
{
	arch_store_relaxed(&bc_pressure_forced, tight);
	sample_pressure();
}

/*
 * The entry of class c after e (NULL: its first) in c's bucket chain, where
 * a class's entries sit together; NULL past them or past BC_WALK_MAX
 * entries walked in all (*walked).
 */
static struct bc_ent *class_next(unsigned c, struct bc_ent *e, unsigned *walked)
{
	bool in_group = e != NULL;

	for (e = e ? e->next : *bc_bucket(c); e; e = e->next) {
		if (++*walked > BC_WALK_MAX)
			return NULL;
		if (e->cls == c)
			return e;
		if (in_group)
			return NULL;
	}
	return NULL;
}

/*
 * The best block of class c for len bytes aligned to align and at most
 * max long, or NULL: in len's own class (whose blocks may be shorter) an
 * exact length, else the shortest that fits; in a higher class (every
 * block long enough) the newest aligned one; only resident blocks when
 * hot is set. At most *walked chain entries in all.
 */
static struct bc_ent *class_fit(unsigned c, size_t len, size_t max, size_t align,
				bool own, bool hot, unsigned *walked)
{
	struct bc_ent *e, *fit = NULL;

	for (e = class_next(c, NULL, walked); e; e = class_next(c, e, walked)) {
		if (e->len < len || e->len > max || ((uintptr_t)e->addr & (align - 1)) ||
		    (hot && e->purged))
			continue;
		if (!own)
			return e;
		if (!fit || e->len < fit->len) {
			fit = e;
			if (e->len == len)
				break;
		}
	}
	return fit;
}

/*
 * A block of classes c0..c1 for len bytes (at most max long), or NULL;
 * BC_WALK_MAX chain entries in all.
 */
static struct bc_ent *classes_fit(unsigned c0, unsigned c1, size_t len, size_t max,
				  size_t align, bool hot)
{
	unsigned c, walked = 0;
	struct bc_ent *e;

	for (c = next_class(c0); c <= c1 && c < BC_NCLASS && walked < BC_WALK_MAX;
	     c = next_class(c + 1)) {
		e = class_fit(c, len, max, align, c == c0, hot, &walked);
		if (e)
			return e;
	}
	return NULL;
}

/*
 * Guard pages a join left between its parts (hardened box), made
 * read-write by join_settle() once the lock is dropped: n guards, in the
 * range [from, from + len) (the rest of that range is the joined blocks'
 * own pages, which a guard removal leaves as they are).
 */
struct bc_join {
	char *from;
	size_t len, n;
	char *at[BC_RUN_MAX];	/* each guard (for valgrind, below) */
};

/* Whether coalesce(s, len) would reach len bytes: its loop, dry. */
static bool join_reaches(const struct bc_ent *s, size_t len)
{
	size_t g = hak_hd_guard_len(), have = s->len, bytes = bc.bytes;
	uintptr_t end = (uintptr_t)s->addr + s->len;
	const struct bc_ent *n;
	unsigned i = 0;

	while (have < len && i++ < BC_RUN_MAX && (n = find_start(end + g))) {
		if (bytes + g > bc.max)
			break;
		bytes += g;
		have += g + n->len;
		end = (uintptr_t)n->addr + n->len;
	}
	return have >= len;
}

/*
 * Join the cached blocks right after s into s until it holds len bytes
 * (the caller checked with run_right that the run is long enough). The
 * result is s, linked again, hot unless every part was purged (a partly
 * purged range counts as resident, as the merges of a put once did). The
 * joined guards become cached bytes, and a join that would take them past
 * the bound stops short: a guarded split of the result keeps them counted
 * after the lock is dropped, until split_settle() (bc_table's monitor saw
 * the bound exceeded in that window).
 *
 * With guard pages, a join that reaches len leaves the guards between its
 * parts in place and describes them in *j: the caller hands the result out
 * (take_head) before it drops the lock, so no other thread sees it, and
 * join_settle() removes them all with one call after the lock is dropped.
 * Made here, one call per guard under bc.lock held every other thread's
 * take and put for as long (hardened large-block at 2 threads: 2,670 futex
 * calls per run, 486 without guards). A join that stops short stays
 * cached: its guards are removed here, under the lock, and a guard that
 * cannot be stops it.
 */
static struct bc_ent *coalesce(struct bc_ent *s, size_t len, struct bc_join *j)
{
	size_t g = hak_hd_guard_len();
	bool purged = s->purged, paid = s->paid, defer = g && join_reaches(s, len);
	struct bc_ent *n;
	unsigned i = 0;

	j->from = (char *)s->addr + s->len;
	j->len = j->n = 0;
	unlink_ent(s);
	while (s->len < len && i++ < BC_RUN_MAX &&
	       (n = find_start((uintptr_t)s->addr + s->len + g))) {
		if (g && bc.bytes + g > bc.max)
			break;
		if (g && !defer && !hak_hd_guard_unset((char *)s->addr + s->len))
			break;
		unlink_ent(n);
		s->len += g + n->len;
		bc.bytes += g;
		purged = purged && n->purged;
		paid = paid || n->paid;
		bc.st.merges++;
		if (defer) {
			j->at[j->n++] = (char *)n->addr - g;
			j->len = (size_t)((char *)n->addr - j->from);
		}
		spare_put(n);
	}
	s->cls = bc_class(s->len);
	s->purged = purged;
	s->paid = paid;
	s->stamp = bc.now;
	s->taken = bc.takes;
	list_add_newest(purged ? &bc.cold : &bc.hot, s);
	tab_insert(s);
	bc.count++;
	if (!purged)
		bc.resident += s->len;
	return s;
}

/*
 * The second half of a deferred join (no lock held; the joined block is
 * handed out or in flight): its inner guards made read-write, one call
 * for all of them. Under valgrind one call per guard: a lifted guard is
 * made accessible to memcheck (lib/os.c), and the blocks between, a tail
 * that stays cached among them, must stay as memcheck has them. False
 * when the kernel refused (the block then still has guards inside: the
 * caller gives it up, join_fail()).
 */
static bool join_settle(struct bc_join *j)
{
	size_t i;

	if (!j->n)
		return true;
	if (unlikely(bc_join_hook))
		bc_join_hook(j->from, j->len, j->n);
	if (likely(!hak_vg_running()))
		return hak_hd_guards_clear(j->from, j->len, j->n);
	for (i = 0; i < j->n; i++) {
		if (!hak_hd_guard_unset(j->at[i])) {
			j->n -= i;	/* the guards left, for join_fail */
			return false;
		}
	}
	return true;
}

/*
 * After take() found no single block of len bytes (or only a purged one):
 * the best run of cached neighbours that holds len bytes from a block
 * aligned as asked (the least bytes beyond len once the run holds len),
 * joined into one, or NULL. Looks at up to BC_RUN_SCAN blocks of the hot
 * list, then (unless hot is set) of the cold one (resident pages first);
 * a run is walked from its first block, or from any aligned block when
 * the alignment is above a page. A miss
 * maps and faults len fresh bytes, so a walk over the cached blocks is
 * cheap beside it. Blocks are joined only here and in take_at, when one
 * is needed: a put keeps its block's boundaries, so a request of about
 * that size gets back the block whose pages were touched, not a cut of a
 * merged range that lands on pages nobody touched (producer-consumer-mid:
 * twice the page faults and RSS when puts merged, Documentation/boxes/
 * bigcache.md).
 */
static struct bc_ent *find_run(size_t len, size_t align, struct bc_join *j, bool hot)
{
	struct bc_list *lists[2] = { &bc.hot, &bc.cold };
	struct bc_ent *e, *best = NULL;
	size_t n, best_n = SIZE_MAX;
	unsigned i = 0, k;

	for (k = 0; k < (hot ? 1u : 2u) && !best; k++) {
		for (e = lists[k]->newest; e && i < BC_RUN_SCAN; e = e->older, i++) {
			if ((uintptr_t)e->addr & (align - 1))
				continue;
			if (align <= HAK_OS_PAGE && left_of(e))
				continue;	/* walked from its run's first block */
			n = run_right(e, SIZE_MAX);
			if (n >= len && n < best_n) {
				best = e;
				best_n = n;
				if (n == len)
					break;
			}
		}
	}
	return best ? coalesce(best, len, j) : NULL;
}

/*
 * A split whose guard page is made after the lock is dropped (hardened
 * box): e (unlinked, its bytes in flight) is cut at len, t is the entry
 * for its tail. split_settle() makes the guard and links the tail.
 */
struct bc_split {
	struct bc_ent *e, *t;
	size_t len;
};

/* Link t as e's tail after a head of len bytes and a guard of g. */
static void tail_link(struct bc_ent *e, struct bc_ent *t, size_t len, size_t g)
{
	t->addr = (char *)e->addr + len + g;
	t->len = e->len - len - g;
	t->cls = bc_class(t->len);
	t->purged = e->purged;
	t->paid = e->paid;
	t->stamp = bc.now;
	t->taken = bc.takes;
	list_add_newest(t->purged ? &bc.cold : &bc.hot, t);
	tab_insert(t);
	bc.count++;
	if (!t->purged)
		bc.resident += t->len;
	bc.st.splits++;
}

/*
 * Hand out e (linked) for a request of len bytes; *got is the length handed
 * out. More than slack too long (len/4, or 0 for a growth's copy:
 * hak_bigcache_take_grow): split, hand out the head and keep the tail
 * cached (same residency). No system call: a block is a page range, and
 * munmap/madvise work on any range. Without an entry for the tail the whole
 * block goes. With guard pages the tail's first page becomes the head's
 * guard, made by split_settle() once the caller has dropped the lock
 * (*sp set): an mprotect takes the process's mmap lock for writing and
 * waits for the page faults other threads are in, and made under bc.lock
 * it held every other thread's take and put as long (hardened
 * realloc-chain at 2 threads: 1,377 futex calls per run, 66 without
 * guards). Meanwhile the whole block is in flight: off the table, its
 * bytes still counted, so no one else takes the page that becomes the
 * guard and the bound holds.
 */
static void *take_head(struct bc_ent *e, size_t len, size_t slack, size_t *got,
		       struct bc_split *sp)
{
	size_t g = hak_hd_guard_len();
	struct bc_ent *t = NULL;
	void *p = e->addr;

	unlink_ent(e);
	if (e->len - len > slack + g) {
		t = bc.spare;
		if (t)
			bc.spare = t->next;
		else
			t = __hak_meta_alloc(sizeof(*t));
		if (t && g) {
			bc.inflight += e->len;
			*sp = (struct bc_split){ e, t, len };
			*got = len;
			return p;
		}
	}
	if (t) {
		tail_link(e, t, len, 0);
		*got = len;
	} else {
		*got = e->len;
	}
	bc.bytes -= e->len - (t ? t->len : 0);	/* the head */
	spare_put(e);
	return p;
}

/*
 * The second half of a guarded split (no lock held): the guard after the
 * head, then the tail linked. When the guard cannot be made the whole
 * block goes (*got: its length), as before the split was deferred.
 */
static void split_settle(struct bc_split *sp, size_t *got)
{
	struct bc_ent *e = sp->e, *t = sp->t;
	size_t g = hak_hd_guard_len();
	bool ok;

	if (!e)
		return;
	ok = hak_hd_guard_set((char *)e->addr + sp->len);
	hak_lock(&bc.lock);
	bc.inflight -= e->len;
	if (ok) {
		tail_link(e, t, sp->len, g);
		bc.bytes -= e->len - t->len;	/* the head, and a new guard */
		*got = sp->len;
	} else {
		spare_put(t);
		bc.bytes -= e->len;
		*got = e->len;
	}
	spare_put(e);
	hak_unlock(&bc.lock);
}

/*
 * A deferred join whose guards could not be removed (join_settle): the
 * block at p (handed out, or in flight for a split, *sp) goes, with its
 * guards, and the take is a miss. Rare: a guard marker's removal does not
 * fail; an mprotect can (ENOMEM past vm.max_map_count).
 */
static void *join_fail(void *p, struct bc_split *sp, size_t *got, const struct bc_join *j)
{
	size_t len = *got;

	if (sp->e) {
		hak_lock(&bc.lock);
		len = sp->e->len;
		bc.inflight -= len;
		bc.bytes -= len;
		spare_put(sp->t);
		spare_put(sp->e);
		hak_unlock(&bc.lock);
	}
	__hak_os_unmap(p, len + hak_hd_guard_len());
	hak_hd_guard_gone(j->n + 1);
	return NULL;
}

/* Both deferred halves of a take, in order (no lock held). */
static void *take_settle(void *p, struct bc_split *sp, size_t *got, struct bc_join *j)
{
	if (unlikely(!join_settle(j)))
		return join_fail(p, sp, got, j);
	split_settle(sp, got);
	return p;
}

/*
 * The growth rule: resident cached bytes follow the rest of the process.
 *
 * Cached blocks are the one part of the process's resident set that the
 * allocator holds by choice. bc.proc_peak is a high-water mark of that
 * set (/proc/self/statm, read at each decay pass: every quarter delay
 * while the program calls the allocator). The large path's own growth
 * between two passes (a miss's fresh mapping, a realloc growth, a take of
 * a purged block whose pages fault in afresh: proc_raise) raises the mark
 * by what it adds, once the stale-block rules below had their say (what
 * is not in the resident set yet at a pass, pages not touched so far,
 * waits for the next pass, up to the bound's worth); any
 * other growth past the mark (the small and mid heaps filling, the
 * program's own mappings) is paid for at the pass by purging resident
 * blocks idle for a quarter delay or more, oldest first, until the
 * resident set is back at the mark (pay_growth), passing over the blocks
 * the program has shown it takes back (paid_back); what is left over when
 * nothing idle remains raises the mark. So the cache keeps resident what
 * the rest of the process has left below its highest, plus what its own
 * misses added: a program that frees a burst of large blocks and then
 * fills its heap gets their pages back for the heap instead of adding the
 * heap on top (soffice: two 64 MiB and two 4 MiB blocks taken and freed
 * in turn, then heap growth with 136 MB still cached: Documentation/
 * boxes/bigcache.md, "The growth rule"). A churn of large blocks alone
 * grows only at misses and is left alone; so is a block taken or freed
 * within the last quarter delay.
 */
static void proc_raise(size_t fresh)
{
	bc.proc_grown += fresh;
}

/*
 * Set at the first put: until the cache has held a block the growth rule
 * has nothing to pay with, so a decay pass reads the resident set only
 * from then on (a program that never frees a large block opens no /proc
 * file for it). Atomic: read before the lock.
 */
static int bc_used __boot_once;

/*
 * A take of len bytes; a block within slack of len is handed out whole
 * (take_head splits a longer one). The search for a whole block always
 * allows len/4: what differs is only how much of it goes out.
 */
static void *take(size_t len, size_t align, size_t *got, bool *zeroed, bool exact)
{
	struct bc_batch b = { NULL, NULL, 0 };
	struct bc_split sp = { NULL, NULL, 0 };
	struct bc_join jn;	/* .at[] is set by coalesce() only */
	size_t slack = HAK_ALIGN_DOWN(len / 4, HAK_OS_PAGE);
	unsigned c0 = bc_class(len), now = __hak_now_ms();
	struct bc_ent *e = NULL;
	void *p;

	jn.n = 0;
	hak_lock(&bc.lock);
	bc_clock(now);
	note_demand(len);
	note_user();
	bc.takes++;
	if (!bc.count)
		goto miss;
	/*
	 * A whole block first (at most len/4 too long): the one the last user
	 * of about this size touched. Then the best run of neighbours (cut at
	 * its head), then any longer block (cut).
	 *
	 * But a purged whole block faults every page in again while resident
	 * cached pages stay idle beside it: when resident blocks hold len,
	 * a resident one that holds it (the shortest, cut), or a run of
	 * neighbours from a resident block, goes out instead. numpy phases
	 * of 4-32 MB arrays between phases of heap growth (whose growth
	 * rule purged the oldest blocks, Documentation/boxes/bigcache.md):
	 * peak RSS 193-203 -> 152-175 MB, as many page faults.
	 */
	e = classes_fit(c0, bc_class(len + slack), len, len + slack, align, false);
	if (e && e->purged && bc.resident >= len) {
		struct bc_ent *h = classes_fit(c0, BC_NCLASS, len, SIZE_MAX, align, true);

		if (!h && bc_merge && (h = find_run(len, align, &jn, true)) && h->len < len) {
			/* stopped short (jn left empty): it may have joined e */
			h = NULL;
			e = classes_fit(c0, bc_class(len + slack), len, len + slack, align, false);
		}
		if (h)
			e = h;
	}
	if (e)
		goto hit;
	if (bc_merge) {
		e = find_run(len, align, &jn, false);
		if (e && e->len >= len)
			goto hit;
	}
	e = classes_fit(c0, BC_NCLASS, len, SIZE_MAX, align, false);
	if (e)
		goto hit;
miss:
	bc.st.misses++;
	pick_purges(&b);
	hak_unlock(&bc.lock);
	finish(&b);
	return NULL;
hit:
	bc.st.hits++;
	*zeroed = e->purged;
	note_back(e, len);
	p = take_head(e, len, exact ? 0 : slack, got, &sp);
	if (*zeroed)
		proc_raise(*got);	/* its pages fault in afresh */
	tab_check_size();
	pick_purges(&b);
	hak_unlock(&bc.lock);
	p = take_settle(p, &sp, got, &jn);
	finish(&b);
	return p;
}

void *hak_bigcache_take(size_t len, size_t align, size_t *got, bool *zeroed)
{
	return take(len, align, got, zeroed, false);
}

/*
 * For a realloc growth that copies into a cached block: exactly len bytes
 * (page-rounded), the rest of the block left cached where it lies, right
 * after the one handed out. The copy paths already ask for half again the
 * old length, so the slack a whole block would add is not needed for the
 * next steps. Handed out whole, it was resident pages that only a later
 * growth might touch; left cached, it is stock for any request, take_at
 * finds it when cached neighbours make a run long enough for the chain's
 * next growth, and it decays like any cached block when nobody wants it.
 * realloc-large, fixed work, 5 seeds: one thread 136 -> 121 MB peak and
 * 10% less CPU (Documentation/boxes/bigcache.md, "Growth takes exactly
 * what it asks").
 */
void *hak_bigcache_take_grow(size_t len, size_t *got, bool *zeroed)
{
	return take(len, HAK_OS_PAGE, got, zeroed, true);
}

/* The last class <= c that holds a block, or BC_NCLASS when none does. */
static unsigned prev_class(unsigned c)
{
	unsigned w = c / 64;
	uint64_t m = bc.cls_map[w] & (~0ULL >> (63 - c % 64));

	while (!m) {
		if (!w--)
			return BC_NCLASS;
		m = bc.cls_map[w];
	}
	return w * 64 + 63 - (unsigned)__builtin_clzll(m);
}

/*
 * A miss's second chance: the longest resident cached block shorter than
 * len, handed out whole (*got: its length), or NULL. lib/large.c grows it
 * to len where it lies, without moving its pages (the free address space
 * right after or right before it; lib/os.c __hak_os_extend), and puts it
 * back when neither side is free. Without it a miss maps len fresh bytes
 * while the shorter blocks stay cached and resident: every miss adds its
 * whole length to the footprint, which is how the stock that best fit
 * draws on grew to 100+ MiB above the live blocks in large-replace. Moving
 * the block with mremap (MREMAP_MAYMOVE) would always succeed, but on the
 * measuring machine (a guest with shadow page tables) touching moved pages
 * cost as much as faulting them: user time doubled. Purged blocks are left
 * alone: their pages are gone, growing one saves nothing. At most
 * BC_WALK_MAX chain entries.
 */
void *hak_bigcache_take_shorter(size_t len, size_t *got)
{
	unsigned c, walked = 0;
	struct bc_ent *e, *fit = NULL;
	void *p = NULL;

	hak_lock(&bc.lock);
	if (!bc.resident)
		goto out;
	for (c = prev_class(bc_class(len)); c < BC_NCLASS && walked < BC_WALK_MAX && !fit;
	     c = c ? prev_class(c - 1) : BC_NCLASS)
		for (e = class_next(c, NULL, &walked); e; e = class_next(c, e, &walked))
			if (!e->purged && e->len < len && (!fit || e->len > fit->len))
				fit = e;
	if (!fit)
		goto out;
	bc.st.shorter++;
	unlink_ent(fit);
	bc.bytes -= fit->len;
	p = fit->addr;
	*got = fit->len;
	spare_put(fit);
	tab_check_size();
out:
	hak_unlock(&bc.lock);
	return p;
}

/*
 * Growth in place: the cached block (or run of neighbours) that starts
 * exactly at addr, when it is at least min bytes long: its head of len
 * bytes when longer (as in take()), all of it when shorter than len. The
 * caller extends the block that ends at addr over it: resident pages, no
 * system call. The range may be another mapping (VMA) than the caller's
 * block: munmap and madvise of the union work, mremap of it fails (EFAULT)
 * and realloc falls back to a copy.
 *
 * A hit counts as a take for the stale-block clock (bc.takes): a program
 * whose chains grow in place draws on the cache as much as one whose
 * chains copy into it, and the blocks it leaves unchosen age as fast
 * (realloc-large, fixed work, without it: peak RSS +5-9% once growth
 * takes ranges shorter than its headroom; Documentation/boxes/bigcache.md,
 * "Growth over a range shorter than the headroom").
 */
void *hak_bigcache_take_at(void *addr, size_t min, size_t len, size_t *got)
{
	struct bc_batch b = { NULL, NULL, 0 };
	struct bc_split sp = { NULL, NULL, 0 };
	struct bc_join jn;	/* .at[] is set by coalesce() only */
	unsigned now = __hak_now_ms();
	struct bc_ent *e;
	void *p = NULL;
	bool cold;

	jn.n = 0;
	hak_lock(&bc.lock);
	bc_clock(now);
	if (!bc.count)
		goto out;
	e = find_start((uintptr_t)addr);
	if (e && e->len < len && bc_merge && run_right(e, len) >= min)
		e = coalesce(e, len, &jn);
	if (!e || e->len < min)
		goto out;
	if (len > e->len)
		len = e->len;
	bc.st.extends++;
	bc.takes++;
	cold = e->purged;
	p = take_head(e, len, HAK_ALIGN_DOWN(len / 4, HAK_OS_PAGE), got, &sp);
	if (cold)
		proc_raise(*got);
	tab_check_size();
out:
	pick_purges(&b);
	hak_unlock(&bc.lock);
	if (p)
		p = take_settle(p, &sp, got, &jn);
	finish(&b);
	return p;
}

/*
 * A decay pass's half of the growth rule, with the resident set rss read
 * before the lock (0: unknown, nothing done). Bytes put in flight; under
 * bc.lock.
 */
static size_t pay_growth(struct bc_batch *b, size_t rss)
{
	size_t lim, grown = bc.proc_grown, kept = 0, done = 0, young;
	unsigned idle = bc.delay_ms / BC_PAY_IDLE_DIV;
	struct bc_ent *e, *n;

	if (!rss)
		return 0;
	/*
	 * The large path's own growth, and the last interval's credit, on
	 * top of the resident set at the last pass; of that set, only what
	 * the mark covers: growth within the slack was nobody's to raise the
	 * mark with (taken as the base, it let every pass lift the mark by
	 * up to 1/32 unpaid, so a heap that grew slowly never paid).
	 */
	lim = (bc.proc_rss < bc.proc_peak ? bc.proc_rss : bc.proc_peak) + bc.proc_credit + grown;
	bc.proc_grown = bc.proc_credit = 0;
	if (lim > rss) {
		/*
		 * Pages not touched yet: their credit waits one pass, and
		 * only this interval's growth's (at most a bound's worth).
		 * The difference also holds whatever the process gave back
		 * since the last pass (purges, unmaps, frees of untouched
		 * blocks); carried on, it let the heap grow unpaid later.
		 */
		bc.proc_credit = lim - rss < grown ? lim - rss : grown;
		if (bc.proc_credit > bc.max)
			bc.proc_credit = bc.max;
		lim = rss;
	}
	if (!bc.proc_peak)
		lim = rss;
	if (lim > bc.proc_peak)
		bc.proc_peak = lim;
	if (rss <= bc.proc_peak + bc.proc_peak / BC_PAY_SLACK_DIV)
		goto out;
	for (e = bc.hot.oldest; e && rss > bc.proc_peak &&
	     __hak_ms_age(bc.now, e->stamp) >= idle; e = n) {
		n = e->newer;
		if (paid_back(e) && kept + e->len <= bc.back_bytes) {
			kept += e->len;	/* the program takes such blocks back */
			continue;
		}
		unlink_ent(e);
		bc.inflight += e->len;
		rss = rss > e->len ? rss - e->len : 0;
		done += e->len;
		bc.st.paid++;
		e->paid = true;
		e->older = b->purge;
		b->purge = e;
	}
	/*
	 * Nothing idle left: the program grew, by what the young resident
	 * blocks (left alone: taken or freed within the idle age) cannot
	 * cover. The rest waits for them: once idle they pay, unless the
	 * program took them back. Raising the mark by all of it kept a burst
	 * freed just before the heap grew resident for good (R's examples:
	 * 45 MB of freed vectors under a heap that grew by 20 MB).
	 */
	young = bc.resident > kept ? bc.resident - kept : 0;
	if (rss > bc.proc_peak + young)
		bc.proc_peak = rss - young;
out:
	bc.proc_rss = rss;
	return done;
}

/*
 * Unmap, oldest first, hot blocks that no take chose in the last
 * per_block takes per cached block (at least BC_STALE_TAKES), until about
 * want bytes are gone; bytes unmapped. Under bc.lock.
 */
static size_t evict_stale(struct bc_batch *b, size_t want, unsigned long per_block)
{
	unsigned long stale = per_block * bc.count;
	size_t done = 0;
	struct bc_ent *e;

	if (stale < BC_STALE_TAKES)
		stale = BC_STALE_TAKES;
	while (done < want && (e = bc.hot.oldest) && bc.takes - e->taken > stale) {
		done += e->len;
		bc.st.offsets++;
		evict(b, e);
	}
	return done;
}

/*
 * A realloc growth is about to add len fresh bytes to the footprint (an
 * mremap that grows the block, or a copy into a new mapping: nothing cached
 * was long enough). Unmap, oldest first, the resident cached blocks that
 * no take chose in the last BC_STALE_TAKES takes (BC_STALE_PER_BLOCK per
 * cached block when that is more), up to about len bytes: the fresh pages
 * then replace blocks the program stopped asking for instead of adding to
 * them. A growing chain leaves a block behind at every copy; while the
 * program keeps taking from the cache nothing in it ages out (wanted()),
 * so the leftovers of the chains that grew past them stayed resident
 * (realloc-large: 136 MB peak at fixed work, 96 MB with this, and 11% less
 * CPU: Documentation/boxes/bigcache.md, "Stale blocks make room for a
 * growth"). Unmapped, not purged: a purged block stays a best-fit
 * candidate and faults every page back when taken (realloc-chain: purging
 * blocks idle for 64 takes made 45% more page faults). At a malloc's miss
 * every time, the evictions cost more hits than they saved (large-block:
 * +13% page faults; a miss asks only past the footprint's high-water mark,
 * hak_bigcache_offset_miss below). Looks at the hot list's old end only
 * (stamp order, close to take order).
 */
void hak_bigcache_offset(size_t len)
{
	struct bc_batch b = { NULL, NULL, 0 };

	/*
	 * No unlocked look at bc.resident first: the puts write it as a
	 * plain field under the lock (TSan: a data race), and this runs
	 * only where a growth maps 64 KiB or more anyway.
	 */
	if (!len)
		return;
	hak_lock(&bc.lock);
	if (bc.resident)
		evict_stale(&b, len, BC_STALE_PER_BLOCK);
	proc_raise(len);
	hak_unlock(&bc.lock);
	finish(&b);
}

/*
 * A malloc's miss is about to add fresh bytes to the footprint, with live
 * bytes (the new block included) in live large blocks. Only the part of
 * them that lifts live + resident cached bytes over its highest value at
 * any miss so far asks for stale blocks to go (BC_MISS_STALE_PER_BLOCK
 * takes per cached block: a malloc's stock is drawn on, if rarely; at 4
 * per block, as for growths, large-block made 13% more page faults).
 * A cache that serves a churn keeps whatever stock it reached; one whose
 * stock keeps growing at misses while blocks sit unchosen (large-replace:
 * its peak rose with every second of the run, 1.21x mimalloc's in the
 * suite's 1.5 s) trades those blocks for the new pages instead of adding
 * to them. Measured: Documentation/boxes/bigcache.md, "Stale blocks make
 * room for a miss that raises the footprint".
 */
void hak_bigcache_offset_miss(size_t fresh, size_t live)
{
	struct bc_batch b = { NULL, NULL, 0 };
	size_t foot, over;

	if (!fresh)
		return;
	hak_lock(&bc.lock);
	foot = live + bc.resident;
	if (foot > bc.foot_peak) {
		over = foot - bc.foot_peak;
		if (bc.foot_peak && bc.resident)
			foot -= evict_stale(&b, over < fresh ? over : fresh,
					    BC_MISS_STALE_PER_BLOCK);
		if (foot > bc.foot_peak)
			bc.foot_peak = foot;
	}
	proc_raise(fresh);
	hak_unlock(&bc.lock);
	finish(&b);
}

bool hak_bigcache_put(void *p, size_t len)
{
	struct bc_batch b = { NULL, NULL, 0 };
	struct bc_ent *e = NULL;
	unsigned now = __hak_now_ms();

	pressure_tick(now);
	hak_lock(&bc.lock);
	bc_clock(now);
	bc_setup();
	note_user();
	if (len > bc.base / 4)
		goto refuse;
	e = bc.spare;
	if (e)
		bc.spare = e->next;
	else
		e = __hak_meta_alloc(sizeof(*e));
	if (!e)
		goto refuse;
	/*
	 * No merge here: the block keeps its own boundaries, so the next
	 * request of about its size gets it back whole, with the pages its
	 * last user touched (coalesce() joins neighbours when a request needs
	 * more than any one block).
	 */
	while (bc.bytes + len > bc.max) {
		/* Only blocks in flight left: refuse rather than wait. */
		if (!evict_coldest(&b))
			goto refuse;
	}
	e->addr = p;
	e->len = len;
	e->cls = bc_class(len);
	e->stamp = bc.now;	/* not now: bc.now may be later (bc_clock) */
	e->taken = bc.takes;
	e->purged = false;
	e->paid = false;
	list_add_newest(&bc.hot, e);
	tab_insert(e);
	bc.count++;
	bc.bytes += len;
	bc.resident += len;
	if (!arch_load_relaxed(&bc_used))
		arch_store_relaxed(&bc_used, 1);
	bc.st.puts++;
	if (bc.bytes > bc.st.peak_bytes)
		bc.st.peak_bytes = bc.bytes;
	tab_check_size();
	pick_purges(&b);
	hak_unlock(&bc.lock);
	finish(&b);
	return true;
refuse:
	if (e)
		spare_put(e);
	bc.st.refused++;
	hak_unlock(&bc.lock);
	finish(&b);
	return false;
}

/*
 * The delay in force after a core pass that used delay: the configured one
 * (decay_ms), or the pass's when that is longer than HAKMEM_PURGE_DELAY_MS
 * (learned from refaults while the program is busy: lib/purge.c, learn()).
 * So BigCache purges, between passes too, at the delay every other cache
 * uses, and an idle program's pass (the configured delay) brings it back.
 * decay_ms differs from the option only in tests (__hak_bigcache_set_decay):
 * the learned delay lengthens theirs, never shortens it or turns it on.
 */
static unsigned pass_delay(unsigned delay)
{
	if (!bc.decay_ms || delay <= __hak_opt.purge_delay_ms)
		return bc.decay_ms;
	return delay > bc.decay_ms ? delay : bc.decay_ms;
}

/*
 * The core's decay pass (lib/purge.c, possibly from the background purge
 * thread while the program is idle), at the delay it uses: purge every hot
 * block unused for longer than the delay, not just the few an operation
 * purges.
 */
size_t hak_bigcache_decay(unsigned now, unsigned delay)
{
	struct bc_batch b = { NULL, NULL, 0 };
	size_t done = 0, rss = arch_load_relaxed(&bc_used) ? __hak_rss() : 0;
	struct bc_ent *e;

	hak_lock(&bc.lock);
	bc_clock(now);
	bc.delay_ms = pass_delay(delay);
	while ((e = bc.hot.oldest) && bc.delay_ms && __hak_ms_age(bc.now, e->stamp) > bc.delay_ms) {
		if (!decayed(e))
			continue;	/* still wanted: re-stamped */
		unlink_ent(e);
		bc.inflight += e->len;
		done += e->len;
		e->older = b.purge;
		b.purge = e;
	}
	done += pay_growth(&b, rss);
	hak_unlock(&bc.lock);
	finish(&b);
	return done;
}

size_t hak_bigcache_release(void)
{
	struct bc_batch b = { NULL, NULL, 0 };

	hak_lock(&bc.lock);
	while (evict_coldest(&b))
		;
	if (bc.tab && bc.bits > BC_MIN_BITS)
		tab_resize(BC_MIN_BITS);
	hak_unlock(&bc.lock);
	finish(&b);
	return b.dead_bytes;
}

void hak_bigcache_stats(struct hak_bigcache_stats *st)
{
	hak_lock(&bc.lock);
	*st = bc.st;
	st->cached_blocks = bc.count;
	st->cached_bytes = bc.bytes;
	st->resident_bytes = bc.resident;
	st->foot_peak = bc.foot_peak;
	st->proc_peak = bc.proc_peak;
	st->max_bytes = bc.max;
	st->buckets = bc.tab ? (size_t)1 << bc.bits : (size_t)1 << BC_MIN_BITS;
	if (!st->peak_buckets)
		st->peak_buckets = st->buckets;
	hak_unlock(&bc.lock);
}

/*
 * What the kernel holds of the linked blocks (mincore): resident_bytes is
 * the hot list's bytes, which counts a block's pages resident whether or
 * not its last user touched them or calloc gave them back (lib/zero.c),
 * and steers the purges; this is for the statistics. Blocks in flight are
 * not counted, nor those taken between the copy and the kernel's answer.
 */
size_t hak_bigcache_resident(struct hak_os_rss *r)
{
	const struct bc_list *l[2] = { &bc.hot, &bc.cold };
	const struct bc_ent *e;
	unsigned i;

	/* copied under the lock, counted after it (lib/os.h, __hak_os_rss_reserve) */
	hak_lock(&bc.lock);
	__hak_os_rss_reserve(r, &bc.lock, bc.count);
	for (i = 0; i < ARRAY_SIZE(l); i++)
		for (e = l[i]->newest; e; e = e->older)
			__hak_os_rss_add(r, e->addr, e->len);
	hak_unlock(&bc.lock);
	return __hak_os_rss_flush(r);
}

/* Apply HAKMEM_BIGCACHE_MAX; may be called again (tests) to change it. */
void hak_bigcache_init(void)
{
	struct bc_batch b = { NULL, NULL, 0 };

	hak_lock(&bc.lock);
	bc_setup();
	bc.base = __hak_opt.bigcache_max;
	bc.max = bc.base;
	bc.scaled = bc.base == HAK_BIGCACHE_DEFAULT_MAX;
	/* The delay once, at start-up: tests that call init again keep theirs. */
	if (!bc.delay_read) {
		bc.delay_read = true;
		bc.decay_ms = (unsigned)__hak_opt.purge_delay_ms;
		bc.delay_ms = bc.decay_ms;
	}
	while (bc.bytes > bc.max && evict_coldest(&b))
		;
	bc.st.peak_bytes = bc.bytes;	/* the high-water mark under this bound */
	bc.foot_peak = 0;		/* and the footprint's, at misses */
	bc.proc_peak = bc.proc_rss = bc.proc_grown = bc.proc_credit = 0;	/* and the resident set's */
	bc.back_min = bc.back_bytes = 0;
	tab_check_size();
	hak_unlock(&bc.lock);
	finish(&b);
}

bool hak_bigcache_fork_prepare(void)
{
	return hak_lock_fork_take(&bc.lock);
}

void hak_bigcache_fork_parent(void)
{
	hak_lock_fork_give(&bc.lock);
}

/*
 * The child has no thread to finish a purge or a guarded split in flight
 * (bc.inflight): those mappings stay (unused) and leave the books.
 */
void hak_bigcache_fork_child(void)
{
	hak_lock_fork_reset(&bc.lock);
	bc.bytes -= bc.inflight;
	bc.inflight = 0;
}
