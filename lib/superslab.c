// SPDX-License-Identifier: MIT
/*
 * Superslab pool: hands out page runs (slabs) to heaps and takes them back.
 *
 * Every superslab is in the registry (__hak_ssreg) from its mapping until it
 * is unmapped. Those with at least one free page are on the avail list;
 * full ones are on no list and come back to it when a page is freed.
 * Free pages stay resident ("dirty") until more than dirty_max bytes of them
 * accumulate; then they are purged with madvise, oldest superslab first, down
 * to half the limit; while other threads live, the pages that went free
 * within the last eighth of the purge delay are spared unless there are
 * HAK_SS_DIRTY_CEIL times the limit (ss_release). A wholly free superslab
 * beyond HAK_SS_KEEP is unmapped.
 * Neither system call runs under ss_lock (see ss_release).
 * Superslabs are mapped from a stock (__hak_os_stock_take, lib/os.c)
 * refilled 1, then 32 at a time, so threads that fault in pages of
 * their superslabs rarely wait on a neighbouring mapping's VMA write lock;
 * the refill maps with ss_lock dropped (ss_stock_fill, one thread at a
 * time; ss_new maps under it only when that failed), a superslab's
 * registration makes its system calls and first touches with it dropped
 * (ss_prepare), and a trim (release all) unmaps the stock's untouched
 * rest after dropping it.
 * Each free page also carries the time it went dirty (dirty_stamp), so the
 * decay pass (lib/purge.c, __hak_ss_decay) purges pages free for longer
 * than the purge delay whatever the limit, and an idle process gives them
 * back; it claims and purges the same way, outside the lock.
 *
 * With the hardened box, a slab of a class of at least
 * HAK_HD_SLAB_GUARD_MIN bytes keeps its last 4 KiB out of its capacity and
 * makes it a guard page (PROT_NONE) once handed out, and the page is made
 * read-write again before the slab's pages go back (so free pages are never
 * guards, and purging or unmapping them needs nothing more). Both
 * mprotect calls happen outside ss_lock, by the owner thread, while no
 * other thread can reach the slab.
 *
 * Lock order: ss_lock is a leaf (taken by heaps, never held across a heap
 * operation or a purge).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <asm/atomic.h>
#include "heap.h"
#include "init.h"
#include "lock.h"
#include "os.h"
#include "purge.h"
#include "superslab.h"
#include "boxes/hugepage/hugepage.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"

#define HAK_SS_ALL_FREE		0xffffffffu
#define HAK_SS_KEEP		2	/* wholly free superslabs kept mapped */
/*
 * With other threads live, the dirty limit leaves alone the pages that
 * went free less than an eighth of the purge delay ago, until the free
 * pages reach this many times the limit (see ss_release).
 */
#define HAK_SS_YOUNG_DIV	8
#define HAK_SS_DIRTY_CEIL	8

HAK_BUILD_BUG_ON(HAK_SS_PAGES != 32);

/* the registry: map made by ssmap_open_locked (superslab.h) */
struct hak_ssreg __hak_ssreg __boot_once;
uint16_t __hak_pm_none __boot_once;	/* never written: 0 for good */
struct hak_pagemap __hak_pm = { .map = &__hak_pm_none };

/*
 * Commit charge. The registry (64 MiB) and the page map (4 GiB) are
 * read without a lock by every free, for any pointer, so they must be
 * readable everywhere once they exist; but a private writable mapping is
 * charged in full against the commit limit (the map's MAP_NORESERVE
 * reserve under vm.overcommit_memory=2, which ignores MAP_NORESERVE; the
 * registry was .bss, charged in every mode): ~4.07 GiB of Committed_AS
 * per idle process, enough for three idle processes to starve a 12 GiB
 * machine in mode 2. So both are read-only reserves (the registry's made
 * at the first registration, before it lim is 0 and every lookup reads 0)
 * and read as zeros, and a
 * granule is made writable (__hak_os_open: an mprotect, charged then)
 * the first time a writer needs it, under ss_lock, never made read-only
 * again. A bit per granule, set under ss_lock after its mprotect
 * succeeded (release), read by writers without the lock (acquire). A
 * refused mprotect (the commit limit) fails the superslab or region that
 * needed it: NULL with ENOMEM, never a write to a read-only page.
 *
 * Granules: a registry page (4 KiB: 8 GiB of address space) and 64 KiB
 * of the map (2 GiB of address space), so a program's heap, which the
 * kernel maps close together, opens one or two of each: each mapping
 * splits in three, adjacent open granules merging (VMAs measured:
 * Documentation/design.md).
 */
#define SSMAP_GRAN		HAK_OS_PAGE
#define SSMAP_NGRAN		(HAK_SSMAP_SIZE / SSMAP_GRAN)
#define PM_GRAN			(64UL << 10)
#define PM_NGRAN		(HAK_PM_ENTRIES * sizeof(uint16_t) / PM_GRAN)
#define GRAN_BITS		(8 * sizeof(unsigned long))

/* rounded up: with fewer than 39 bits (ARCH_VA_BITS) a bitmap is under a word */
static unsigned long ssmap_open_bits[(SSMAP_NGRAN + GRAN_BITS - 1) / GRAN_BITS];
static unsigned long pm_open_bits[(PM_NGRAN + GRAN_BITS - 1) / GRAN_BITS];
static bool gran_is_open(const unsigned long *bits, size_t g)
{
	return arch_load_acquire(&bits[g / GRAN_BITS]) & (1UL << (g % GRAN_BITS));
}

/* Atomic: ss_prepare opens granules without ss_lock (the mprotect is idempotent). */
static void gran_set_open(unsigned long *bits, size_t g)
{
	__atomic_fetch_or(&bits[g / GRAN_BITS], 1UL << (g % GRAN_BITS), __ATOMIC_RELEASE);
}

/* A soft RLIMIT_AS or RLIMIT_DATA under HAK_PM_LIMIT_MIN (getrlimit keeps errno). */
static bool pm_limited(void)
{
	struct rlimit rl;

	return (!__hak_os_getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur < HAK_PM_LIMIT_MIN) ||
	       (!__hak_os_getrlimit(RLIMIT_DATA, &rl) && rl.rlim_cur < HAK_PM_LIMIT_MIN);
}

#ifdef HAK_PM_FIXED
#include <sys/syscall.h>
#include <asm/processor.h>

/*
 * The fixed map's rest, after its first page (reserved at relocation,
 * lib/alloc.c, with the signature page before it): NULL when something
 * mapped part of the range since (a non-PIE program's brk, a mapping
 * placed by the program), the map then stays one page. A raw system
 * call: errno stays the caller's (ss_new's refusals set their own).
 */
