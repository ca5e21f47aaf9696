// SPDX-License-Identifier: MIT
/*
 * The out-of-line half of the API: big requests, calloc, realloc, the
 * aligned family, usable size and trim, with glibc's semantics:
 *   - every failure is NULL (or the return code) with errno ENOMEM, also for
 *     sizes that overflow only when rounded up;
 *   - a bad alignment is EINVAL;
 *   - realloc(p, 0) frees p and returns NULL; growing within the usable
 *     size keeps the block in place; a failed realloc leaves p intact;
 *   - free and its relatives keep errno.
 * A pointer hakmem did not hand out is reported and the process aborted;
 * it is never passed to another allocator and never written through.
 *
 * Three kinds of block, told apart by the registry without touching p:
 * small (superslab), mid (L2.5 pool box region), large (own mapping).
 */
#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <sys/resource.h>
#include <asm/processor.h>
#include "alloc.h"
#include "heap.h"
#include "grow.h"
#include "init.h"
#include "large.h"
#include "os.h"
#include "purge.h"
#include "zero.h"
#include "boxes/failfast/failfast.h"
#include "boxes/header_classidx/header.h"
#include "boxes/heapprof/heapprof.h"
#include "boxes/l25_pool/l25.h"
#include "boxes/valgrind/valgrind_hooks.h"

#ifdef HAK_PM_FIXED
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int __hak_pm_fixed __boot_once;

#define PM_FIXED_SIG	(HAK_PM_FIXED - 4096)	/* the signature's page */
#define PM_RAW_ERR(r)	((unsigned long)(r) > -4096UL)

static void pm_fixed_noop(void)
{
}

/*
 * Write the signature into the page before the map, mapped read-only with
 * the map's first page: made writable for the store and read-only again.
 * Should the kernel refuse (the commit limit), the map works all the same;
 * only another copy of hakmem would not know it for ours.
 */
__attribute__((no_stack_protector)) static void pm_fixed_sign(void)
{
	if (arch_raw_syscall3(SYS_mprotect, PM_FIXED_SIG, 4096, PROT_READ | PROT_WRITE))
		return;
	*(volatile unsigned long *)PM_FIXED_SIG = HAK_PM_FIXED_SIG;
	arch_raw_syscall3(SYS_mprotect, PM_FIXED_SIG, 4096, PROT_READ);
}

/*
 * Reserve the fixed page map's signature page and first page (lib/superslab.h):
 * with them the fast path's immediate address is ours and its entry 0
 * reads 0, so every free takes the slow path until the rest is reserved
 * at the first superslab (pm_init, lib/superslab.c), or for good if it
 * cannot be then. The page before the map holds HAK_PM_FIXED_SIG so that
 * another copy of hakmem in the process can tell our map from anything
 * else. The resolver of an IRELATIVE relocation: it runs while this
 * library (or the executable it is linked into) is relocated, before any
 * code of ours can run, and maybe before the library's own relocations
 * are done: system calls only (no PLT, no errno, no TLS, no stack
 * protector).
 *
 * Only these 8 KiB here, not the map's 4 GiB: a program that lowers
 * RLIMIT_AS before its first allocation (glibc's tst-malloc-thread-fail,
 * a sandbox or a judge run by a launcher) would otherwise find its limit
 * spent before main; the first superslab tests the limits of that moment.
 */
