// SPDX-License-Identifier: MIT
/*
 * Grow areas: address space reserved per thread for large blocks that
 * realloc grows (lib/grow.h).
 *
 * Why: a chain of small increments past the L2.5 pool (string builders,
 * vectors; realloc-chain) grew each large block with mremap, moved it
 * into a fresh mapping or extended a cached neighbour: each of those calls
 * takes the mmap lock for writing (and the VMA's lock), and at two threads
 * the other thread's page faults slept on it (realloc-chain, 2 threads:
 * 26-32 context switches a run, nearly all in lock_mm_and_find_vma or
 * behind do_mremap's down_write; mimalloc, which commits in its own
 * reserved arena, 1-3). Here a thread reserves one area of GROW_NSLOT
 * slots of HAK_GROW_SLOT (1 MiB) bytes (one mmap with MAP_NORESERVE,
 * advised MADV_NOHUGEPAGE so THP cannot fault 2 MiB at once over two
 * slots, and so the area never merges with another mapping), and a block
 * grows within its slot by a store: its new pages are faulted by the
 * program's own writes, under the VMA's read lock, which no one here ever
 * takes for writing. Past its slot a block is copied out to the usual
 * large path with half again its length (lib/large.c).
 *
 * Accounting: a slot's dirty bytes (from its start: the most any block
 * in it reached since it was last purged) are counted as mapped
 * (__hak_os_commit: the memory limit and the fault-injection site
 * HAK_OS_MAP see them); the rest of the area is address space only. A
 * freed slot keeps its pages, stamped with the time, for the next block
 * (the take prefers the free slot with the most dirty bytes); a free slot
 * unused for the purge delay is purged with MADV_DONTNEED and uncounted,
 * and malloc_trim, the memory limit and a failed allocation's retry purge
 * every free slot at once.
 *
 * Ownership: an area is taken by one thread (owner), which places blocks
 * in it; any thread frees or resizes the blocks (the large registry finds
 * them), under the area's lock. At thread exit the area is given up with
 * its live blocks, and the next thread that needs one takes it. An area
 * no thread owns and no block uses is unmapped by malloc_trim, the memory
 * limit's purge-all and a failed allocation's retry (areas_give_back), and
 * its index reserved again by a later claim (at most GROW_MAX_AREAS; past
 * that, and when an area is full, blocks go the usual large way). A used
 * slot's dirty tail past its block is purged like a free slot, once the
 * block has been there for the delay. Under valgrind there are no areas,
 * nor under vm.overcommit_memory=2, which charges a MAP_NORESERVE reserve
 * in full (area_claim).
 *
 * Guard pages (hardened, where guards are page-table markers): a slot is
 * a page longer (GROW_STRIDE), and the page right after its block is a
 * guard, so an overflow off the block's end faults as it does off any
 * large block's. A resize moves the guard (MADV_GUARD_REMOVE of the old
 * page, now inside the block or past it, MADV_GUARD_INSTALL at the new
 * end: two calls), so a growth is given up to twice the old length; the
 * rest of the slot keeps its pages for the growth, as without guards. A
 * free leaves the guard where it is, and a take prefers a free slot whose
 * guard is up to a quarter past the request, whose length the block then
 * gets: no call. A guard put on a resident page frees it, and the kernel
 * then interrupts the other CPUs the process runs on to flush their TLBs
 * (about 20 us a guard at two threads); so a take purges, in one batch,
 * the pages its block's guards will use and the same pages of the other
 * free slots (slot_prezap), and the guards made there later cost no
 * flush. With mprotect guards (kernels before 6.13) each guard would
 * split the area's mapping: no areas then, as before.
 *
 * Lock order: areas_lock -> an area's lock -> nothing (the OS layer takes
 * none). Called with no registry lock held; the decay and the retry's
 * purge come with the caller's heap entered (refill -> purge tick), the
 * order the fork handlers keep too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <asm/atomic.h>
#include <asm/processor.h>
#include "grow.h"
#include "init.h"
#include "lock.h"
#include "os.h"
#include "tcache.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"

#define GROW_NSLOT	32
/* with guard pages a slot also holds the guard after a block of a whole slot */
#define GROW_STRIDE	(HAK_GROW_SLOT + hak_hd_guard_len())
#define GROW_AREA_LEN	(GROW_NSLOT * GROW_STRIDE)
#define GROW_MAX_AREAS	64
#define GUARD_NONE	SIZE_MAX	/* no guard page in the slot */