static uint16_t *pm_fixed_grow(void)
{
	const unsigned long a = HAK_PM_FIXED + HAK_OS_PAGE;
	const unsigned long len = HAK_PM_ENTRIES * sizeof(uint16_t) - HAK_OS_PAGE;
	long r;

	r = arch_raw_mmap(a, len, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE);
	if (r == (long)a)
		return (uint16_t *)HAK_PM_FIXED;
	if ((unsigned long)r <= -4096UL)	/* a kernel before 4.17 took a as a hint */
		arch_raw_syscall3(SYS_munmap, (unsigned long)r, len, 0);
	return NULL;
}
#endif

/*
 * Reserve the page map once, before the first superslab (ss_lock held).
 * The map's address is also the free mark (__hak_free_key), so it must be
 * set before any block exists: without a map it stays __hak_pm_none, read
 * only as entry 0 (mask and lim stay 0), and is not retried.
 */
static void pm_init(void)
{
	static bool tried __boot_once;	/* ss_lock */
	uint16_t *m;

	if (tried)
		return;
	tried = true;
#ifdef HAK_PM_FIXED
	/*
	 * Its first page was reserved at relocation (alloc.c), the rest now,
	 * under the limits of this moment (a program may have lowered them
	 * since it started); with one page only, no map for good.
	 */
	m = __hak_pm_fixed == 3 && !pm_limited() ? pm_fixed_grow() : NULL;
	if (__hak_pm_fixed == 3)
		__hak_pm_fixed = m ? 1 : 2;
#else
	/* not out of an address-space or data limit under 64 GiB (HAK_PM_LIMIT_MIN) */
	m = pm_limited() ? NULL : __hak_os_reserve_ro(HAK_PM_ENTRIES * sizeof(uint16_t));
#endif
	if (!m)
		return;		/* every free takes the slow path, which needs no map */
	/* 16-bit entries, no pointers: memcheck's leak check need not scan it */
	hak_vg_unscanned(m, HAK_PM_ENTRIES * sizeof(uint16_t));
	__atomic_store_n(&__hak_pm.map, m, __ATOMIC_RELAXED);
	__atomic_store_n(&__hak_pm.lim, HAK_PM_ENTRIES, __ATOMIC_RELEASE);
	/*
	 * The fast path reads mask with acquire and then the map: a mask not
	 * 0 comes after the mapping (made above by this thread). A fork
	 * takes ss_lock first, so a child has both or neither.
	 */
#if defined(HAK_PM_WRAP) || defined(HAK_PM_FIXED)
	__atomic_store_n(&__hak_pm.mask, HAK_PM_ENTRIES - 1, __ATOMIC_RELEASE);
#endif
}

/* Page-map entry of the 64 KiB page at a (ss_lock held). */
static void pm_set(uintptr_t a, unsigned c, unsigned tag)
{
	uint16_t *m = __hak_pm.map;	/* written under ss_lock, held */

	if (__hak_pm.lim)
		__atomic_store_n(&m[a >> HAK_PM_SHIFT],
				 (uint16_t)(tag ? HAK_TAGX(tag) | 4 * c : 0), __ATOMIC_RELAXED);
}

static struct hak_lock ss_lock = HAK_LOCK_INIT;

/*
 * Giving the map up (__hak_pm_fit_limit). The free fast path and the
 * slow path's lookups read entries without a lock: a thread may have
 * loaded mask (or lim) before it goes to 0 and read its entry any time
 * later (preempted between the two loads, or a signal handler run
 * there). No grace period can be known without a cost on that path, so
 * what such a reader may read stays mapped: entry 0, and the granules
 * of every address range mapped when mask went to 0 (a block being
 * freed was mapped before its free loaded mask; on x86_64, and with the
 * fence, a mapping made before that load is in /proc/self/maps read
 * after the store). Every entry is zeroed first (a reader of one then
 * takes the slow path, which needs no map), the rest of the 4 GiB is
 * unmapped. Only a pointer outside every mapping, freed at that moment
 * by a thread between the two loads, could read an unmapped granule:
 * an invalid free, which aborts anyway. Without /proc, the map is kept.
 */
struct pm_keep {
	uintptr_t base;		/* the map */
	size_t next;		/* granules below this are kept or unmapped */
};

/* Unmap the granules from k->next up to (not including) to. */
static void pm_unkeep(struct pm_keep *k, size_t to)
{
	if (to > k->next)
		__hak_os_unreserve((void *)(k->base + k->next * PM_GRAN),
				   (to - k->next) * PM_GRAN);
}

/* A mapping [start, end): its granules stay, those before it (if none kept) go. */
static void pm_keep_vma(uintptr_t start, uintptr_t end, void *arg)
{
	struct pm_keep *k = arg;
	const uintptr_t top = 1UL << HAK_VA_BITS;
	size_t g0, g1;

	if (start >= top || end <= start)
		return;		/* no block of ours up there (the index wraps) */
	if (end > top)
		end = top;
	g0 = (start >> HAK_PM_SHIFT) * sizeof(uint16_t) / PM_GRAN;
	g1 = ((end - 1) >> HAK_PM_SHIFT) * sizeof(uint16_t) / PM_GRAN + 1;
	pm_unkeep(k, g0);
	if (g1 > k->next)
		k->next = g1;
}

static unsigned long nr_pm_drops;	/* ss_lock */

static bool pm_drop_locked(void) __must_hold(&ss_lock)
{
	struct pm_keep k = { (uintptr_t)__hak_pm.map, 1 };	/* entry 0's granule stays */
	int fd;

	if (!__hak_pm.lim)
		return false;
	fd = __hak_os_maps_open();
	if (fd < 0)
		return false;
	__atomic_store_n(&__hak_pm.mask, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&__hak_pm.lim, 0, __ATOMIC_RELEASE);
	arch_smp_mb();	/* not __atomic_thread_fence: TSan builds refuse it (asm/atomic.h) */
	/* no pm_set from here (lim 0, under ss_lock): entries read 0 for good */
	(void)__hak_os_purge(__hak_pm.map, HAK_PM_ENTRIES * sizeof(uint16_t));
	if (__hak_os_maps_each(fd, pm_keep_vma, &k))
		pm_unkeep(&k, PM_NGRAN);	/* past the last mapping (else: all kept) */
#ifdef HAK_PM_FIXED
	__hak_pm_fixed = 2;
#endif
	nr_pm_drops++;
	return true;
}

/*
 * setrlimit is a system call, which a signal handler may make: one that
 * interrupted its own thread inside ss_lock would wait for itself there
 * (hak_lock reports that as a reentered malloc and aborts). When this
 * thread's frame holds an allocator lock, or is taking or giving one back
 * (the edge), only try: busy, the map stays until the next setrlimit or
 * refused mapping, as under a limit lowered by the raw system call. A try
 * never waits, so taking ss_lock out of the lock order here is harmless.
 */