__attribute__((no_stack_protector, used)) static void (*pm_fixed_resolve(void))(void)
{
	long r;

	if (__hak_pm_fixed)
		return pm_fixed_noop;
	/*
	 * Read-only: no commit charge in any overcommit mode (a writable
	 * reserve is charged in full under vm.overcommit_memory=2, which
	 * ignores MAP_NORESERVE); lib/superslab.c makes a granule writable
	 * (pm_open) before its first entry is written.
	 */
	r = arch_raw_mmap(PM_FIXED_SIG, 2 * 4096, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE);
	if (r == (long)PM_FIXED_SIG) {
		pm_fixed_sign();
		__hak_pm_fixed = 3;	/* mask stays 0 until the rest is there */
		return pm_fixed_noop;
	}
	if (!PM_RAW_ERR(r))	/* a kernel before 4.17 took the address as a hint */
		arch_raw_syscall3(SYS_munmap, (unsigned long)r, 2 * 4096, 0);
	/*
	 * Taken. Another hakmem's map holds 0 at entry 0 for good: its
	 * signature page says so (readable: access() does not fault on it).
	 * mask stays 0: every free reads that entry 0 and takes the slow path.
	 */
	__hak_pm_fixed = 2;
	if (arch_raw_syscall3(SYS_access, PM_FIXED_SIG, F_OK, 0) != -EFAULT &&
	    *(volatile unsigned long *)PM_FIXED_SIG == HAK_PM_FIXED_SIG)
		return pm_fixed_noop;
	{
		static const char msg[] = "hakmem: the page map's address 0x7fff0000 "
					  "is taken by another mapping; cannot run "
					  "(build with CONFIG_HAK_PM_FIXED=n)\n";

		arch_raw_syscall3(SYS_write, 2, (unsigned long)msg, sizeof(msg) - 1);
		arch_raw_syscall3(SYS_exit_group, 127, 0, 0);
	}
	return pm_fixed_noop;
}

static void pm_fixed_hook(void) __attribute__((ifunc("pm_fixed_resolve")));

/* Its address in data is the IRELATIVE relocation that runs the resolver. */
__retain static void (*const pm_fixed_at_load)(void) = pm_fixed_hook;
#endif

/* glibc's limit: no object may be larger than PTRDIFF_MAX. */
#define HAK_MAX_REQUEST		((size_t)PTRDIFF_MAX)

static void *fail_enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

/*
 * A mapping was refused: can releasing every cache make room for n bytes?
 * Not when n alone is past a soft RLIMIT_AS or RLIMIT_DATA, or past a hard
 * memory limit (HAKMEM_MEMORY_LIMIT_HARD; the process would need more
 * than its limit with nothing else mapped). Then the purge
 * would only cost: it empties every cache (the next small malloc maps a
 * superslab again), and a program that probes sizes downwards, or glibc's
 * tst-malloc-too-large (a million refused requests, each after a
 * malloc(16)), paid a purge and a 64 MiB map and unmap per refusal: more
 * than 20 s where glibc takes 3. getrlimit keeps errno.
 */
static bool purge_may_help(size_t n)
{
	static const int res[] = { RLIMIT_AS, RLIMIT_DATA };
	struct rlimit rl;

	if (__hak_os_limit_refuses(n))
		return false;
	for (unsigned i = 0; i < 2; i++)
		if (!__hak_os_getrlimit(res[i], &rl) && rl.rlim_cur != RLIM_INFINITY && n > rl.rlim_cur)
			return false;
	return true;
}

static void *large_alloc(size_t n, size_t align, bool zero, bool grow)
{
	struct hak_large_dirty d = { 0, SIZE_MAX };
	int saved;
	void *p;

	/*
	 * No mapping is as large as the address space's window: fail without
	 * the system call, and above all without the purge of every cache
	 * that follows a refused mapping (purge_may_help).
	 */
	if (n > HAK_MAX_REQUEST || n >= ARCH_MAP_WINDOW)
		return fail_enomem();
	/* a first allocation may be large: the fork handlers before any lock */
	__hak_init();
	__hak_purge_tick();
	if (align < HAK_OS_PAGE)
		align = HAK_OS_PAGE;
	/*
	 * A block keeps errno: on the way a mapping may be refused (ENOMEM)
	 * and served otherwise (BigCache, a purge and a second try, a fresh
	 * mapping after a cached one could not grow), one errno store per
	 * large block.
	 */
	saved = errno;
	p = grow ? __hak_large_alloc_grow(n, &d) : __hak_large_alloc(n, align, &d);
	if (unlikely(!p) && purge_may_help(n) && __hak_purge_for_retry())
		p = __hak_large_alloc(n, align, &d);
	if (p)
		errno = saved;
	p = hak_vg_big(p, zero);
	/*
	 * only the old pages: the fresh ones read as 0 untouched (lib/large.h),
	 * and of the old ones those not resident are given back (lib/zero.c)
	 */
	if (p && zero && d.off < n)
		__hak_zero_big((char *)p + d.off, d.len < n - d.off ? d.len : n - d.off);
	return p;
}