struct grow_area {
	struct hak_lock lock;
	char *base;			/* atomic: NULL once given back (trim) */
	int owner;			/* a thread places blocks here */
	uint32_t used;			/* slots holding a block */
	size_t dirty[GROW_NSLOT];	/* counted bytes from each slot's start */
	size_t len[GROW_NSLOT];		/* a used slot's block length */
	unsigned stamp[GROW_NSLOT];	/* ms: when a slot was freed or taken */
	/*
	 * Guard pages (hardened): offsets of slot i's guard pages, GUARD_NONE
	 * for none: its block's (or its last block's) and at most one more
	 * past it, left by a longer block before.
	 */
	size_t guard[GROW_NSLOT], stray[GROW_NSLOT];
	/*
	 * Hardened: offset of a page of free slot i purged for the guard of
	 * a later take of that length (slot_prezap), GUARD_NONE for none.
	 */
	size_t clean[GROW_NSLOT];
	uint32_t dead;			/* slots a failed guard call left unusable */
} __aligned(ARCH_CACHE_LINE);

static struct grow_area areas[GROW_MAX_AREAS];
static unsigned nr_areas __boot_once;		/* atomic: areas ever used */
static struct hak_lock areas_lock = HAK_LOCK_INIT;
static size_t nr_takes, nr_grows, nr_refused, nr_purged;	/* atomic */
static int grow_off;			/* atomic: no reservation possible */

static __thread struct grow_area *my_area __attribute__((tls_model("initial-exec")));

/*
 * With guard pages (hardened) only where they are page-table markers
 * (Linux 6.13 on), which split no mapping: with mprotect every slot's
 * guard would split the area (and count against the map-count budget).
 */
static bool grow_enabled(void)
{
	return __hak_opt.grow_area && !hak_vg_running() &&
	       !arch_load_relaxed(&grow_off) &&
	       (!hak_hd_guard_len() || !__hak_os_guard_splits());
}

/*
 * Hardened: slot s's guard page (a's lock held) moved to len, its block's
 * length: guards now inside the block are made read-write, the page at
 * len made a guard unless it is one (the kernel frees it if it was
 * resident). A guard past len stays (the next growth may end right at
 * it: a call saved twice); of two past len the farther goes. The rest of
 * the slot keeps its pages for the block's growth. The new guard goes in
 * first and the old ones come out farthest first, so a failed call
 * (false) leaves the block as it was, guard included; it may leave a
 * guard where the slot's next block would be: the slot is never used
 * again. A failure to drop the farther guard past len harms only reuse:
 * the slot is dead, the block guarded (true).
 */
static bool slot_guard_at(struct grow_area *a, unsigned s, size_t len)
{
	char *slot = a->base + (size_t)s * GROW_STRIDE;
	size_t g[2] = { a->guard[s], a->stray[s] };
	size_t past = GUARD_NONE, far = GUARD_NONE;
	bool there = false;
	unsigned i;

	for (i = 0; i < 2; i++) {
		if (g[i] == GUARD_NONE || g[i] < len) {
			continue;	/* none, or inside the block now: below */
		} else if (g[i] == len) {
			there = true;
		} else if (past == GUARD_NONE) {
			past = g[i];
		} else if (g[i] < past) {
			far = past;
			past = g[i];
		} else {
			far = g[i];
		}
	}
	if (!there && !__hak_os_guard(slot + len, HAK_HD_GUARD_PAGE))
		goto dead;
	/* stray (past guard) before guard: guard is the block's own end */
	for (i = 2; i-- > 0;)
		if (g[i] != GUARD_NONE && g[i] < len &&
		    !__hak_os_unguard(slot + g[i], HAK_HD_GUARD_PAGE))
			goto dead;
	a->guard[s] = len;
	a->stray[s] = past;
	if (far != GUARD_NONE && !__hak_os_unguard(slot + far, HAK_HD_GUARD_PAGE))
		a->dead |= 1u << s;
	return true;
dead:
	a->dead |= 1u << s;
	return false;
}