static bool pm_frame_locked(void)
{
	return __hak_locks_held || __hak_lock_edge;
}

bool __hak_pm_fit_limit(void)
{
	struct rlimit rl;
	int err = errno;
	bool done = false;

	if (__atomic_load_n(&__hak_pm.lim, __ATOMIC_RELAXED) &&
	    !__hak_os_getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur < HAK_PM_LIMIT_MIN) {
		if (!pm_frame_locked())
			hak_lock(&ss_lock);
		else if (hak_trylock(&ss_lock))
			__acquire(&ss_lock);
		else
			goto out;
		done = pm_drop_locked();
		hak_unlock(&ss_lock);
	}
out:
	errno = err;
	return done;
}

unsigned long __hak_pm_drops(void)
{
	return __atomic_load_n(&nr_pm_drops, __ATOMIC_RELAXED);
}

/*
 * Is the 2 MiB region at region inside the address space the registry and
 * the page map cover (HAK_VA_BITS, from asm/processor.h)? A kernel whose
 * user window is larger than the build assumed may map above it: such a
 * region must never be registered (its index falls past both maps, and
 * past the bitmaps of their open granules), so it is refused the way a
 * refused mapping is, errno ENOMEM, with one line on stderr the first
 * time. Not a fast path: once per superslab or pool region.
 */
static bool ss_in_window(uintptr_t region)
{
	static int told;

	if (likely((region >> HAK_SS_SHIFT) < HAK_SSMAP_SIZE))
		return true;
	if (!arch_xchg(&told, 1))
		__hak_report("mapping at %p is above the %d-bit address space of this build "
			     "(ARCH_VA_BITS); small blocks cannot be served from it",
			     (void *)region, HAK_VA_BITS);
	errno = ENOMEM;
	return false;
}

/*
 * Make the map's entries of superslab ss writable; false with errno ENOMEM
 * when the kernel refuses. Without a map, nothing to do. Under ss_lock or
 * not (ss_prepare): two threads may both open a granule, which is harmless.
 */
static bool pm_open(uintptr_t ss)
{
	uintptr_t off = (ss >> HAK_PM_SHIFT) * sizeof(uint16_t);
	size_t g = off / PM_GRAN;

	if (!__hak_pm.lim || gran_is_open(pm_open_bits, g))
		return true;
	if (!__hak_os_open((char *)__hak_pm.map + g * PM_GRAN, PM_GRAN))
		return false;
	gran_set_open(pm_open_bits, g);
	return true;
}

/*
 * ss_lock held, or not once the registry exists (ss_prepare: then this is
 * pm_open's idempotent mprotect). The first registration reserves the
 * registry (read-only, so uncharged) and publishes it: map, then lim with
 * release; lock-free readers read 0 before. Should that be refused, the
 * registration fails (errno ENOMEM) and the next one tries again.
 */
static bool ssmap_open_locked(uintptr_t region)
{
	size_t g = (region >> HAK_SS_SHIFT) / SSMAP_GRAN;
	uint8_t *m;

	if (gran_is_open(ssmap_open_bits, g))
		return true;
	if (!__hak_ssreg.lim) {
		m = __hak_os_reserve_ro(HAK_SSMAP_SIZE);
		if (!m) {
			errno = ENOMEM;
			return false;
		}
		__hak_ssreg.map = m;
		arch_store_release(&__hak_ssreg.lim, HAK_SSMAP_SIZE);
	}
	if (!__hak_os_open(&__hak_ssreg.map[g * SSMAP_GRAN], SSMAP_GRAN))
		return false;
	gran_set_open(ssmap_open_bits, g);
	return true;
}

bool __hak_ssmap_open(uintptr_t region)
{
	bool ok;

	if (!ss_in_window(region))
		return false;
	if (gran_is_open(ssmap_open_bits, (region >> HAK_SS_SHIFT) / SSMAP_GRAN))
		return true;
	hak_lock(&ss_lock);
	ok = ssmap_open_locked(region);
	hak_unlock(&ss_lock);
	return ok;
}

void __hak_ssmap_set(uintptr_t region, unsigned kind)
{
	arch_store_release(&__hak_ssreg.map[region >> HAK_SS_SHIFT], (uint8_t)kind);
}

/*
 * Only the registry's resident pages can hold a nonzero byte (the others
 * read as zeros), so mincore says which of its 16 Ki pages to scan: a
 * page or two in a usual process.
 */
size_t __hak_ssmap_resident(struct hak_os_rss *r, unsigned kind)
{
	unsigned char vec[256];
	size_t i, j, k, bytes = 0;
	const size_t pages = HAK_SSMAP_SIZE / HAK_OS_PAGE;

	if (!arch_load_acquire(&__hak_ssreg.lim))
		return 0;
	for (i = 0; i < pages; i += ARRAY_SIZE(vec)) {
		if (!__hak_os_resident(__hak_ssreg.map + i * HAK_OS_PAGE,
				       ARRAY_SIZE(vec) * HAK_OS_PAGE, vec))
			memset(vec, 1, sizeof(vec));	/* look at every byte */
		for (j = 0; j < ARRAY_SIZE(vec); j++) {
			const uint8_t *m = __hak_ssreg.map + (i + j) * HAK_OS_PAGE;

			if (!(vec[j] & 1))
				continue;
			for (k = 0; k < HAK_OS_PAGE; k++)
				if (arch_load_relaxed(&m[k]) == kind)
					bytes += __hak_os_resident_bytes(r,
						(void *)(((i + j) * HAK_OS_PAGE + k) << HAK_SS_SHIFT),
						HAK_SS_SIZE);
		}
	}
	return bytes;
}

static struct hak_superslab *avail __boot_hot;	/* superslabs with a free page */
/*
 * Per heap tag, ss_lock: NULL or a superslab of that tag, the last one
 * its heap took a slab from: ss_pick's guess for a clean run of the
 * heap's own when no superslab has resident free pages. Cleared when the
 * superslab's tag is (ss_untag), so it never names one that is unmapped.
 */
static struct hak_superslab *tag_hint[256] __boot_hot __aligned(64);
/*
 * ss_lock: per heap tag (0: no heap's), the superslabs with resident free
 * pages (dirty_mask not 0), where ss_pick finds its first three ranks
 * without walking the avail list; and how many there are. The walk read a
 * header line (a cache miss) per superslab under ss_lock, and with a
 * superslab or more per heap it went through the whole list at nearly
 * every pick: 4% of xmalloc-test's CPU at 64 threads (0.25% when the
 * first free run was taken; Documentation/benchmarks.md, "Many threads
 * after one heap per superslab"). ss_dirty_list(ss, false) before a
 * change of ss's dirty_mask or heap_tag, (ss, true) after.
 */
static struct hak_superslab *dirty_ss[256];
static unsigned nr_dirty_ss __boot_hot;