/*
 * malloc's direct table sent n here (lib/tcache.h): the countdown that the
 * fast path takes for larger requests, then the allocation, both as tail
 * calls (the profiler's stack starts at its return address).
 */
void *__hak_prof_direct(size_t n)
{
	hak_tc_tls *t = __hak_tc_tls();

	if (hak_prof_tick(&t->prof_left, n))
		return hak_prof_alloc(n);
	return __hak_tcache_pop_ix(t, __hak_size_ix_of(n));
}

/*
 * The pool refused (it leaves errno alone): release what is cached and try
 * once more; ENOMEM only when that fails too, so a success keeps errno at
 * no cost to the pool's own successes.
 */
static __noinline void *l25_retry(size_t n)
{
	void *p = NULL;

	if (__hak_purge_for_retry())
		p = hak_l25_alloc(n);
	if (!p)
		errno = ENOMEM;
	return p;
}

/*
 * The L2.5 pool's thread-cache hits (its fast path: no lock, no system
 * call) skip the purge tick, whose clock read and bookkeeping cost more
 * than the hit itself, but one in HAK_MID_TICK_EVERY ticks all the same,
 * so a thread whose mid-size traffic the cache serves entirely still
 * drives the decay of what it (or anyone) freed before: purged within
 * the delay's bound plus that many operations.
 */
#define HAK_MID_TICK_EVERY	64
static __thread unsigned mid_hits __attribute__((tls_model("initial-exec")));

static inline void mid_hit(void)
{
	if (unlikely(!(++mid_hits & (HAK_MID_TICK_EVERY - 1))))
		__hak_purge_tick();
}

/*
 * The pool's half of malloc and calloc (zero NULL: malloc). For calloc
 * *zero tells whether the block came clean from a shard (never touched,
 * or purged), so it reads as zero and need not be written, as glibc and
 * jemalloc leave fresh memory alone. Before, every such calloc wrote its
 * block and faulted in pages the program might never touch: Python's
 * bytes(n) of 32-64 KiB (PyObject_Calloc) made every page resident
 * (Documentation/benchmarks.md, "RSS over time in real programs"). A
 * thread-cache hit counts as written (the cache keeps no clean state).
 */
static void *mid_alloc(size_t n, bool *zero)
{
	bool clean = false;
	void *p = hak_l25_alloc_cached(n);

	if (likely(p)) {
		mid_hit();
	} else {
		__hak_purge_tick();
		p = hak_l25_alloc_zero(n, &clean);
		if (unlikely(!p))
			p = l25_retry(n);
	}
	if (zero)
		*zero = clean && p;
	return hak_vg_big(p, zero && *zero);
}

void *__hak_alloc_big(size_t n)
{
	if (hak_l25_wants(n))
		return mid_alloc(n, NULL);
	return large_alloc(n, HAK_OS_PAGE, false, false);
}

/*
 * A free the page map did not match to this thread: another heap's block
 * (or this thread has no heap yet), a free page, a mid or large block,
 * NULL, a foreign pointer; also every small free when the map could not
 * be reserved. ex is the fast path's entry with our tag byte XORed in
 * (lib/alloc.h). An entry that is not 0 proves p a block of a live slab
 * of the heap it names and gives its class, exactly as the fast path's
 * match proves one of ours: a block of the idle owner this thread caches
 * is pushed here, any other heap's goes home by its entry
 * (__hak_free_home), and neither the registry nor the superslab's page
 * lines are read (they took 20 of the 33 instructions this function spent
 * per block, and __hak_free_remote read the owner's line again: 7;
 * Documentation/benchmarks.md, "Where hakmem's extra instructions per
 * block go"). A pointer at or above 2^47, whose index the fixed or
 * wrapped map wraps onto some page, is refused by its bin's boundary
 * mask (HAK_MASK_HIGH) before anything reads or writes through it, as on
 * the fast path. With the header box every such free goes to
 * __hak_free_any, which checks the header's bytes against the slab.
 */