/*
 * Hardened, a take of slot s for a block of len bytes: the pages where
 * its guard goes, at the take and at each resize of a chain of small
 * growths (len, then twice the old length less a page: the resize rule
 * of __hak_grow_resize), are purged in one batch where the slot is
 * resident, and with them the same pages of every other free slot, for
 * the next takes (realloc moves its chains out of the L2.5 pool with one
 * length, half again the pool's largest, so takes ask that length again;
 * clean[] remembers the length a free slot was purged for).
 * Why: a guard put on a resident page frees the page, and the kernel
 * flushes the TLB of every CPU the process runs on (two threads on two
 * CPUs: an interrupt to the other, 18 us a guard against 0.9 us on a page
 * that is not resident; hardened.md). Purged together the pages cost one
 * flush (process_madvise batches it), the guards made on them later
 * none. The pages lie past every block (a free slot has none), which may
 * not touch them, and stay counted in dirty (over by a few pages, as a
 * marker leaves it). a's lock is held.
 */
#define PREZAP_MAX	HAK_PURGE_BATCH

/*
 * Hardened: the length a resize of a block of len bytes is given (twice
 * len less a page, at most the slot: __hak_grow_resize), which is where
 * its next guard goes.
 */
static inline size_t guarded_growth(size_t len)
{
	return 2 * len - HAK_OS_PAGE < HAK_GROW_SLOT ? 2 * len - HAK_OS_PAGE : HAK_GROW_SLOT;
}

/* Slot i's pages of the guards of a block taken at len, where resident. */
static void ladder_add(struct grow_area *a, unsigned i, size_t len, struct hak_purge_batch *b)
{
	char *slot = a->base + (size_t)i * GROW_STRIDE;
	size_t p;

	if (a->clean[i] == len)
		return;		/* purged already, no block since */
	for (p = len; p < a->dirty[i] && b->n < PREZAP_MAX;
	     p = guarded_growth(p)) {
		if (p != a->guard[i] && p != a->stray[i])
			__hak_os_purge_add(b, slot + p, HAK_OS_PAGE);
	}
}

static void slot_prezap(struct grow_area *a, unsigned s, size_t len)
{
	struct hak_purge_batch b;
	unsigned i;

	b.n = 0;
	b.done = 0;
	ladder_add(a, s, len, &b);
	a->clean[s] = GUARD_NONE;	/* its block may write there now */
	if (!b.n)
		return;			/* no guard of this block flushes */
	for (i = 0; i < GROW_NSLOT && b.n + 2 <= PREZAP_MAX; i++) {
		if (i == s || ((a->used | a->dead) & (1u << i)) || a->dirty[i] <= len)
			continue;
		ladder_add(a, i, len, &b);
		a->clean[i] = len;
	}
	/* one page: its guard's own flush is as cheap */
	if (b.n > 1)
		__hak_os_purge_flush(&b);
}

/*
 * Count the growth of a slot with d dirty bytes to *len as mapped; when
 * that is refused (memory limit, fault injection) and *len was stretched
 * past want (hardened's lengths), count only want and make it *len.
 */
static bool slot_commit(size_t d, size_t *len, size_t want)
{
	if (*len <= d || __hak_os_commit(*len - d))
		return true;
	if (want >= *len)
		return false;
	*len = want;
	return want <= d || __hak_os_commit(want - d);
}