static void ss_dirty_list(struct hak_superslab *ss, bool add)
{
	struct hak_superslab **head = &dirty_ss[ss->heap_tag & 0xff];

	if (!ss->dirty_mask)
		return;
	if (add) {
		ss->dprev = NULL;
		ss->dnext = *head;
		if (*head)
			(*head)->dprev = ss;
		*head = ss;
		nr_dirty_ss++;
		return;
	}
	if (ss->dprev)
		ss->dprev->dnext = ss->dnext;
	else
		*head = ss->dnext;
	if (ss->dnext)
		ss->dnext->dprev = ss->dprev;
	ss->dnext = ss->dprev = NULL;
	nr_dirty_ss--;
}

static size_t nr_superslabs __boot_hot;
static size_t nr_pages_used __boot_hot;
static size_t nr_pages_dirty __boot_hot;
static size_t nr_free_superslabs __boot_hot;	/* wholly free, still mapped */
static size_t purged_bytes;
static size_t dirty_max = (size_t)CONFIG_HAK_DIRTY_MAX_KIB << 10;

static unsigned ss_used(const struct hak_superslab *ss)
{
	return HAK_SS_PAGES - (unsigned)__builtin_popcount(ss->free_mask);
}

static void avail_add(struct hak_superslab *ss)
{
	ss->prev = NULL;
	ss->next = avail;
	if (avail)
		avail->prev = ss;
	avail = ss;
}

static void avail_del(struct hak_superslab *ss)
{
	if (ss->prev)
		ss->prev->next = ss->next;
	else
		avail = ss->next;
	if (ss->next)
		ss->next->prev = ss->prev;
	ss->next = ss->prev = NULL;
}

/* ss went wholly free: it serves no heap any more. */
static void ss_untag(struct hak_superslab *ss)
{
	if (tag_hint[ss->heap_tag & 0xff] == ss)
		tag_hint[ss->heap_tag & 0xff] = NULL;
	ss->heap_tag = 0;
}

static struct hak_os_stock ss_stock __boot_hot;	/* ss_lock */

/*
 * Unlocked, on a superslab just taken from the stock (no other thread can
 * reach it): everything its registration under ss_lock would otherwise
 * wait for in the kernel. Opening a granule of the page map or the
 * registry is an mprotect (the mmap lock, for writing), and the first
 * write to a fresh mapping (the header, the map's and the registry's
 * pages) faults through the mmap lock too (a VMA's first fault sets up its
 * anon_vma). While a thread creates others (each stack an mmap and an
 * mprotect) those wait, and a holder of ss_lock asleep there made every
 * thread that then needed a slab sleep on the lock: under SCHED_FIFO each
 * such sleep starts another thread (Documentation/design.md, "Scaling past
 * the cores", sixteenth pass). The map's and registry's words are written
 * by a no-op atomic OR (a neighbour's word may be in use; this one is 0
 * until registration). The hugepage box advises a superslab before its
 * first touch, so with it the header is left to ss_new. false with errno
 * ENOMEM when an open is refused.
 */
static bool ss_prepare(struct hak_superslab *ss)
{
	uintptr_t a = (uintptr_t)ss;

	if (!ss_in_window(a))
		return false;
	if (!pm_open(a))
		return false;
	if (__hak_pm.lim)
		__atomic_fetch_or(&__hak_pm.map[a >> HAK_PM_SHIFT], 0, __ATOMIC_RELAXED);
	if (arch_load_acquire(&__hak_ssreg.lim)) {	/* else ss_new makes it */
		if (!ssmap_open_locked(a))
			return false;
		__atomic_fetch_or(&__hak_ssreg.map[a >> HAK_SS_SHIFT], 0, __ATOMIC_RELAXED);
	}
	if (!IS_ENABLED(CONFIG_HAK_HUGEPAGE))
		*(volatile uint32_t *)&ss->magic = 0;
	return true;
}

/*
 * Take a superslab from the stock and register it. Called and returns
 * with ss_lock held, which is dropped around ss_prepare.
 */
static struct hak_superslab *ss_new(void) __must_hold(&ss_lock)
{
	struct hak_superslab *ss;
	unsigned i;
	bool ok;

	pm_init();
	ss = __hak_os_stock_take(&ss_stock, HAK_SS_SIZE);
	if (!ss)
		return NULL;
	hak_unlock(&ss_lock);
	ok = ss_prepare(ss);
	hak_lock(&ss_lock);
	/* both find their granules open now, unless the registry was not made */
	if (!ok || !pm_open((uintptr_t)ss) || !ssmap_open_locked((uintptr_t)ss)) {
		__hak_os_unmap(ss, HAK_SS_SIZE);	/* errno ENOMEM */
		return NULL;
	}
	hak_huge_on_new(ss, nr_superslabs + 1);	/* before the first touch */
	ss->magic = HAK_SS_MAGIC;
	ss->free_mask = HAK_SS_ALL_FREE;
	ss->dirty_mask = 0;
	ss->heap_tag = 0;
	for (i = 0; i < HAK_SS_PAGES; i++) {
		ss->slabs[i].class_idx = HAK_CLASS_NONE;
		ss->page_class[i] = HAK_CLASS_NONE;
	}
	__hak_ssmap_set((uintptr_t)ss, HAK_SSMAP_SLAB);
	nr_superslabs++;
	nr_free_superslabs++;
	avail_add(ss);
	return ss;
}

/* The bits of a run of span pages at page 0 (32: the whole superslab). */
static inline uint32_t ss_run_mask(unsigned span)
{
	return span == 32 ? HAK_SS_ALL_FREE : (1u << span) - 1;
}

/* A free run of span pages (span-aligned) in ss, preferring resident pages. */
static int ss_find_run(const struct hak_superslab *ss, unsigned span)
{
	uint32_t run = ss_run_mask(span);
	int found = -1;
	unsigned i;

	for (i = 0; i < HAK_SS_PAGES; i += span) {
		uint32_t m = run << i;

		if ((ss->free_mask & m) != m)
			continue;
		if ((ss->dirty_mask & m) == m)
			return (int)i;
		if (found < 0)
			found = (int)i;
	}
	return found;
}

/* The first superslab of list ss with a resident run of span pages. */
static struct hak_superslab *ss_dirty_run(struct hak_superslab *ss, unsigned span, int *first)
{
	uint32_t run = ss_run_mask(span);

	for (; ss; ss = ss->dnext) {
		int i = ss_find_run(ss, span);

		if (i >= 0 && ((ss->dirty_mask >> i) & run) == run) {
			*first = i;
			return ss;
		}
	}
	return NULL;
}

