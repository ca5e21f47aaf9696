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
 * took it off, outside the lock, then linked to the cold list.
 *
 * Policy (put): refuse blocks over max/4; evict (unmap) the coldest until
 * the new block fits in max. Under memory pressure (free + buffer RAM below
 * 1/16 of RAM, sampled with sysinfo() every 256 puts) purge every hot
 * block, oldest first, at each put. Without pressure everything cached
 * stays resident (BC_RESIDENT_DIV = 1): a purged block costs the same page
 * faults as a fresh mapping, and keeping only half resident cost ~6x in the
 * large-block churn (Documentation/boxes/bigcache.md).
 * munmap and madvise run outside the lock; a table resize maps its bucket
 * array under it (rare: log2 steps).
 *
 * Lock order: bc.lock -> meta lock (entries come from the metadata arena
 * and are recycled on a spare list). The large registry's locks are never
 * held with bc.lock: lib/large.c calls in with no lock held.
 */
#include <stdint.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <asm/atomic.h>
#include "init.h"
#include "lock.h"
#include "meta.h"
#include "os.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/bigcache/bc_internal.h"

#define BC_MIN_BITS		8
#define BC_MAX_BITS		16
#define BC_WALK_MAX		32	/* chain entries take() looks at */
#define BC_PRESSURE_EVERY	256	/* puts between sysinfo() samples */
#define BC_RESIDENT_DIV		1	/* resident limit: max / this (no pressure) */

struct bc_ent {
	struct bc_ent *next, **pprev;	/* hash chain */
	struct bc_ent *newer, *older;	/* hot or cold list; batch link */
	void *addr;
	size_t len;
	unsigned cls;
	bool purged;
};

struct bc_list {
	struct bc_ent *newest, *oldest;
};

static struct {
	struct hak_lock lock;
	struct bc_ent **tab;
	unsigned bits;
	size_t count;			/* blocks on the table */
	size_t bytes;			/* linked + in flight */
	size_t resident;		/* bytes on the hot list */
	size_t inflight;		/* bytes being purged */
	size_t max;
	struct bc_list hot, cold;
	struct bc_ent *spare;
	struct hak_bigcache_stats st;
	struct bc_ent *init_tab[1u << BC_MIN_BITS];
} bc = {
	.lock = HAK_LOCK_INIT,
	.max = HAK_BIGCACHE_DEFAULT_MAX,
};

static unsigned long bc_put_tick;
static int bc_pressure;
static int bc_pressure_forced = -1;	/* tests: -1 sample, else 0/1 */

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

static void tab_insert(struct bc_ent *e)
{
	struct bc_ent **pp = bc_bucket(e->cls), *f;

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
}