/* A guard page of free or resized slot s at an offset in [lo, hi], else GUARD_NONE. */
static size_t slot_fit(const struct grow_area *a, unsigned s, size_t lo, size_t hi)
{
	if (a->guard[s] >= lo && a->guard[s] <= hi)
		return a->guard[s];
	if (a->stray[s] >= lo && a->stray[s] <= hi)
		return a->stray[s];
	return GUARD_NONE;
}

/* An area for this thread: one given up by an exited thread, or a new one. */
static struct grow_area *area_claim(void)
{
	struct grow_area *a = NULL;
	unsigned i, n;
	bool fresh;
	void *p;

	/*
	 * Under vm.overcommit_memory=2 an area's MAP_NORESERVE reserve would
	 * be charged in full (32 MiB per growing thread, whatever its blocks
	 * use): no areas there, blocks grow the usual large way (mremap).
	 * Nor under an RLIMIT_AS or RLIMIT_DATA under 64 GiB, which the
	 * reserve would come out of whole (ml34: four threads' areas took
	 * 128 MiB of a python3's ulimit -v).
	 */
	if (__hak_os_space_costly()) {
		arch_store_relaxed(&grow_off, 1);
		return NULL;
	}
	hak_lock(&areas_lock);
	n = arch_load_relaxed(&nr_areas);
	for (i = 0; i < n; i++) {
		if (areas[i].owner)
			continue;
		if (arch_load_relaxed(&areas[i].base)) {
			a = &areas[i];
			goto own;
		}
		if (!a)
			a = &areas[i];	/* given back: reserve it again */
	}
	if (!a && n == GROW_MAX_AREAS)
		goto out;
	p = __hak_os_reserve(GROW_AREA_LEN);
	if (!p) {
		/* no address space (RLIMIT_AS): the usual large way from now on */
		arch_store_relaxed(&grow_off, 1);
		a = NULL;
		goto out;
	}
	/* THP would fault a whole 2 MiB slot on its first write */
	(void)__hak_os_advise_huge(p, GROW_AREA_LEN, false);
	fresh = !a;
	if (fresh)
		a = &areas[n];
	for (i = 0; i < GROW_NSLOT; i++)
		a->guard[i] = a->stray[i] = a->clean[i] = GUARD_NONE;
	a->dead = 0;
	arch_store_relaxed(&a->base, (char *)p);
	if (fresh)
		arch_store_release(&nr_areas, n + 1);
own:
	a->owner = 1;
out:
	hak_unlock(&areas_lock);
	return a;
}

/* The area and slot of p, a slot's start handed out here. */
static struct grow_area *area_of(const void *p, unsigned *slot)
{
	unsigned i, n = arch_load_acquire(&nr_areas);
	uintptr_t a = (uintptr_t)p;

	for (i = 0; i < n; i++) {
		uintptr_t b = (uintptr_t)arch_load_relaxed(&areas[i].base);

		if (b && a - b < GROW_AREA_LEN) {
			*slot = (unsigned)((a - b) / GROW_STRIDE);
			return &areas[i];
		}
	}
	__hak_report("grow area block %p not in any area", p);
	abort();
}

/*
 * The free slot with the most dirty bytes, or -1 when all are used; with
 * guard pages, first one whose guard starts within a quarter past len
 * (the most dirty of those): it needs no guard call; then one whose page
 * at len was purged for a guard (slot_prezap) and that has at most
 * CLEAN_SLACK fewer dirty bytes (a fresh page faults, about a
 * microsecond; a flush costs some twenty).
 */
#define CLEAN_SLACK	((size_t)64 << 10)