/*
 * The superslab to take a run of span pages from for the heap tagged
 * tag, and the run in *first, best first: a dirty run (resident pages) of
 * one of the heap's own superslabs, of one with no live slab (it becomes
 * the heap's), of another heap's; then a clean run of the heap's own, of
 * one with no live slab; then (share) a clean run of another heap's. NULL
 * when none: the caller maps a new superslab before it shares clean pages.
 * Keeping heaps apart keeps the header lines and the page-map line each
 * core writes its own (superslab.h); taking another heap's resident pages
 * before new ones keeps the RSS (size-chain at 16 threads: 74 -> 83 MB
 * peak when they waited for their heap). The dirty runs come from the
 * tags' lists (dirty_ss); only the clean ones need the walk of the avail
 * list, a header line (a cache miss) per superslab.
 */
static struct hak_superslab *ss_pick(unsigned tag, unsigned span, bool share, int *first)
{
	struct hak_superslab *ss, *best = NULL;
	unsigned best_rank = share ? 6 : 5, u;
	int best_first = -1;

	tag &= 0xff;
	if (nr_dirty_ss) {
		ss = ss_dirty_run(dirty_ss[tag], span, first);
		if (!ss && tag)
			ss = ss_dirty_run(dirty_ss[0], span, first);
		/* another heap's, from the next tag on (not all on the lowest) */
		for (u = (tag + 1) & 0xff; !ss && u != tag; u = (u + 1) & 0xff)
			if (u && dirty_ss[u])
				ss = ss_dirty_run(dirty_ss[u], span, first);
		if (ss)
			return ss;
	} else {
		/* no resident free page anywhere: try the heap's last superslab */
		ss = tag_hint[tag];
		if (ss && ss->free_mask) {
			*first = ss_find_run(ss, span);
			if (*first >= 0)
				return ss;
		}
	}
	/* no resident run anywhere: clean ones, ranked 3, 4 and 5 */
	for (ss = avail; ss; ss = ss->next) {
		unsigned t = ss->heap_tag, rank;
		int i;

		if (t != tag && best_rank <= (t ? 5u : 4u))
			continue;	/* nothing better to find here */
		if (t != tag && t && !share)
			continue;	/* another heap's clean pages: last resort */
		i = ss_find_run(ss, span);
		if (i < 0)
			continue;
		rank = (t == tag) ? 3 : t ? 5 : 4;
		if (rank < best_rank) {
			best = ss;
			best_rank = rank;
			best_first = i;
			if (rank == 3)
				break;
		}
	}
	*first = best_first;
	return best;
}

static void slab_init(struct hak_superslab *ss, unsigned first, unsigned span,
		      struct hak_heap *owner, unsigned tag, unsigned c)
{
	struct hak_slab *s = &ss->slabs[first];
	size_t bytes = ((size_t)span << HAK_PAGE_SHIFT) - (first == 0 ? __hak_slab_first_off(c) : 0) -
		       hak_hd_slab_guard(__hak_class_size[c]);
	unsigned k;

	for (k = 1; k < span; k++) {
		ss->slabs[first + k].class_idx = (uint8_t)c;
		ss->slabs[first + k].head_off = (uint8_t)k;
		ss->slabs[first + k].span = 0;
	}
	for (k = 0; k < span; k++) {
		ss->page_class[first + k] = (uint8_t)c;
		ss->page_owner[first + k] = (uint8_t)tag;
		ss->page_purged[first + k] = 0;
		pm_set((uintptr_t)ss + ((uintptr_t)(first + k) << HAK_PAGE_SHIFT), c, tag);
	}
	s->free = NULL;
	s->remote = 0;
	s->owner = owner;
	s->next = s->prev = s->pending_next = NULL;
	s->used = 0;
	s->carved = 0;
	s->capacity = (uint32_t)(bytes / __hak_class_stride(c));
	s->flags = 0;
	s->span = (uint8_t)span;
	s->head_off = 0;
	s->class_idx = (uint8_t)c;
	/*
	 * memcheck still holds the span's old blocks NOACCESS (freed, or a
	 * lifted guard): a slab carved over them for another class would
	 * report the allocator's own header and link writes. A span taken
	 * anew is memory as from a fresh mapping.
	 */
	hak_vg_opened((char *)ss + ((size_t)first << HAK_PAGE_SHIFT) +
		      (first == 0 ? __hak_slab_first_off(c) : 0), bytes);
}

static int ss_refilling __boot_hot;	/* a refill is being mapped; written under ss_lock */

/*
 * The stock is empty: map its next batch with ss_lock dropped, so that
 * no thread waits for the lock behind an mmap (which itself waits for
 * the page faults in flight in the neighbouring mapping, lib/os.c).
 * Past the cores a thread that sleeps on the lock lets another one start
 * (size-chain under SCHED_FIFO: Documentation/design.md, "Scaling past
 * the cores"), and every thread that then needs a slab sleeps behind the
 * same mmap. Called and returns with ss_lock held; true when the caller
 * should look for a free run again (the lock was dropped, and the stock
 * may have pieces). One thread maps at a time: one that finds a refill
 * running waits for it, spinning under a real-time policy
 * (__hak_rt_spin, lib/init.c), and maps a batch of its own only when the
 * spin runs out or is not allowed; before, every such thread mapped one,
 * each mmap (and the munmap of those that then went back) asleep on the
 * mmap lock, and under SCHED_FIFO each of those sleeps started another
 * thread (sixteenth pass). A batch mapped while another thread refilled
 * the stock goes back. The first write to a batch (the header of its
 * first superslab, ss_prepare) also happens without the lock.
 */
static bool ss_stock_fill(void) __must_hold(&ss_lock)
{
	struct hak_os_stock st;
	int saved = errno;	/* a refused map is not the caller's error */
	bool mapped, mine = false;

	if (ss_refilling) {
		uint64_t end = 0;
		bool done;

		hak_unlock(&ss_lock);
		done = __hak_rt_spin(&ss_refilling, &end);
		hak_lock(&ss_lock);
		if (done || ss_stock.left)
			return true;
	}
	if (!ss_refilling) {
		__atomic_store_n(&ss_refilling, 1, __ATOMIC_RELAXED);
		mine = true;
	}
	st = ss_stock;
	hak_unlock(&ss_lock);
	mapped = __hak_os_stock_fill(&st, HAK_SS_SIZE);
	hak_lock(&ss_lock);
	if (mine)
		__atomic_store_n(&ss_refilling, 0, __ATOMIC_RELEASE);
	if (!mapped) {
		errno = saved;
		return false;	/* ss_new tries once more, under the lock */
	}
	if (ss_stock.left) {
		hak_unlock(&ss_lock);
		__hak_os_stock_drop(&st, HAK_SS_SIZE);
		hak_lock(&ss_lock);
		return true;
	}
	st.refills = ss_stock.refills + 1;
	if (st.shift < ss_stock.shift)
		st.shift = ss_stock.shift;
	ss_stock = st;
	return true;
}