void __hak_free_slow(void *p, uintptr_t ex)
{
	hak_tc_tls *t = __hak_tc_tls();

	if (!HAK_HDR_SIZE && likely((ex >> 8) == t->rfx)) {
		__hak_tcache_push_ix(t, p, ex & 0xff, __hak_free_key());
		return;
	}
	if (!HAK_HDR_SIZE && likely(ex & 0xff00)) {
		uintptr_t e = ex ^ (t->tagx & 0xff00);

		if (likely(e >> 8)) {
			__hak_free_home(p, e & 0xff);
			return;
		}
	}
	__hak_free_any(p);
}

/*
 * The rest: sorted out by the 2 MiB registry and the superslab's page
 * lines, as the fast path did before the page map. A block of the idle
 * owner this thread caches frees by its page-map entry (below): with the
 * header box, or when __hak_free_home sends a free back here.
 */
void __hak_free_any(void *p)
{
	uintptr_t a = (uintptr_t)p;
	uint32_t rf = __hak_rf_tag;

	/*
	 * A block of the idle owner this thread caches (below): the page-map
	 * entry with that owner's tag proves it a block of that heap's slab
	 * exactly as the fast path's entry proves one of ours (the push then
	 * checks the boundary and the mark as the fast path does), so neither
	 * the registry nor the superslab's page line is read: the first
	 * generation of larson's lanes frees such blocks at most of its frees.
	 */
	if (rf) {
		uintptr_t e, key;

		if (likely(__hak_pm_load(a, &e, &key)) && (e >> 8) == rf) {
			__hak_tcache_push_ix(__hak_tc_tls(), p, __hak_block_ix(a, e & 0xff), key);
			return;
		}
	}
	if (__hak_ss_owns(a)) {
		unsigned c = __hak_block_class(a);
		unsigned o = __hak_block_owner(a);

		/*
		 * Ours (or a pre-attach) caches, and so does a block of the
		 * idle owner this thread remembers (lib/heap.c, owner_idle()):
		 * most of the frees of a thread that took over another's data
		 * (larson's lanes past the cores: a third of their frees are of
		 * the blocks the sleeping main thread filled the tables with,
		 * each time they are freed again). Tested here rather than in
		 * __hak_free_remote, such a free takes no call, no second
		 * owner read and no prefetch. Any other block goes home.
		 * (With a page map the test above took these first: this one
		 * serves the one-page fallback, where there is none.)
		 */
		if (o == __hak_tc.tag ||
		    (o == __hak_rf_tag && __hak_rf_tag && c < HAK_NCLASS))
			__hak_tcache_push(p, c);
		else
			__hak_free_remote(p, c);
		return;
	}
	__hak_free_big(p);
}

void __hak_free_big(void *p)
{
	int saved = errno;

	if (!p)
		return;
	hak_vg_free(p);
	hak_prof_free(p);
	if (__hak_ssmap_kind((uintptr_t)p) == HAK_SSMAP_L25) {
		/* a push to the pool's thread cache: see mid_hit() */
		if (hak_l25_free(p))
			mid_hit();
		else
			__hak_purge_tick();
	} else {
		__hak_purge_tick();
		if (!__hak_large_free(p))
			__hak_bad_free(p, "not allocated by hakmem");
	}
	errno = saved;
}

/*
 * Usable bytes of small block p. With the header box an aligned block is
 * an address inside a larger slot; its header says how far in.
 */
static size_t small_usable(const void *p, const char *what)
{
	unsigned c = __hak_block_class((uintptr_t)p);

	if (hak_ff_level())
		hak_ff_check_live(p, c);
	/*
	 * Exactly a block's address: an interior pointer that passes the
	 * class's mask (p + 16 in a 48-byte block) would otherwise be
	 * answered the whole class size (writes past the block), and
	 * realloc would hand it back as the block.
	 */
	if (likely(c < HAK_NCLASS &&
		   (HAK_HDR_SIZE ? !__hak_off_boundary((uintptr_t)p, 0) :
		    __hak_slab_is_block(__hak_slab_head(__hak_page_of((uintptr_t)p)),
					(uintptr_t)p)))) {
		/*
		 * A block with the free mark (tcache.h) is confirmed as a
		 * free confirms one: a freed block was answered as live, and
		 * a realloc that fit handed it back while the cache would
		 * hand it out again. Fail-fast level 2 checked it above; its
		 * mark replaces ours. Memcheck sees use after free itself
		 * (and the word may be one the program never wrote). A tail
		 * call, so the check costs its compare and branch alone.
		 */
		if (HAK_FREE_CHECKS && hak_ff_level() < 2 && !hak_vg_running() &&
		    unlikely(((const uintptr_t *)p)[1] == __hak_free_key()))
			return __hak_use_confirm(p, c, what);
		return __hak_class_size[c];
	}
	if (HAK_HDR_SIZE) {
		uintptr_t slot = __hak_hdr_slot(p, &c, what);

		return __hak_class_size[c] - ((uintptr_t)p - slot);
	}
	__hak_bad_free(p, what);
}