static int slot_pick(struct grow_area *a, size_t len)
{
	int best = -1, fit = -1, cl = -1;
	unsigned i;

	for (i = 0; i < GROW_NSLOT; i++) {
		if ((a->used | a->dead) & (1u << i))
			continue;
		if (best < 0 || a->dirty[i] > a->dirty[best])
			best = (int)i;
		if (hak_hd_guard_len() && slot_fit(a, i, len, len + len / 4) != GUARD_NONE &&
		    (fit < 0 || a->dirty[i] > a->dirty[fit]))
			fit = (int)i;
		if (hak_hd_guard_len() && a->clean[i] == len &&
		    (cl < 0 || a->dirty[i] > a->dirty[cl]))
			cl = (int)i;
	}
	if (fit >= 0)
		return fit;
	/* a guard on a purged page costs no TLB flush (slot_prezap) */
	if (cl >= 0 && a->dirty[cl] + CLEAN_SLACK >= a->dirty[best])
		return cl;
	return best;
}

void *__hak_grow_take(size_t *lenp, size_t *fresh)
{
	struct grow_area *a = my_area;
	size_t want = *lenp, len = want;
	void *p = NULL;
	int s;

	*fresh = 0;
	if (len > HAK_GROW_SLOT || !grow_enabled())
		return NULL;
	if (!a) {
		/*
		 * Not after the thread-exit destructor gave the area up: no
		 * destructor may run to give a new one up (heap.c, late_done).
		 */
		if (__hak_tc.state >= HAK_T_EXITING)
			return NULL;
		a = area_claim();
		if (!a)
			goto refused;
		my_area = a;
		/* give it up at thread exit, also without a small heap */
		__hak_thread_register(&__hak_tc);
	}
	hak_lock(&a->lock);
	s = slot_pick(a, len);
	/*
	 * Hardened: a slot whose guard already starts up to a quarter past
	 * len gives the block that length: no guard call (slot_pick prefers
	 * one). Not more: realloc moves a block that would use less than half
	 * its usable size, and a take's request already has half again the
	 * size realloc moves.
	 */
	if (hak_hd_guard_len() && s >= 0) {
		size_t at = slot_fit(a, (unsigned)s, len, len + len / 4);

		if (at != GUARD_NONE)
			len = at;
	}
	if (s >= 0 && slot_commit(a->dirty[s], &len, want)) {
		if (hak_hd_guard_len())
			slot_prezap(a, (unsigned)s, len);
		if (hak_hd_guard_len() && !slot_guard_at(a, (unsigned)s, len)) {
			if (a->dirty[s] < len)
				__hak_os_uncommit(len - a->dirty[s]);
			goto unlock;
		}
		if (a->dirty[s] < len) {
			*fresh = len - a->dirty[s];
			a->dirty[s] = len;
		}
		a->used |= 1u << s;
		a->len[s] = len;
		a->stamp[s] = __hak_now_ms();
		p = a->base + (size_t)s * GROW_STRIDE;
	}
unlock:
	hak_unlock(&a->lock);
	if (p) {
		arch_fetch_add(&nr_takes, 1UL);
		*lenp = len;
		return p;
	}
refused:
	arch_fetch_add(&nr_refused, 1UL);
	return NULL;
}