struct hak_slab *__hak_span_alloc(struct hak_heap *owner, unsigned tag, unsigned c)
{
	unsigned span = __hak_class_span[c];
	uint32_t run = (1u << span) - 1;
	struct hak_superslab *ss;
	struct hak_slab *s;
	int first = -1;
	bool share = false;
	size_t g;

	hak_lock(&ss_lock);
again:
	ss = ss_pick(tag, span, share, &first);
	if (!ss && !ss_stock.left) {
		pm_init();	/* the map first, as ss_new would (its errno stays its own) */
		if (ss_stock_fill())
			goto again;
	}
	if (!ss) {
		int saved = errno;

		ss = ss_new();
		if (!ss && !share) {
			/* no new superslab: pages of another heap's will do */
			errno = saved;
			share = true;
			goto again;
		}
		if (!ss) {
			/*
			 * errno as it was: the refill may still end with blocks
			 * (some taken before, or a retry after a purge), and sets
			 * ENOMEM itself when it ends with none.
			 */
			hak_unlock(&ss_lock);
			errno = saved;
			return NULL;
		}
		first = 0;
	}
	if (ss->free_mask == HAK_SS_ALL_FREE)
		nr_free_superslabs--;
	ss_dirty_list(ss, false);
	if (!ss->heap_tag)
		ss->heap_tag = tag;
	if (ss->heap_tag == tag)
		tag_hint[tag & 0xff] = ss;
	ss->free_mask &= ~(run << first);
	nr_pages_dirty -= __builtin_popcount(ss->dirty_mask & (run << first));
	ss->dirty_mask &= ~(run << first);
	ss_dirty_list(ss, true);
	if (!ss->free_mask)
		avail_del(ss);
	nr_pages_used += span;
	hak_huge_on_used(ss, HAK_SS_PAGES - (unsigned)__builtin_popcount(ss->free_mask));
	slab_init(ss, (unsigned)first, span, owner, tag, c);
	hak_unlock(&ss_lock);
	s = &ss->slabs[first];
	g = hak_hd_slab_guard(__hak_class_size[c]);
	if (g && hak_hd_guard_set((void *)(__hak_slab_end(s) - g)))
		s->flags |= HAK_SLAB_GUARDED;
	return s;
}

/*
 * Purging and unmapping are system calls (and madvise flushes the TLB of
 * every CPU that runs a thread of the process), so they run outside
 * ss_lock, where threads that need or return a slab would queue behind
 * them. Under the lock, the dirty pages to purge are claimed: taken out of
 * free_mask, so no span_alloc hands them out, and no unmap can happen to
 * their superslab (it is never wholly free while they are claimed);
 * wholly free superslabs to unmap are taken off the avail list and out of
 * the registry. Then the lock is dropped for the system calls, and taken
 * again to give the purged pages back, clean. One thread purges at a time
 * (`purging`); a span_free that finds a purge running leaves the excess to
 * it or to the next one.
 */
#define HAK_SS_BATCH		32	/* superslabs per unlocked batch */

struct ss_batch {
	unsigned npurge, nunmap;
	struct hak_superslab *purge[HAK_SS_BATCH];
	uint32_t mask[HAK_SS_BATCH];	/* claimed pages, all dirty and free */
	struct hak_superslab *unmap[HAK_SS_BATCH];
};

static bool purging;			/* ss_lock; a soft purge is running */

/* Take the pages of mask (free and dirty) out of circulation. */
static void ss_claim(struct hak_superslab *ss, uint32_t mask)
{
	if (ss->free_mask == HAK_SS_ALL_FREE)
		nr_free_superslabs--;
	ss_dirty_list(ss, false);
	ss->free_mask &= ~mask;
	ss->dirty_mask &= ~mask;
	ss_dirty_list(ss, true);
	nr_pages_dirty -= __builtin_popcount(mask);
	if (!ss->free_mask)
		avail_del(ss);
}

/*
 * Pages back into ss's free runs: claimed ones after a purge, those in
 * `dirty` not purged, or a freed span (all of it resident).
 */
static void ss_unclaim(struct hak_superslab *ss, uint32_t mask, uint32_t dirty)
{
	if (!ss->free_mask)
		avail_add(ss);
	ss_dirty_list(ss, false);
	ss->free_mask |= mask;
	ss->dirty_mask |= dirty;
	nr_pages_dirty += __builtin_popcount(dirty);
	if (ss->free_mask == HAK_SS_ALL_FREE) {
		nr_free_superslabs++;
		ss_untag(ss);
	}
	ss_dirty_list(ss, true);
}

/*
 * Under ss_lock: take wholly free ss out of the pool and the registry for
 * batch b to unmap (no lookup can find it from here on).
 */
static void ss_take_unmap(struct hak_superslab *ss, struct ss_batch *b)
{
	avail_del(ss);
	ss_dirty_list(ss, false);
	nr_pages_dirty -= __builtin_popcount(ss->dirty_mask);
	nr_superslabs--;
	nr_free_superslabs--;
	hak_huge_on_unmap(ss);
	__hak_ssmap_set((uintptr_t)ss, 0);
	b->unmap[b->nunmap++] = ss;
}

/* The dirty pages of ss that went free less than young ms before now. */
static uint32_t ss_young(const struct hak_superslab *ss, unsigned now, unsigned young)
{
	uint32_t m = ss->dirty_mask, y = 0;

	if (!young)
		return 0;
	while (m) {
		unsigned i = (unsigned)__builtin_ctz(m);

		m &= m - 1;
		if (__hak_ms_age(now, ss->dirty_stamp[i]) < young)
			y |= 1u << i;
	}
	return y;
}

/*
 * Under ss_lock: choose the next batch of work. Pages that went free
 * less than young ms ago (0: none spared) stay, and so does a wholly
 * free superslab that has any.
 */
static void ss_release_pick(bool all, unsigned now, unsigned young, struct ss_batch *b)
{
	struct hak_superslab *ss, *next;
	size_t target = all ? 0 : (dirty_max >> HAK_PAGE_SHIFT) / 2;

	b->npurge = b->nunmap = 0;
	for (ss = avail; ss; ss = next) {
		uint32_t m;

		next = ss->next;
		if (ss->free_mask == HAK_SS_ALL_FREE &&
		    (all || nr_free_superslabs > HAK_SS_KEEP) &&
		    !ss_young(ss, now, young)) {
			if (b->nunmap == HAK_SS_BATCH)
				break;
			ss_take_unmap(ss, b);
			continue;
		}
		if (nr_pages_dirty <= target)
			continue;
		m = ss->dirty_mask & ~ss_young(ss, now, young);
		if (!m)
			continue;
		if (b->npurge == HAK_SS_BATCH)
			break;
		hak_huge_on_purge(ss, ss_used(ss));
		b->purge[b->npurge] = ss;
		b->mask[b->npurge++] = m;
		ss_claim(ss, m);
	}
}