/*
 * Usable size of p (not NULL); reported in the words of the call that asks
 * (small: a small block's check; big: another pointer's) unless p is a
 * live block.
 */
static __always_inline size_t usable_checked(const void *p, const char *small,
					      const char *big)
{
	/* one registry lookup: its bound is read with acquire, never merged */
	unsigned kind = __hak_ssmap_kind((uintptr_t)p);
	size_t n;

	if (kind == HAK_SSMAP_SLAB)
		return small_usable(p, small);
	/* a mid or large block, 0 when p is neither */
	n = kind == HAK_SSMAP_L25 ? hak_l25_usable(p) : __hak_large_usable(p);
	if (!n)
		__hak_bad_free(p, big);
	return n;
}

size_t __hak_usable_size(const void *p)
{
	if (!p)
		return 0;
	return usable_checked(p, "usable size of a pointer that is not a live block",
			      "usable size of a pointer not allocated by hakmem");
}

void *__hak_calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total))
		return fail_enomem();
	if (hak_l25_wants(total)) {
		bool zero;

		p = mid_alloc(total, &zero);
		if (p && !zero)
			memset(p, 0, total);
		return hak_prof_big(p, total);
	}
	if (total > HAK_SMALL_MAX)
		return hak_prof_big(large_alloc(total, HAK_OS_PAGE, true, false), total);
	p = __hak_alloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

/*
 * A block that grows past 256 KiB goes to the large path even where the
 * L2.5 pool would serve the size (up to 512 KiB by default): there it can
 * grow in place (the cached range after it, mremap), while in the pool it
 * would move class by class and leave a resident free block of each class
 * behind (realloc-chain with the pool up to 512 KiB: 9..12% more peak RSS
 * and page faults). malloc of those sizes stays in the pool.
 */
#define HAK_GROW_POOL_MAX	((size_t)256 << 10)

/* Does a realloc from old to n bytes grow past the pool's growth maximum? */
static inline bool realloc_grows_big(size_t old, size_t n)
{
	return n > old && n > HAK_GROW_POOL_MAX;
}

/* ... to a size the pool would serve, which it skips (above)? */
static inline bool realloc_skips_pool(size_t old, size_t n)
{
	return realloc_grows_big(old, n) && hak_l25_wants(n);
}

/*
 * Move a block: new block, copy what fits, free the old one. A block that
 * grows past the pool's growth maximum goes to the large path's grow area
 * (lib/grow.c), where it grows on without system calls.
 */
static void *realloc_move(void *p, size_t old, size_t n)
{
	void *q = realloc_grows_big(old, n) ?
		  hak_prof_big(large_alloc(n, HAK_OS_PAGE, false, true), n) : __hak_alloc(n);

	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	__hak_free(p);
	return q;
}

/*
 * Move a mid block that grows out of its class: to at least half again its
 * size, as a large block grows (below). The pool has four classes per
 * doubling, so a chain of small increments (string builders, vectors)
 * moved once per class copied about five times its final size; half again
 * copies about three times (realloc-chain: 696 -> 289 MB copied, 2x
 * faster, and a lower peak RSS, since fewer blocks of every class are
 * left free along the way). Growth by half or more is served exactly; if
 * the bigger block cannot be had, the exact one is tried (errno kept).
 */