bool __hak_grow_resize(void *p, size_t old_len, size_t *lenp, size_t *fresh)
{
	unsigned s;
	struct grow_area *a = area_of(p, &s);
	size_t new_len = *lenp, d;
	bool ok = true;

	*fresh = 0;
	if (new_len > HAK_GROW_SLOT)
		return false;
	hak_lock(&a->lock);
	/*
	 * Hardened: a resize moves the guard (two calls), so a growth is
	 * given up to twice the old length (realloc already asks half again;
	 * the block stays over half used, as realloc keeps it), or to a guard
	 * already there short of that (one call). Pages past what the
	 * program writes cost nothing until it does.
	 */
	if (hak_hd_guard_len() && new_len > old_len) {
		size_t most = guarded_growth(old_len);
		size_t at = slot_fit(a, s, new_len, most);

		new_len = at != GUARD_NONE ? at : new_len > most ? new_len : most;
	}
	d = a->dirty[s];
	ok = slot_commit(d, &new_len, *lenp);
	if (!ok) {
		/* refused: nothing changed */
	} else if (new_len > d) {
		/* hardened: the guard follows the block's end */
		if (hak_hd_guard_len() && !slot_guard_at(a, s, new_len)) {
			__hak_os_uncommit(new_len - d);
			ok = false;
		} else {
			*fresh = new_len - d;
			a->dirty[s] = new_len;
		}
	} else if (hak_hd_guard_len() && !slot_guard_at(a, s, new_len)) {
		ok = false;
	} else if (new_len < old_len && d - new_len >= HAK_GROW_SLOT / 8 &&
		   __hak_os_purge((char *)p + new_len, d - new_len)) {
		/* a big shrink gives its tail back now, as munmap did */
		__hak_os_uncommit(d - new_len);
		a->dirty[s] = new_len;
		arch_fetch_add(&nr_purged, d - new_len);
	}
	if (ok)
		a->len[s] = new_len;
	hak_unlock(&a->lock);
	if (ok) {
		arch_fetch_add(&nr_grows, 1UL);
		*lenp = new_len;
	}
	return ok;
}

void __hak_grow_free(void *p)
{
	unsigned s;
	struct grow_area *a = area_of(p, &s);

	hak_lock(&a->lock);
	a->used &= ~(1u << s);
	a->len[s] = 0;
	a->stamp[s] = __hak_now_ms();
	hak_unlock(&a->lock);
}

/*
 * Purge a's free slots freed at least delay ms before now (all: any), and
 * the dirty tail past the block of a used slot taken that long ago: a
 * slot reused by a smaller block (the take prefers the dirtiest free
 * slot) would otherwise keep up to a whole slot resident and counted for
 * the block's life. A tail under an eighth of a slot stays (the shrink
 * rule of __hak_grow_resize). The block's owner may be writing to it:
 * only bytes past its length, which it may not touch, are purged, and
 * its length changes only under the area's lock.
 */
static size_t area_purge(struct grow_area *a, unsigned now, unsigned delay, bool all)
{
	size_t done = 0;
	unsigned i;

	hak_lock(&a->lock);
	for (i = 0; i < GROW_NSLOT; i++) {
		size_t d = a->dirty[i], keep = 0;

		if (!all && __hak_ms_age(now, a->stamp[i]) < delay)
			continue;
		if (a->used & (1u << i)) {
			keep = HAK_ALIGN_UP(a->len[i], HAK_OS_PAGE);
			if (d < keep + HAK_GROW_SLOT / 8)
				continue;
		}
		if (!d || !__hak_os_purge(a->base + (size_t)i * GROW_STRIDE + keep,
					  d - keep))
			continue;
		__hak_os_uncommit(d - keep);
		a->dirty[i] = keep;
		done += d - keep;
	}
	hak_unlock(&a->lock);
	if (done)
		arch_fetch_add(&nr_purged, done);
	return done;
}

static size_t purge_areas(unsigned now, unsigned delay, bool all)
{
	unsigned i, n = arch_load_acquire(&nr_areas);
	size_t done = 0;
	int err = errno;

	for (i = 0; i < n; i++)
		done += area_purge(&areas[i], now, delay, all);
	errno = err;
	return done;
}

size_t __hak_grow_decay(unsigned now, unsigned delay)
{
	return purge_areas(now, delay, false);
}

/*
 * Give the address space of areas no thread owns and no block uses back
 * (malloc_trim, the memory limit's purge-all, a failed allocation's
 * retry): an area is 32 MiB of a process's RLIMIT_AS and RLIMIT_DATA, and
 * of its commit charge where overcommit is strict, so areas left by exited
 * threads must not keep a later mapping from being made. A block is only
 * ever placed in an owned area, so no lookup (area_of) can be looking for
 * one of these; the slot index is reused, with a new reservation, by the
 * next claim. Called after purge_areas(all): an area whose pages did not
 * all go stays.
 */