/* Unlocked: madvise the claimed runs of ss; returns the pages left dirty. */
static uint32_t ss_purge(struct hak_superslab *ss, uint32_t mask, size_t *done)
{
	uintptr_t base = (uintptr_t)ss;
	uint32_t failed = 0;
	unsigned i = 0;

	while (i < HAK_SS_PAGES) {
		unsigned j;
		uintptr_t from, to;
		uint32_t run;

		if (!(mask & (1u << i))) {
			i++;
			continue;
		}
		for (j = i; j < HAK_SS_PAGES && (mask & (1u << j)); j++)
			;
		/* page 0 keeps its header */
		from = base + ((uintptr_t)i << HAK_PAGE_SHIFT) + (i == 0 ? HAK_SS_HDR : 0);
		to = base + ((uintptr_t)j << HAK_PAGE_SHIFT);
		run = ((j == 32) ? 0u : (1u << j)) - (1u << i);
		if (__hak_os_purge((void *)from, to - from))
			*done += to - from;
		else
			failed |= run;
		i = j;
	}
	return failed;
}

/*
 * Carry out a picked batch: drop ss_lock for the system calls, then give
 * the claimed pages back (those whose purge failed stay dirty). Called and
 * returns with ss_lock held; returns the bytes purged or unmapped.
 */
static size_t ss_batch_run(struct ss_batch *b) __must_hold(&ss_lock)
{
	uint32_t left[HAK_SS_BATCH];
	size_t purged = 0;
	unsigned i;

	hak_unlock(&ss_lock);
	for (i = 0; i < b->nunmap; i++)
		__hak_os_unmap(b->unmap[i], HAK_SS_SIZE);
	for (i = 0; i < b->npurge; i++)
		left[i] = ss_purge(b->purge[i], b->mask[i], &purged);
	hak_lock(&ss_lock);
	for (i = 0; i < b->npurge; i++)
		ss_unclaim(b->purge[i], b->mask[i], left[i]);
	purged_bytes += purged;
	return purged + (size_t)b->nunmap * HAK_SS_SIZE;
}

static unsigned young_pass_ms;	/* ss_lock: last limit pass that spared pages */
static size_t bound_purged;	/* atomic: bytes limit passes purged, for learn() */

/*
 * Purge down to the target (half of dirty_max, or everything with all)
 * and unmap the wholly free superslabs beyond HAK_SS_KEEP; called and
 * returns with ss_lock held, drops it around the system calls.
 *
 * While other threads live, the dirty limit (not all) spares the pages
 * that went free less than an eighth of the purge delay ago, as long as
 * the free pages stay under HAK_SS_DIRTY_CEIL times the limit: a burst of
 * frees that empties slab after slab (idle-rss: two threads free 95% of
 * 256 MiB of small blocks) otherwise purged every 8 MiB as it went, in a
 * madvise per slab or two (the slabs empty in random order, so the dirty
 * runs are short), each a TLB shootdown on the CPUs that run the other
 * threads: 20-45 ms added to one thread's 5 ms of frees, and the other
 * thread slowed meanwhile (alone, the same purges cost the thread about
 * 5 ms: no other CPU to interrupt, so a single thread still purges as it
 * goes and its RSS falls right after the frees). Spared pages are the
 * first reused (ss_find_run prefers resident pages); those still free go
 * at a later limit pass, once old, in longer runs, or at the decay pass
 * (the delay bounds how long any free page stays). Such a pass runs at
 * most once per quarter of that grace period. No purge delay (decay off)
 * or no limit (0) spares nothing.
 *
 * "The purge delay" is the busy passes' (__hak_purge_busy_ms: the learned
 * one once the process faults purged pages back, else the configured
 * one), and what a limit pass purges is counted in bound_purged, which the
 * next busy decay pass takes for its refault feedback (lib/purge.c,
 * learn()): rptest with 10-30% of its blocks freed by another thread
 * swung its free pages past the limit and faulted the purges back at
 * once, 11-98 MB a run, which the feedback never saw (Documentation/
 * design.md, "The dirty limit's purges teach the feedback").
 */
static size_t ss_release(bool all) __must_hold(&ss_lock)
{
	struct ss_batch b;
	size_t done = 0;
	unsigned now = 0, young = 0;

	/* trim (all) runs even beside a purge: claims never overlap */
	if (purging && !all)
		return 0;
	if (!all) {
		young = __hak_purge_busy_ms() / HAK_SS_YOUNG_DIV;
		if ((nr_pages_dirty << HAK_PAGE_SHIFT) / HAK_SS_DIRTY_CEIL > dirty_max ||
		    __hak_heap_nr_live() < 2)
			young = 0;
		if (young) {
			now = __hak_now_ms();
			if (__hak_ms_age(now, young_pass_ms) < young / 4)
				return 0;
			young_pass_ms = now;
		}
		purging = true;
	}
	do {
		ss_release_pick(all, now, young, &b);
		if (!b.npurge && !b.nunmap)
			break;
		done += ss_batch_run(&b);
	} while (b.npurge == HAK_SS_BATCH || b.nunmap == HAK_SS_BATCH);
	if (!all) {
		purging = false;
		if (done)
			arch_fetch_add(&bound_purged, done);
	}
	return done;
}

size_t __hak_ss_take_bound_purged(void)
{
	return arch_load_relaxed(&bound_purged) ? arch_xchg(&bound_purged, 0) : 0;
}

/*
 * The pages stay used and resident, so the counts, the dirty masks and the
 * hugepage box do not change; ss_lock only because the page map is
 * written under it (its drop, __hak_pm_fit_limit, leaves no entry set).
 */
void __hak_span_reclass(struct hak_slab *s, unsigned tag, unsigned c)
{
	struct hak_superslab *ss = (struct hak_superslab *)((uintptr_t)s & ~(HAK_SS_SIZE - 1));

	hak_lock(&ss_lock);
	slab_init(ss, __hak_slab_index(s), s->span, s->owner, tag, c);
	hak_unlock(&ss_lock);
}