static void *realloc_grow_move(void *p, size_t old, size_t n)
{
	int saved = errno;
	void *q;

	if (n > old && n - old < old / 2) {
		q = realloc_move(p, old, old + old / 2);
		if (q)
			return q;
		errno = saved;	/* the exact size may still succeed */
	}
	return realloc_move(p, old, n);
}

/*
 * NULL p, size 0, a size too big. The pointer is checked before the size
 * is refused, as glibc's realloc checks it: a foreign or freed pointer
 * was answered NULL and ENOMEM, as if it were a block (rv31).
 */
static __noinline void *realloc_odd(void *p, size_t n)
{
	if (!p)
		return __hak_alloc(n);
	if (n == 0) {
		__hak_free(p);
		return NULL;
	}
	usable_checked(p, "realloc of a pointer that is not a live block",
		       "realloc of a pointer not allocated by hakmem");
	return fail_enomem();
}

/*
 * A mid or large block (old: its usable size, 0 when it is not one) that
 * does not stay in place: moved, or resized. Each way tried may fail with
 * errno set before the next one succeeds: realloc_big restores it.
 */
static void *realloc_big_try(void *p, size_t n, size_t old)
{
	void *q;

	if (!old)
		__hak_bad_free(p, "realloc of a pointer not allocated by hakmem");
	/*
	 * A large block that grows past HAK_GROW_POOL_MAX stays large and
	 * grows as one (below), also to a size the pool serves: moved, it
	 * was copied into a fresh large mapping at every step up to the
	 * pool's maximum (realloc_move), never grown in place.
	 */
	if (n <= HAK_SMALL_MAX || __hak_ssmap_kind((uintptr_t)p) == HAK_SSMAP_L25 ||
	    (hak_l25_wants(n) && !realloc_skips_pool(old, n)))
		return realloc_grow_move(p, old, n);
	/* memcheck cannot follow a described block that mremap moves */
	if (hak_vg_running())
		return realloc_move(p, old, n);
	/*
	 * Grow a large block by at least half again, so a chain of small
	 * increments (string builders, vectors) remaps once per 50% of growth
	 * instead of once per page; the extra pages cost address space, not
	 * memory, until they are written.
	 */
	if (n > old && old + old / 2 > n) {
		size_t want = old + old / 2;

		/* not out of a grow area's slot for headroom alone (lib/grow.h) */
		if (n <= HAK_GROW_SLOT && want > HAK_GROW_SLOT)
			want = HAK_GROW_SLOT;
		q = __hak_large_resize(p, want, n);
		if (q)
			return hak_prof_moved(p, q, n);
	}
	q = __hak_large_resize(p, n, n);
	if (q)
		return hak_prof_moved(p, q, n);
	return realloc_move(p, old, n);
}

static __noinline void *realloc_big(void *p, size_t n, size_t old)
{
	int saved = errno;
	void *q = realloc_big_try(p, n, old);

	if (q)
		errno = saved;
	return q;
}

/*
 * Growth within the usable size is most calls of a program that builds
 * strings or vectors (realloc-chain: 99% of them), so a mid or large
 * block that stays in place costs one registry load and its usable-size
 * lookup (the large registry's per-thread memo: a key compare and one
 * count load) and nothing else; the rest is out of line.
 */
void *__hak_realloc(void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;
	unsigned kind = __hak_ssmap_kind(a);
	size_t old;

	if (unlikely(!p || n - 1 >= HAK_MAX_REQUEST))
		return realloc_odd(p, n);
	if (kind == HAK_SSMAP_SLAB) {
		old = small_usable(p, "realloc of a pointer that is not a live block");
		/* Stay put when it fits and would not waste more than half. */
		if (n <= old && (n > old / 2 || old <= 64))
			return p;
		return realloc_move(p, old, n);
	}
	old = kind == HAK_SSMAP_L25 ? hak_l25_usable(p) : __hak_large_usable(p);
	if (likely(n <= old && n > old / 2))
		return p;
	return realloc_big(p, n, old);
}

void *__hak_reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total))
		return fail_enomem();
	return __hak_realloc(p, total);
}