static void tab_remove(struct bc_ent *e)
{
	*e->pprev = e->next;
	if (e->next)
		e->next->pprev = e->pprev;
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
	return HAK_ALIGN_UP(((size_t)1 << bits) * sizeof(struct bc_ent *),
			    HAK_OS_PAGE);
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
	bc.bits = bits;
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

/* Evict the coldest block onto b->dead; false when nothing is linked. */
static bool evict_coldest(struct bc_batch *b)
{
	struct bc_ent *e = bc.cold.oldest ? bc.cold.oldest : bc.hot.oldest;

	if (!e)
		return false;
	unlink_ent(e);
	bc.bytes -= e->len;
	bc.st.evictions++;
	e->older = b->dead;
	b->dead = e;
	b->dead_bytes += e->len;
	return true;
}

/* Put the oldest hot blocks in flight until at most the limit is resident. */
static void pick_purges(struct bc_batch *b)
{
	size_t limit = arch_load_relaxed(&bc_pressure) ? 0 : bc.max / BC_RESIDENT_DIV;

	while (bc.resident > limit) {
		struct bc_ent *e = bc.hot.oldest;

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

/* Unmap and purge outside the lock, then settle the books under it. */
static void finish(struct bc_batch *b)
{
	struct bc_ent *e, *next;

	if (!b->dead && !b->purge)
		return;
	for (e = b->dead; e; e = e->older)
		__hak_os_unmap(e->addr, e->len);
	for (e = b->purge; e; e = e->older) {
		e->purged = __hak_os_purge(e->addr, e->len);
		if (!e->purged)
			__hak_os_unmap(e->addr, e->len);
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
		list_add_newest(&bc.cold, e);
		tab_insert(e);
		bc.count++;
	}
	tab_check_size();
	hak_unlock(&bc.lock);
}

/* Memory is tight when free + buffer RAM is below 1/16 of all RAM. */
static void sample_pressure(void)
{
	struct sysinfo si;
	int tight = 0;

	if (sysinfo(&si) == 0) {
		unsigned long long unit = si.mem_unit ? si.mem_unit : 1;
		unsigned long long avail = (si.freeram + si.bufferram) * unit;

		tight = avail < si.totalram * unit / 16;
	}
	if (arch_load_relaxed(&bc_pressure_forced) >= 0)
		tight = arch_load_relaxed(&bc_pressure_forced);
	arch_store_relaxed(&bc_pressure, tight);
}

void __hak_bigcache_force_pressure(int tight)
{
	arch_store_relaxed(&bc_pressure_forced, tight);
	sample_pressure();
}

void *hak_bigcache_take(size_t len, size_t align, size_t *got, bool *zeroed)
{
	size_t lmax = len + HAK_ALIGN_DOWN(len / 4, HAK_OS_PAGE);
	unsigned c, c_end = bc_class(lmax), walked = 0;
	struct bc_ent *e = NULL;
	void *p;

	hak_lock(&bc.lock);
	if (!bc.count)
		goto miss;
	for (c = bc_class(len); c <= c_end; c++) {
		struct bc_ent *fit = NULL;
		bool in_group = false;

		/* Best fit within the class: an exact length, else the smallest. */
		for (e = *bc_bucket(c); e; e = e->next) {
			if (++walked > BC_WALK_MAX)
				break;
			if (e->cls != c) {
				if (in_group)
					break;
				continue;
			}
			in_group = true;
			if (e->len >= len && e->len <= lmax &&
			    !((uintptr_t)e->addr & (align - 1)) &&
			    (!fit || e->len < fit->len)) {
				fit = e;
				if (e->len == len)
					break;
			}
		}
		if (fit) {
			e = fit;
			goto hit;
		}
		if (walked > BC_WALK_MAX)
			break;
	}
miss:
	bc.st.misses++;
	hak_unlock(&bc.lock);
	return NULL;
hit:
	unlink_ent(e);
	bc.bytes -= e->len;
	bc.st.hits++;
	p = e->addr;
	*got = e->len;
	*zeroed = e->purged;
	spare_put(e);
	tab_check_size();
	hak_unlock(&bc.lock);
	return p;
}

bool hak_bigcache_put(void *p, size_t len)
{
	struct bc_batch b = { NULL, NULL, 0 };
	struct bc_ent *e = NULL;

	if ((arch_fetch_add(&bc_put_tick, 1UL) % BC_PRESSURE_EVERY) == 0)
		sample_pressure();
	hak_lock(&bc.lock);
	bc_setup();
	if (len > bc.max / 4)
		goto refuse;
	e = bc.spare;
	if (e)
		bc.spare = e->next;
	else
		e = __hak_meta_alloc(sizeof(*e));
	if (!e)
		goto refuse;
	while (bc.bytes + len > bc.max) {
		/* Only blocks in flight left: refuse rather than wait. */
		if (!evict_coldest(&b))
			goto refuse;
	}
	e->addr = p;
	e->len = len;
	e->cls = bc_class(len);
	e->purged = false;
	list_add_newest(&bc.hot, e);
	tab_insert(e);
	bc.count++;
	bc.bytes += len;
	bc.resident += len;
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
	st->max_bytes = bc.max;
	st->buckets = bc.tab ? (size_t)1 << bc.bits : (size_t)1 << BC_MIN_BITS;
	if (!st->peak_buckets)
		st->peak_buckets = st->buckets;
	hak_unlock(&bc.lock);
}

/* Apply HAKMEM_BIGCACHE_MAX; may be called again (tests) to change it. */
void hak_bigcache_init(void)
{
	struct bc_batch b = { NULL, NULL, 0 };

	hak_lock(&bc.lock);
	bc_setup();
	bc.max = __hak_opt.bigcache_max;
	while (bc.bytes > bc.max && evict_coldest(&b))
		;
	bc.st.peak_bytes = bc.bytes;	/* the high-water mark under this bound */
	tab_check_size();
	hak_unlock(&bc.lock);
	finish(&b);
}

void hak_bigcache_fork_prepare(void)
{
	pthread_mutex_lock(&bc.lock.mu);
}

void hak_bigcache_fork_parent(void)
{
	pthread_mutex_unlock(&bc.lock.mu);
}

/*
 * The child has no thread to finish a purge in flight: those mappings stay
 * (unused) and leave the books.
 */
void hak_bigcache_fork_child(void)
{
	hak_lock_reinit(&bc.lock);
	bc.bytes -= bc.inflight;
	bc.inflight = 0;
}