/* The body of __hak_span_free, ss_lock held, s's guard gone. */
static void span_free_locked(struct hak_slab *s)
{
	struct hak_superslab *ss = (struct hak_superslab *)((uintptr_t)s & ~(HAK_SS_SIZE - 1));
	unsigned first = __hak_slab_index(s), span = s->span, k;
	uint32_t run = (1u << span) - 1;

	for (k = 0; k < span; k++) {
		ss->slabs[first + k].class_idx = HAK_CLASS_NONE;
		ss->slabs[first + k].head_off = 0;
		ss->page_class[first + k] = HAK_CLASS_NONE;
		ss->page_owner[first + k] = 0;
		pm_set((uintptr_t)ss + ((uintptr_t)(first + k) << HAK_PAGE_SHIFT), 0, 0);
	}
	s->owner = NULL;
	s->span = 0;
	ss_unclaim(ss, run << first, run << first);	/* free, and resident */
	nr_pages_used -= span;
	{
		unsigned now = __hak_now_ms();

		for (k = 0; k < span; k++)
			ss->dirty_stamp[first + k] = now;
	}
	hak_huge_on_used(ss, HAK_SS_PAGES - (unsigned)__builtin_popcount(ss->free_mask));
	if ((nr_pages_dirty << HAK_PAGE_SHIFT) > dirty_max ||
	    nr_free_superslabs > HAK_SS_KEEP)
		ss_release(false);
}

/*
 * The guard becomes an ordinary page again first (no system call under
 * ss_lock). Should the OS refuse, the slab's pages stay out of circulation
 * (never handed out with a guard in them); the class and owner stay, so a
 * stray free of them is still sorted out by the slow path.
 */
static void *span_guard_page(const struct hak_slab *s)
{
	return (void *)(__hak_slab_end(s) - HAK_HD_GUARD_PAGE);
}

static bool span_unguard(struct hak_slab *s)
{
	if (s->flags & HAK_SLAB_GUARDED) {
		if (!hak_hd_guard_unset(span_guard_page(s)))
			return false;
		s->flags &= ~HAK_SLAB_GUARDED;
	}
	return true;
}

void __hak_span_free(struct hak_slab *s)
{
	if (!span_unguard(s))
		return;
	hak_lock(&ss_lock);
	span_free_locked(s);
	hak_unlock(&ss_lock);
}

bool __hak_span_free_try(struct hak_slab *s)
{
	bool guarded = s->flags & HAK_SLAB_GUARDED;

	if (!span_unguard(s))
		return true;	/* out of circulation, as in __hak_span_free */
	if (!hak_trylock(&ss_lock)) {
		/* kept by its heap: the guard back (a rare path: busy, hardened) */
		if (guarded && hak_hd_guard_set(span_guard_page(s)))
			s->flags |= HAK_SLAB_GUARDED;
		return false;
	}
	__acquire(&ss_lock);
	span_free_locked(s);
	hak_unlock(&ss_lock);
	return true;
}

size_t __hak_ss_release(bool all)
{
	struct hak_os_stock rest = { 0 };
	size_t done;

	hak_lock(&ss_lock);
	done = ss_release(all);
	if (all) {	/* trim: the stock's untouched address space goes too */
		rest = ss_stock;
		ss_stock.left = 0;
		ss_stock.next = 0;	/* no stale address (lib/os.c, __hak_os_stock_take) */
	}
	hak_unlock(&ss_lock);
	__hak_os_stock_drop(&rest, HAK_SS_SIZE);
	return done;
}

/*
 * Under ss_lock: the next batch of the decay pass, pages free and dirty
 * for at least delay ms at now (a wholly free superslab beyond the ones
 * kept is unmapped instead). The few free pages of a dense superslab the
 * hugepage box advised are left alone: a partial purge would split its
 * hugepage; from any other advised one the advice goes first.
 */
static void ss_decay_pick(unsigned now, unsigned delay, struct ss_batch *b)
{
	struct hak_superslab *ss, *next;

	b->npurge = b->nunmap = 0;
	for (ss = avail; ss; ss = next) {
		uint32_t old = 0, m = ss->dirty_mask;

		next = ss->next;
		while (m) {
			unsigned i = (unsigned)__builtin_ctz(m);

			m &= m - 1;
			if (__hak_ms_age(now, ss->dirty_stamp[i]) >= delay)
				old |= 1u << i;
		}
		if (!old)
			continue;
		if (ss->free_mask == HAK_SS_ALL_FREE && old == ss->dirty_mask &&
		    nr_free_superslabs > HAK_SS_KEEP) {
			if (b->nunmap == HAK_SS_BATCH)
				break;
			ss_take_unmap(ss, b);
			continue;
		}
		if (hak_huge_keeps(ss, ss_used(ss)))
			continue;
		if (b->npurge == HAK_SS_BATCH)
			break;
		hak_huge_on_purge(ss, ss_used(ss));
		b->purge[b->npurge] = ss;
		b->mask[b->npurge++] = old;
		ss_claim(ss, old);
	}
}

size_t __hak_ss_decay(unsigned now, unsigned delay)
{
	struct ss_batch b;
	size_t done = 0;

	hak_lock(&ss_lock);
	hak_huge_pass(now);
	do {
		ss_decay_pick(now, delay, &b);
		if (!b.npurge && !b.nunmap)
			break;
		done += ss_batch_run(&b);
	} while (b.npurge == HAK_SS_BATCH || b.nunmap == HAK_SS_BATCH);
	hak_unlock(&ss_lock);
	return done;
}

bool __hak_ss_before_purge(struct hak_superslab *ss, bool cold)
{
	bool ok;

	if (!IS_ENABLED(CONFIG_HAK_HUGEPAGE))
		return true;
	hak_lock(&ss_lock);
	ok = hak_huge_may_purge(ss, ss_used(ss), cold);
	hak_unlock(&ss_lock);
	return ok;
}

void __hak_ss_set_dirty_max(size_t bytes)
{
	hak_lock(&ss_lock);
	dirty_max = bytes;
	hak_unlock(&ss_lock);
}

void __hak_ss_stats(struct hak_ss_stats *st)
{
	hak_lock(&ss_lock);
	st->superslabs = nr_superslabs;
	st->pages_used = nr_pages_used;
	st->pages_dirty = nr_pages_dirty;
	st->purged_bytes = purged_bytes;
	hak_unlock(&ss_lock);
}

bool __hak_ss_fork_prepare(void) __acquires(&ss_lock)
{
	return hak_lock_fork_prepare(&ss_lock);
}

void __hak_ss_fork_parent(void) __releases(&ss_lock)
{
	hak_lock_fork_parent(&ss_lock);
}

/*
 * A purge that another thread had running at the fork never finishes in
 * the child: its claimed pages stay out of circulation there (free pages
 * the child never reuses, at most HAK_SS_BATCH superslabs' worth), and
 * purging is cleared so the child purges again. A stock refill another
 * thread was mapping (ss_stock_fill) is address space the child never
 * uses (the child's stock is the parent's at the fork; its refill flag is
 * cleared, nobody maps there), and so is a superslab another thread had
 * taken from the stock and was preparing (ss_new, lock dropped).
 */
void __hak_ss_fork_child(void) __releases(&ss_lock)
{
	hak_lock_fork_child(&ss_lock);
	purging = false;
	ss_refilling = 0;
}