/*
 * An aligned block cut from a larger small slot (header box): the slot's
 * own header is left alone unless the block starts at the slot, and the
 * block's header records the slot's class and distance.
 *
 * The block gets at least 16 bytes of its slot, as malloc(0) does: its
 * free writes the free mark into its second word before the slow path
 * finds the slot (tcache.h), so a block of 0 bytes at the very end of its
 * slot, where a slot of exactly n + align - 16 bytes put it whenever the
 * slot started 16 bytes past an align boundary, had that write land in the
 * next block's header (its class byte became 0: fail-fast's "not a block
 * boundary" abort, or without fail-fast that block freed into class 0).
 */
static void *alloc_aligned_in_slot(size_t align, size_t n)
{
	size_t need = (n ? n : 1) + align - 16;
	unsigned c;
	uintptr_t slot, q;
	struct hak_hdr *hd;

	c = __hak_class_of(need);
	slot = (uintptr_t)__hak_tcache_pop(c);
	if (!slot)
		return NULL;
	q = HAK_ALIGN_UP(slot, (uintptr_t)align);
	hd = hak_hdr_of((void *)q);
	hd->check = hak_hdr_check((void *)q);
	hd->slot_class = (uint8_t)c;
	hd->owner = hak_hdr_of((void *)slot)->owner;
	hd->delta = (uint8_t)((q - slot) / 16);
	hd->class_idx = HAK_HDR_ALIGNED;
	hak_vg_slot_alias((void *)slot, c, (void *)q);
	return (void *)q;
}

/* align is a power of two. */
static void *alloc_aligned(size_t align, size_t n)
{
	if (align <= 16)
		return __hak_alloc(n);
	if (HAK_HDR_SIZE) {
		/* delta is one byte of 16-byte units: slots up to 4 KiB apart */
		if (align <= 2048 && n <= HAK_SMALL_MAX - align)
			return alloc_aligned_in_slot(align, n);
	} else if (n <= HAK_SMALL_MAX) {
		unsigned c = __hak_class_for_align(n, align);

		if (c != HAK_CLASS_NONE)
			return __hak_tcache_pop(c);
	}
	return hak_prof_big(large_alloc(n, align, false, false), n);
}

/*
 * glibc's memalign: an alignment up to 16 is malloc's, another that is not
 * a power of two is rounded up to one, and only one above 2^63 (which
 * cannot be rounded) is EINVAL.
 */
void *__hak_memalign(size_t align, size_t n)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!HAK_IS_POW2(align))
		align = align <= 16 ? 16 : (size_t)1 << (64 - __builtin_clzll(align));
	return alloc_aligned(align, n);
}

/*
 * C17 (DR 460) and glibc 2.38: an alignment that is not a power of two is
 * EINVAL (glibc 2.36 treats aligned_alloc as memalign and rounds it up).
 */
void *__hak_aligned_alloc(size_t align, size_t n)
{
	if (!HAK_IS_POW2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_aligned(align, n);
}

/*
 * glibc: EINVAL is returned with errno untouched; ENOMEM is returned and
 * also left in errno (its memalign sets it), as programs that test errno
 * after any failed allocation expect.
 */
int __hak_posix_memalign(void **out, size_t align, size_t n)
{
	int saved = errno;
	void *p;

	if (!HAK_IS_POW2(align) || align % sizeof(void *))
		return EINVAL;
	p = alloc_aligned(align, n);
	if (!p) {
		errno = ENOMEM;
		return ENOMEM;
	}
	errno = saved;
	*out = p;
	return 0;
}

void *__hak_valloc(size_t n)
{
	return alloc_aligned(HAK_OS_PAGE, n);
}

void *__hak_pvalloc(size_t n)
{
	if (n > HAK_MAX_REQUEST)
		return fail_enomem();
	return alloc_aligned(HAK_OS_PAGE, HAK_ALIGN_UP(n ? n : 1, HAK_OS_PAGE));
}

void __hak_free_sized(void *p, size_t n)
{
	(void)n;
	__hak_free(p);
}

void __hak_free_aligned_sized(void *p, size_t align, size_t n)
{
	(void)align;
	(void)n;
	__hak_free(p);
}

int __hak_trim(size_t pad)
{
	int saved = errno;
	size_t done;

	(void)pad;
	done = __hak_purge_trim();
	errno = saved;
	return done != 0;
}