static void areas_give_back(void)
{
	unsigned i, k, n = arch_load_acquire(&nr_areas);
	size_t d;

	hak_lock(&areas_lock);
	for (i = 0; i < n; i++) {
		struct grow_area *a = &areas[i];
		char *b = arch_load_relaxed(&a->base);

		if (!b || a->owner)
			continue;
		hak_lock(&a->lock);
		for (d = 0, k = 0; k < GROW_NSLOT; k++)
			d += a->dirty[k];
		if (!a->used && !d) {
			arch_store_relaxed(&a->base, (char *)NULL);
			__hak_os_unreserve(b, GROW_AREA_LEN);
		}
		hak_unlock(&a->lock);
	}
	hak_unlock(&areas_lock);
}

size_t __hak_grow_release(void)
{
	size_t done = purge_areas(0, 0, true);
	int err = errno;

	areas_give_back();
	errno = err;
	return done;
}

void __hak_grow_detach(void)
{
	struct grow_area *a = my_area;

	if (!a)
		return;
	my_area = NULL;
	hak_lock(&areas_lock);
	a->owner = 0;
	hak_unlock(&areas_lock);
}

void __hak_grow_stats(struct hak_grow_stats *st)
{
	unsigned i, n = arch_load_acquire(&nr_areas), k;

	*st = (struct hak_grow_stats){ 0 };
	for (i = 0; i < n; i++) {
		hak_lock(&areas[i].lock);
		st->areas += !!arch_load_relaxed(&areas[i].base);
		st->live += (size_t)__builtin_popcount(areas[i].used);
		for (k = 0; k < GROW_NSLOT; k++)
			st->committed += areas[i].dirty[k];
		hak_unlock(&areas[i].lock);
	}
	st->takes = arch_load_relaxed(&nr_takes);
	st->grows = arch_load_relaxed(&nr_grows);
	st->refused = arch_load_relaxed(&nr_refused);
	st->purged = arch_load_relaxed(&nr_purged);
}

size_t __hak_grow_resident(struct hak_os_rss *r)
{
	unsigned i, n = arch_load_acquire(&nr_areas);
	size_t bytes = 0;

	/*
	 * The whole area, not the counted parts: what the kernel holds. The
	 * base is read under the area's lock, the kernel asked after it (as
	 * for the other layers, lib/os.h): an area given back meanwhile
	 * counts 0, or what was mapped there since.
	 */
	for (i = 0; i < n; i++) {
		void *base;

		hak_lock(&areas[i].lock);
		base = areas[i].base;
		hak_unlock(&areas[i].lock);
		if (base)
			bytes += __hak_os_resident_bytes(r, base, GROW_AREA_LEN);
	}
	return bytes;
}

/* Give back the first n areas' locks, in reverse. */
static void grow_fork_give(unsigned n)
{
	for (; n; n--)
		hak_lock_fork_give(&areas[n - 1].lock);
}

/* False: backed off (lock.h), nothing held. */
bool __hak_grow_fork_prepare(void) __acquires(&areas_lock)
{
	unsigned i;

	if (!hak_lock_fork_prepare(&areas_lock))
		return false;
	for (i = 0; i < GROW_MAX_AREAS; i++)
		if (!hak_lock_fork_take(&areas[i].lock)) {
			grow_fork_give(i);
			hak_lock_fork_give(&areas_lock);
			return false;
		}
	return true;
}

void __hak_grow_fork_parent(void) __releases(&areas_lock)
{
	grow_fork_give(GROW_MAX_AREAS);
	hak_lock_fork_parent(&areas_lock);
}

/* Only the forking thread exists in the child: every other area is free. */
void __hak_grow_fork_child(void) __releases(&areas_lock)
{
	unsigned i;

	hak_lock_fork_child(&areas_lock);
	for (i = 0; i < GROW_MAX_AREAS; i++) {
		hak_lock_fork_reset(&areas[i].lock);
		if (&areas[i] != my_area)
			areas[i].owner = 0;
	}
}
