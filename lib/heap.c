// SPDX-License-Identifier: MIT
/*
 * Heap slow paths: tcache refill and overflow, remote free and its
 * collection, slab life cycle, and thread attach/detach.
 *
 * Remote free protocol (any thread, lock-free):
 *   1. push the chain onto s->remote with cmpxchg;
 *   2. if s->remote was empty before, push s onto owner->pending.
 * The owner takes owner->pending whole with xchg and, for each slab, reads
 * pending_next first, then takes s->remote whole with xchg (so does the
 * decay pass for an owner idle for the delay, holding its scan lock:
 * idle_collect; and, past the cores, another heap's refill about to take
 * new pages, holding it too: collect_others). So a slab is
 * on at most one pending stack, is on it exactly while s->remote is
 * non-empty, and its blocks count in s->used until collected: a slab with
 * used == 0 has no block in flight and may be released. Both stacks are
 * multi-producer, single-consumer with take-all, so there is no ABA.
 *
 * A thread's frees of another heap's blocks are gathered first in its runs
 * (one per class, one slab's blocks each: runs[] below) and pushed as one
 * chain. A block in a run was freed but is not yet pushed: it is still
 * counted in its slab's used, as on the remote stack, so the slab is not
 * released while it sits there, whoever holds the run, and nothing else
 * can hold the block (it is on no list the owner or a refill takes from).
 * A run is pushed by the thread holding it only: when a block of another
 * slab of its class comes, at its size limit, and at that thread's
 * refills, overflows, flush_self (trim), hand-over and exit (heap_leave).
 * Runs are thread-local, so a fork child keeps the forking thread's runs
 * (pushed at its own slow paths) and loses the other threads', as it loses
 * their bins: those blocks stay counted in used, never handed out. A
 * thread that stops freeing and never reaches a slow path holds at most
 * HAK_RUN_MAX blocks or HAK_RUN_BYTES per class until it does or exits.
 *
 * s->remote is one word: the number of blocks on the stack, its top block
 * and its bottom block, both as offsets in 16-byte units from the slab's
 * first page (a slab spans at most 256 KiB, so 14 bits each). The pusher
 * knows both ends of its own chain, so the owner splices what it takes
 * onto the slab's free list and subtracts the count without walking it:
 * that walk was a cache miss per block (the blocks were last written by
 * the freeing threads), 31% of producer-consumer at 64 pairs.
 *
 * Double and invalid frees (every variant; see tcache.h for the mark):
 * a free by the owner thread that finds the free mark is confirmed here by
 * walking what the owner alone may walk: its bin, the slab's free list and
 * the slab's remote list (nodes leave that stack only by the owner's xchg,
 * and a pushed node's link never changes, so the owner's walk is safe).
 * A free by another thread that finds the free mark cannot walk the
 * owner's bin: it parks the block in suspects[] instead of freeing it, and
 * the owner settles it on its next slow path (refill, overflow, trim,
 * thread exit): reported if found free, freed normally otherwise. So a
 * report always names a block that was on a free list: no false positive.
 *
 * A free block may also sit where its owner cannot look: in the cache of
 * a thread that cached an idle owner's blocks (__hak_free_remote), in
 * another thread's run going home, in the depot, or in the kept bins of
 * that thread's pooled heap; with more than 254 heaps, in the cache of a
 * thread whose heap shares the owner's tag. A thread that starts a run of
 * h's blocks sets h->lent first. A second free of a block in a run by the
 * thread holding it finds it there at once (run_holds); by any other
 * thread it is parked until the run is pushed home, where the owner's walk
 * of the remote stack or the free list finds it.
 * So every thread's slow path also looks for every parked block in its own
 * bins (and the kept bins of the heap it holds), and the owner of a heap
 * that lent blocks so (h->lent, or tags shared) never frees a parked block
 * it did not find: it stays parked (out of circulation, so never handed
 * out twice) until the thread whose cache holds it reports it, or for
 * good if it was a live block holding the key by chance. A block freed
 * while parked already is reported at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <asm/atomic.h>
#include <asm/prefetch.h>
#include "heap.h"
#include "init.h"
#include "lock.h"
#include "meta.h"
#include "os.h"
#include "purge.h"
#include "boxes/adaptive_sizing/adaptive.h"
#include "boxes/failfast/failfast.h"
#include "boxes/hardened/hardened.h"
#include "boxes/header_classidx/header.h"
#include "boxes/heapprof/heapprof.h"
#include "boxes/tls_prewarm/prewarm.h"
#include "boxes/valgrind/valgrind_hooks.h"

__thread struct hak_tcache __hak_tc __attribute__((tls_model("initial-exec"))) = {
	.tagx = HAK_TAGX_NONE,	/* no heap: the free fast path matches nothing */
	.rfx = HAK_RFX_NONE,	/* no idle owner cached */
	.size_ix = { HAK_SIZE_IX_DIRECT },
};

static struct hak_lock heap_lock = HAK_LOCK_INIT;
static struct hak_heap *all_heaps __boot_hot;	/* heap_lock */
static struct hak_heap *heap_pool __boot_hot;	/* heap_lock */
/*
 * Pooled heaps a scavenge has settled and not yet collected (between its
 * two passes, scavenge_pool): still in the pool for attach and hand-over.
 */
static struct hak_heap *heap_scav __boot_hot;	/* heap_lock */
static size_t nr_heaps __boot_hot;			/* heap_lock */
/* Set by a remote free to a pooled heap: its slabs may be reclaimable. */
static int pool_dirty __boot_hot;
/* half-done remote pushes a fork child finished (fork_child_pushes) */
static unsigned long nr_pushes_finished;
static size_t tcache_bytes = CONFIG_HAK_TCACHE_BYTES;
/*
 * Threads with a heap attached, those of them that have refilled since
 * they attached (so allocate: thread_share), and the CPUs this process
 * may run on (read at the first attach).
 */
static unsigned nr_live __boot_hot;
static unsigned nr_alloc __boot_hot;
static unsigned nr_cpus __boot_once;
/* This thread counts in nr_alloc (its first refill since attach). */
static __thread bool alloc_counted __attribute__((tls_model("initial-exec")));

/*
 * Blocks freed by a non-owner thread with the free mark on them, to be
 * settled by the owner. Lock-free slots (fork copies them as they are);
 * when all are taken the block is kept out of circulation (leaked), which
 * is safe either way. nr_suspects is a hint read on slow paths.
 */
#define HAK_SUSPECTS		64
static void *suspects[HAK_SUSPECTS];
static unsigned nr_suspects __boot_hot;
/* atomic: more than HAK_TAG_MAX heaps exist, so two may share a tag */
static int tags_shared;

#define HAK_KEEP_EMPTY		1	/* empty slabs a heap keeps per class */

#define HAK_TCACHE_CAP_MIN	8
#define HAK_TCACHE_CAP_MAX	256

unsigned __hak_heap_nr_live(void)
{
	return arch_load_relaxed(&nr_live);
}

/*
 * The threads that allocate (*n) outnumber the CPUs (*cpus) by more than
 * one: some of them wait for a CPU (thread_share, collect_others).
 */
static bool past_cores_by(unsigned *n, unsigned *cpus)
{
	*n = arch_load_relaxed(&nr_alloc) + !alloc_counted;
	*cpus = arch_load_relaxed(&nr_cpus);
	return *cpus && *n > *cpus + 1;
}

static bool past_cores(void)
{
	unsigned n, cpus;

	return past_cores_by(&n, &cpus);
}

/*
 * A thread's share of a per-thread budget: the whole of it while the
 * threads that allocate do not outnumber the CPUs by more than one,
 * bytes * cpus / threads past that. Threads beyond the CPU count take
 * turns on them, so their caches serve no more operations per second
 * between them than the CPUs' worth would, and the memory held in caches
 * (and the page faults to fill it) would otherwise grow with the thread
 * count. Applied to the default capacities (HAKMEM_TCACHE_BYTES) at
 * attach; the adaptive-sizing box grows a class past them only when it
 * both refills and overflows, within its own budget, which falls the same
 * way but not below CONFIG_HAK_ADAPTIVE_BUDGET_MIN_KIB (larson's lanes
 * need grown caches).
 *
 * A thread counts from its first refill since attach (nr_alloc), and the
 * calling thread always does (its capacities are for when it allocates):
 * a thread that only frees other threads' blocks (a consumer) never fills
 * a bin, so it holds none of the budget. One thread past the CPUs still
 * takes the whole: a main thread waiting in join is live and idle, and
 * the 1- and 2-thread rows must not pay for it. Until 2026-12-04 (pc19)
 * every attached thread counted, with no spare, so a thread's share
 * depended on how many had attached before it: producer-consumer at 2
 * pairs (5 threads: main, two producers, two consumers) gave the producer
 * that attached third or fourth 2/3 or 1/2 of the capacities of every
 * class of 96 B and more, for the whole run. It refilled more often (its
 * bin_fill took 43% more samples than the other producer's), and the
 * run's wall time, the slower pair's, was 4% over mimalloc's
 * (Documentation/benchmarks.md, "producer-consumer at 2 pairs: the second
 * producer's capacities"). The shrink itself pays past the cores: the
 * whole capacities there (pc26) cut producer-consumer's refills by a
 * third to a half, but the blocks the bigger bins hold are pages first
 * touched, and its CPU a block rose 4-8% at 16 pairs and 11-21% at 64
 * (same file, "The bins' default capacity past the cores").
 */
static size_t thread_share(size_t bytes)
{
	unsigned n, cpus;

	if (!past_cores_by(&n, &cpus))
		return bytes;
	return (size_t)((unsigned __int128)bytes * cpus / n);
}

/*
 * For boxes: a thread's share of a per-thread budget of bytes (above).
 * The adaptive-sizing box bounds its budget with it
 * (boxes/adaptive_sizing/adaptive.c, "Past the cores").
 */
size_t __hak_tcache_live_share(size_t bytes)
{
	return thread_share(bytes);
}

/* For boxes: the L2.5 pool lends blocks between shards only past the cores. */
bool __hak_tcache_past_cores(void)
{
	return past_cores();
}

/* Default capacity of class c for a thread's share of the cache bytes. */
static uint32_t tcache_cap_of(size_t share, unsigned c)
{
	size_t cap = share / __hak_class_size[c];

	if (cap < HAK_TCACHE_CAP_MIN)
		cap = HAK_TCACHE_CAP_MIN;
	if (cap > HAK_TCACHE_CAP_MAX)
		cap = HAK_TCACHE_CAP_MAX;
	return (uint32_t)cap;
}

/*
 * The capacities of the whole tcache_bytes, set with it at init: while
 * threads do not outnumber the CPUs every attach wants them, and working
 * them out took a division per class at each thread's start (thread-churn).
 * 0 until set (a capacity is at least HAK_TCACHE_CAP_MIN).
 */
static uint32_t cap_full[HAK_NCLASS] __boot_once __aligned(64);

static uint32_t default_cap(size_t share, unsigned c)
{
	if (share == tcache_bytes && cap_full[c])
		return cap_full[c];
	return tcache_cap_of(share, c);
}

/*
 * Past the cores the default capacities are small (8 blocks of most
 * classes at 64 pairs of threads on 2 CPUs), but a refill still finds the
 * free blocks of a class in long lists: a producer's slab gets back, in
 * one remote chain, every block its consumer freed while the producer
 * waited for a CPU (about 60 at 64 pairs). A list longer than the bin's
 * room was popped one link at a time, a dependent miss per block (the
 * consumer wrote each link last): 48% of producer-consumer's time at 64
 * pairs. So a refill past the cores, with a room less than half of what
 * a thread has while threads do not outnumber the CPUs, takes such a list
 * whole, unread, up to twice that unshrunk share in bytes (a slab's list,
 * at most HAK_LIFT_MAX blocks: refill_limit; a milder
 * shrink, 3 threads on 2 CPUs, is left alone: larson at 2 threads plus
 * its main thread lost ~5% with it), and the bin's capacity is raised to
 * what it then holds (bin_raise, room 0). A list that is at least half
 * its slab goes whole the same way at any thread count (dense_limit).
 * Only blocks already free and resident move (no
 * page is carved for it: the refill's want is unchanged), and the raise
 * lasts until the class's next refill (bin_lower), so a bin never holds
 * more than twice a thread's unshrunk share of the class in bytes (nor
 * more blocks than the adaptive box gives a class). cap_lift[c] is the raised
 * capacity and cap_base[c] the one it replaced; a capacity set since by
 * anything else (the adaptive box, an exit) is left alone.
 */
static __thread uint32_t cap_lift[HAK_NCLASS] __attribute__((tls_model("initial-exec")));
static __thread uint32_t cap_base[HAK_NCLASS] __attribute__((tls_model("initial-exec")));

/*
 * The most a whole-list take past the cores may hold: twice the class's
 * share of the unshrunk budget in bytes (64 KiB by default: one 64 KiB
 * slab's blocks, so a slab's free list, however long, goes over unread),
 * at most HAK_LIFT_MAX blocks (the adaptive box's largest capacity: what
 * one thread may hold of a class while threads do not outnumber the CPUs).
 * Found on a pool of batches (tools/bench/batch-pool.c, xmalloc-test's
 * shape): the producers' slabs get their consumers' frees back as lists
 * of 256-1,023 blocks, longer than the unshrunk capacity (256 at most),
 * and 2.1M of 8.2M blocks were popped one cold link at a time.
 */
#define HAK_LIFT_MAX	2048

static uint32_t refill_limit(unsigned c, uint32_t room)
{
	uint32_t full;
	size_t lift;

	/* an exiting thread's bins have capacity 0: they must stay so */
	if (arch_load_relaxed(&nr_live) <= arch_load_relaxed(&nr_cpus) ||
	    __hak_tc.state != HAK_T_LIVE)
		return room;
	full = default_cap(tcache_bytes, c);
	if (full <= 2 * room)
		return room;
	lift = 2 * tcache_bytes / __hak_class_size[c];
	if (lift > HAK_LIFT_MAX)
		lift = HAK_LIFT_MAX;
	return lift > full ? (uint32_t)lift : full;
}

/*
 * The longest slab free list a refill takes whole past the bin's room when
 * at least half the slab's carved blocks are on it (slab_take), at any
 * thread count: the bound of the lift past the cores (twice the class's
 * unshrunk share in bytes, at most HAK_LIFT_MAX blocks), the bin raised
 * for it the same way (bin_raise, until the class's next refill).
 * footprint's random frees leave the small classes' slabs 90% free, with
 * lists of 200-1,400 blocks against rooms of 30-250: a refill popped half
 * a bin of them one cold dependent link at a time (454k of the 900k blocks
 * allocated in `footprint 1 3 200000 42`), where a list taken whole is
 * fetched at once (slab_prefetch) and each block's line is read by the
 * malloc that hands it out, overlapped with the program's work, as a
 * page-local free list is. A sparse list (most of the slab live) keeps
 * the pops: its prefetch would fetch mostly live lines, and lifting every
 * list cost footprint at 2 threads.
 * Documentation/benchmarks.md, "footprint: dense lists taken whole".
 */
static uint32_t dense_limit(unsigned c, uint32_t room)
{
	size_t lift;

	if (__hak_tc.state != HAK_T_LIVE)
		return room;
	lift = 2 * tcache_bytes / __hak_class_size[c];
	if (lift > HAK_LIFT_MAX)
		lift = HAK_LIFT_MAX;
	return lift > room ? (uint32_t)lift : room;
}

/* Bin b of class c now holds n blocks, more than its capacity. */
static void bin_raise(struct hak_tbin *b, unsigned c, uint32_t n)
{
	if (!cap_lift[c] || cap_lift[c] != b->cap)
		cap_base[c] = b->cap;
	cap_lift[c] = n;
	b->cap = n;
	__hak_tbin_set_count(b, n);
}

/* Undo bin_raise (b empty: the class's next refill). */
static void bin_lower(struct hak_tbin *b, unsigned c)
{
	if (unlikely(cap_lift[c])) {
		if (b->cap == cap_lift[c] && __hak_tbin_count(b) <= cap_base[c])
			__hak_tbin_set_cap(b, cap_base[c]);
		cap_lift[c] = 0;
	}
}

/*
 * Class c's capacity as last set: a raised bin's (nothing set its
 * capacity since bin_raise) is the one it replaced.
 */
uint32_t __hak_tcache_cap_set(unsigned c)
{
	const struct hak_tbin *b = &__hak_tc.bins[c];

	return cap_lift[c] && b->cap == cap_lift[c] ? cap_base[c] : b->cap;
}

uint32_t __hak_tcache_cap(unsigned c)
{
	return default_cap(thread_share(tcache_bytes), c);
}

/* At init (__hak_options_read), before any thread attaches. */
void __hak_tcache_set_bytes(size_t bytes)
{
	unsigned c;

	tcache_bytes = bytes;
	for (c = 0; c < HAK_NCLASS; c++)
		cap_full[c] = tcache_cap_of(bytes, c);
}

/*
 * ---- scan lock ----
 *
 * A heap's slabs belong to its thread, but a thread that went idle would
 * keep their free pages for good: so another thread (the background purge
 * thread, or any thread's decay pass) may scan an idle heap's slabs for
 * free pages, holding scan_lk (HAK_SCAN_OTHER, taken with a cmpxchg, never
 * waited for). The owner holds it (HAK_SCAN_OWNER) around every slow path
 * that touches its slabs; depth (owner only) lets those nest. The fast
 * paths touch only the thread's bins, which no other thread ever touches.
 */
#define HAK_SCAN_OWNER	1
#define HAK_SCAN_OTHER	2

/*
 * Fork must not copy a scan in progress (the child has no scanner to end
 * it): its prepare handler raises scan_stop and waits for heap_scanning.
 * A count, not a flag: forks overlap (glibc does not serialise them), and
 * the first to finish must not let a scan start under the others.
 */
static int scan_stop __boot_once;		/* atomic: forks between prepare and parent */
/*
 * This thread's part of scan_stop: a handler fork nested in the thread's
 * own fork (rv18, fork_nested) leaves in its child the outer fork's
 * count, which that fork's parent handler takes back there.
 */
static __thread int scan_stop_mine;
static int heap_scanning __boot_hot;	/* atomic: a scan of other heaps runs */
/*
 * This thread runs it: a fork in a signal handler that interrupted the
 * scan does not wait for itself; the interrupted frame ends the scan when
 * the handler returns, in the child too (lock.h, hak_lock_fork_take).
 */
static __thread bool scanning_here;
/*
 * One scanner of other heaps at a time: the decay pass (purge_busy keeps
 * out another) and a refill collecting other heaps' remote frees before it
 * takes new pages (collect_others) both try-lock scan_gate before they set
 * scanning_here and heap_scanning, so heap_scanning has one owner, and a
 * handler fork that finds scanning_here set on its own thread never skips
 * its wait for another thread's scan. The gate holds its holder's token
 * (the address of its gate_here), so a fork child resets a gate this
 * thread does not hold even when a handler fork interrupted this thread
 * between gate_here and the try (its holder is not there; heap_scanning's
 * cleanup covers any scan lock it held, and between the gate and
 * heap_scanning it holds none). gate_here is set before the try and
 * cleared after the release: a handler inside the frame does not try.
 */
static uintptr_t scan_gate __boot_hot;	/* atomic try-lock: 0 or the holder's token */
static __thread bool gate_here;

static uintptr_t gate_token(void)
{
	return (uintptr_t)&gate_here;
}

static void scan_end(void)
{
	arch_store_release(&heap_scanning, 0);
	barrier();
	scanning_here = false;
	barrier();
	arch_store_release(&scan_gate, 0);
	barrier();
	gate_here = false;
}

/* Become the scanner of other heaps, or false (another is, or a fork). */
static bool scan_begin(void)
{
	/* a handler that interrupted this thread's own scan, or a busy gate */
	if (scanning_here || gate_here || arch_load_relaxed(&scan_gate))
		return false;
	gate_here = true;
	barrier();
	if (arch_cmpxchg(&scan_gate, 0, gate_token())) {
		barrier();
		gate_here = false;
		return false;
	}
	/*
	 * scanning_here covers heap_scanning on both sides: a handler fork
	 * that interrupted this thread between the two waited for its own scan
	 * (selftests/core/fork_signal_race, 1 run in 88 of its two handler
	 * forks: the frame past the xchg, scanning_here not yet set).
	 */
	scanning_here = true;
	barrier();
	arch_xchg(&heap_scanning, 1);
	if (arch_load_relaxed(&scan_stop)) {
		scan_end();
		return false;
	}
	return true;
}

/*
 * Another thread scans our heap: it stops at the next slab when asked, but
 * it needs a CPU for that, maybe this one, at a lower priority (a default-
 * policy thread's decay pass, a SCHED_FIFO owner): so the wait backs off
 * to naps (os.h, __hak_os_backoff; rv25, selftests/core/fifo_scan_wait).
 *
 * Between its tries the wait does not count as held (depth 0): a signal
 * handler of this thread that reaches a slow path meanwhile waits for the
 * lock too (and lets go of it at its heap_exit), instead of finding depth
 * 1 and running beside the scanner, both on the heap's lists. Since
 * collect_others, busy owners wait here, not only ones idle for a delay
 * (rv33, selftests/core/scan_wait_signal). Depth is 1 again before each
 * try, so a handler after a successful one nests; what is left is the
 * few instructions heap_enter has between its count and its try. A frame
 * is still inside the heap: enter_waits keeps heap_handover, which wants
 * depth 0, from handing it over from such a handler.
 */
static __thread unsigned enter_waits __attribute__((tls_model("initial-exec")));

static void __cold heap_enter_wait(struct hak_heap *h)
{
	unsigned n;

	for (n = 0;; n++) {
		arch_store_relaxed(&h->scan_want, 1);	/* a handler's wait clears it */
		if (arch_cmpxchg(&h->scan_lk, 0, HAK_SCAN_OWNER) == 0)
			break;
		enter_waits++;
		barrier();
		h->depth = 0;
		barrier();
		__hak_os_backoff(n);
		barrier();
		h->depth = 1;
		barrier();
		enter_waits--;
	}
	arch_store_relaxed(&h->scan_want, 0);
}

static inline void heap_enter(struct hak_heap *h)
{
	if (h->depth++ == 0 && unlikely(arch_cmpxchg(&h->scan_lk, 0, HAK_SCAN_OWNER) != 0))
		heap_enter_wait(h);
}

static inline void heap_exit(struct hak_heap *h)
{
	if (--h->depth == 0)
		arch_store_release(&h->scan_lk, 0);
}

/* ---- double and invalid free reports ---- */

static void __noreturn __cold bad_block(const void *p, unsigned c, const char *what)
{
	if (c < HAK_NCLASS)
		__hak_report("%s of %p (class %u, %u bytes)", what, p, c,
			     (unsigned)__hak_class_size[c]);
	else
		__hak_report("%s of %p", what, p);
	abort();
}

void __hak_free_misaligned(void *p, uintptr_t ix)
{
	unsigned c = (unsigned)(ix / 4);

	/* The fixed page map's index wrapped (lib/superslab.h): not ours. */
	if ((uintptr_t)p & HAK_MASK_HIGH)
		__hak_bad_free(p, "not allocated by hakmem");
	bad_block(p, c, "invalid free (not a block boundary: interior or unaligned pointer)");
}

static void *remote_top(const struct hak_slab *s);
static bool run_holds(const void *p, unsigned c);

/*
 * Is p among the first limit blocks of the list from head? The link of the
 * limit-th block is never read: a run's tail (below) is not linked until
 * the run is sent home, so its first word is still the program's data
 * (and the walk used to go one block further: it followed that word, a
 * SEGV, or with the hardened box a "corrupted free-list link" abort,
 * whenever the owner confirmed a free that carried the free mark while
 * its thread held a run of that class).
 */
static bool on_list(void *head, const void *p, uint32_t limit)
{
	void *q = head;
	uint32_t n;

	for (n = 0; q && n < limit; n++) {
		if (q == p)
			return true;
		if (n + 1 < limit)
			q = __hak_link(q);
	}
	return false;
}

/* Report p (class c) as what (the check) and where it was found. */
static void __noreturn __cold bad_block_at(const void *p, unsigned c, const char *what,
					   const char *where)
{
	__hak_report("%s (%s) of %p (class %u, %u bytes)", what, where, p, c,
		     (unsigned)__hak_class_size[c]);
	abort();
}

/*
 * Owner-side confirmation: report p (of slab s, class c, owned by h) if it
 * sits in h's thread's bin (when mine), its slab's free list or its remote
 * list, or was never carved; return when it is a live block. use: NULL for
 * a free ("double free", "invalid free"), else the check that asked (a
 * realloc or usable size of p, __hak_use_confirm), which the report names.
 */
static void confirm_owned(struct hak_heap *h, struct hak_slab *s, const void *p,
			  unsigned c, bool mine, const char *use)
{
	struct hak_tbin *b = &__hak_tc.bins[c];
	uintptr_t first = __hak_slab_block(s, 0);
	const char *dbl = use ? use : "double free";

	if (mine && on_list(b->head, p, __hak_tbin_count(b)))
		bad_block_at(p, c, dbl, "block in the thread cache");
	if (mine && run_holds(p, c))
		bad_block_at(p, c, dbl, "block on its way home");
	if (on_list(h->kept[c].head, p, h->kept[c].n))
		bad_block_at(p, c, dbl, "block in an exited thread's cache");
	if (s->owner != h)
		return;
	if ((uintptr_t)p >= first + (uintptr_t)s->carved * __hak_class_stride(c))
		bad_block_at(p, c, use ? use : "invalid free", "block never allocated");
	if (on_list(s->free, p, s->carved))
		bad_block_at(p, c, dbl, "block in its slab's free list");
	if (on_list(remote_top(s), p, s->carved))
		bad_block_at(p, c, dbl, "block in its slab's remote-free list");
}

/*
 * realloc or malloc_usable_size of small block p (class c), whose mark
 * word holds the free key (alloc.c, small_usable): reported as what if p
 * is free where this thread can look, as a free confirms one (its bins,
 * its heap's kept bins, and for a block of its heap the slab's lists);
 * otherwise a live block that holds the key's value, or a free one in
 * another thread's cache, which is answered as a live block: its usable
 * size, the class's.
 */
size_t __hak_use_confirm(const void *p, unsigned c, const char *what)
{
	struct hak_heap *h = __hak_tc.heap;
	struct hak_tbin *b = &__hak_tc.bins[c];

	if (on_list(b->head, p, __hak_tbin_count(b)))
		bad_block_at(p, c, what, "block in the thread cache");
	if (h) {
		heap_enter(h);
		confirm_owned(h, __hak_slab_head(__hak_page_of((uintptr_t)p)), p, c, true, what);
		heap_exit(h);
	}
	return __hak_class_size[c];
}

static void local_free(struct hak_heap *h, struct hak_slab *s, void *p);

/*
 * May a free block of h's slabs sit in another thread's cache, the depot
 * or another heap's kept bins (where h's thread cannot look)?
 */
static bool heap_lent(const struct hak_heap *h)
{
	return arch_load_relaxed(&h->lent) || arch_load_relaxed(&tags_shared);
}

static bool depot_holds(unsigned c, const void *p);
static void park_suspect(void *p, unsigned c);

/*
 * Settle the parked blocks (h attached to us when mine): any of them in
 * our bins or h's kept bins is reported; h's own are confirmed and, unless
 * h lent blocks to other caches, freed.
 */
static void settle_suspects(struct hak_heap *h, bool mine)
{
	unsigned i;

	for (i = 0; i < HAK_SUSPECTS; i++) {
		void *p = arch_load_acquire(&suspects[i]);
		struct hak_slab *s;
		unsigned c;

		if (!p)
			continue;
		s = __hak_slab_head(__hak_page_of((uintptr_t)p));
		c = s->class_idx;
		/* the bin and kept walks of confirm_owned, for any owner */
		confirm_owned(h, s, p, c, mine, NULL);
		if (s->owner != h)
			continue;
		if (heap_lent(h)) {
			if (depot_holds(c, p))
				bad_block(p, c, "double free (block in the depot)");
			continue;	/* stays parked */
		}
		/*
		 * Not on any list now. Live when it was parked, it would
		 * still hold the key: nothing writes a parked block. Without
		 * it, the block was free when parked and has been handed out
		 * since (the pop clears the mark), or written after its free:
		 * the parked free was a double free. Freed here, it went to
		 * the cache under its new holder and was served twice (rv36:
		 * free(p); another thread frees p; malloc() == p).
		 */
		if (hak_ff_level() < 2 && hak_vg_mark(p) != __hak_free_key())
			bad_block_at(p, c, "double free",
				     "freed by another thread while free, handed out since");
		if (arch_cmpxchg(&suspects[i], p, NULL) != p)
			continue;
		arch_fetch_add(&nr_suspects, -1u);
		/* a live block that held the mark's value: free it now */
		hak_vg_set_mark(p, __hak_free_key());
		local_free(h, s, p);
	}
}

static inline void settle_if_any(struct hak_heap *h, bool mine)
{
	if (unlikely(arch_load_relaxed(&nr_suspects)))
		settle_suspects(h, mine);
}

void __hak_free_confirm(void *p, uintptr_t ix)
{
	unsigned c = (unsigned)(ix / 4);
	struct hak_heap *h = __hak_tc.heap;
	struct hak_tbin *b = &__hak_tc.bins[c];

	if (c < HAK_NCLASS) {
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)p));

		if (on_list(b->head, p, __hak_tbin_count(b)))
			bad_block(p, c, "double free (block in the thread cache)");
		if (h) {
			heap_enter(h);
			confirm_owned(h, s, p, c, true, NULL);
			heap_exit(h);
		}
		/*
		 * Not found, but it may sit in the cache of a thread that
		 * cached this heap's blocks: only that thread can tell.
		 */
		if (heap_lent(s->owner)) {
			park_suspect(p, c);
			return;
		}
	}
	/* a live block that held the mark's value: the rest of the push */
	if (hak_ff_level())
		hak_ff_on_free(p, c);
	__hak_zero_freed(p, c);
	hak_vg_free(p);	/* the mark is in place already */
	if (b->room-- == 0) {
		__hak_tcache_overflow(p, ix);	/* room taken for p */
		return;
	}
	__hak_set_link(p, b->head);
	b->head = p;
}

/*
 * Park p (class c), freed with the free mark where it cannot be confirmed,
 * for its owner and the other threads' slow paths. A block parked already
 * was freed twice after it left circulation: report it.
 */
static void park_suspect(void *p, unsigned c)
{
	unsigned i;

	for (i = 0; i < HAK_SUSPECTS; i++)
		if (arch_load_relaxed(&suspects[i]) == p)
			bad_block(p, c, "double free (block already freed by another thread)");
	arch_fetch_add(&nr_suspects, 1u);
	for (i = 0; i < HAK_SUSPECTS; i++)
		if (!arch_load_relaxed(&suspects[i]) && !arch_cmpxchg(&suspects[i], NULL, p))
			return;
	arch_fetch_add(&nr_suspects, -1u);	/* full: p stays out of circulation */
}

/* ---- partial list (owner only) ---- */

static void partial_add(struct hak_heap *h, struct hak_slab *s)
{
	unsigned c = s->class_idx;

	s->prev = NULL;
	s->next = h->partial[c];
	if (s->next)
		s->next->prev = s;
	h->partial[c] = s;
	s->flags |= HAK_SLAB_PARTIAL;
}

static void partial_del(struct hak_heap *h, struct hak_slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		h->partial[s->class_idx] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->flags &= ~HAK_SLAB_PARTIAL;
}

/*
 * Give the empty slab s of h back to its superslab: false when it stays
 * h's (an empty slab on its class's list). The decay pass's scan of another
 * heap (scanning_here) never waits for the superslab lock: a fork in a
 * signal handler that interrupted that lock's holder waits for the scan to
 * end (__hak_heap_fork_prepare), and the holder cannot let go before its
 * handler returns; so the scan keeps the slab for a later release instead.
 */
static bool slab_give_back(struct hak_heap *h, struct hak_slab *s)
{
	partial_del(h, s);
	if (!scanning_here) {
		__hak_span_free(s);
	} else if (!__hak_span_free_try(s)) {
		/* at the list's head: a walk that saved s->next goes on from there */
		partial_add(h, s);
		return false;
	}
	HAK_STAT_ADD(h, slabs_released, 1);
	return true;
}

/*
 * ---- spare slabs ----
 *
 * An empty slab past the one its class keeps waits on h->spare, for any
 * class of its span, instead of going back to its superslab at once: a
 * program whose phases use different classes (size-chain's chains) had
 * each emptied slab go back under ss_lock, with the purge clock read, and
 * the next phase's classes take the same pages again through ss_pick and
 * a refill. At most HAK_SPARE_PAGES pages (heap.h); one that sat through
 * a whole idle-bin check (an eighth of the purge delay) goes back at the
 * next, as do all of an idle heap's at the decay pass, so the superslab's
 * decay purges their pages about as soon as if they had gone back at once.
 * Not hardened: its slabs carry a guard page sized by the class. Only
 * with free-list sharding on (__hak_shard_min, below), whose chains freed
 * whole empty slab after slab: without it a heap empties few (size-chain:
 * 3 released a run), and a heap's spares sit outside the dirty limit
 * (idle-rss's peak, as xm14's spares found: design.md).
 */
static inline uint64_t slab_parked(const struct hak_slab *s);

static bool spare_put(struct hak_heap *h, struct hak_slab *s)
{
	if (arch_load_relaxed(&__hak_shard_min) == UINT32_MAX || h->nspare + s->span > HAK_SPARE_PAGES ||
	    hak_hd_on() || slab_parked(s) || (s->flags & HAK_SLAB_GUARDED))
		return false;
	partial_del(h, s);
	s->flags &= ~(HAK_SLAB_SCANNED | HAK_SLAB_IDLE_MASK);
	s->next = h->spare;
	h->spare = s;
	h->nspare += s->span;
	return true;
}

/* A spare slab of class c's span, formatted for c and on no list; or NULL. */
static struct hak_slab *spare_take(struct hak_heap *h, unsigned c)
{
	struct hak_slab **pp, *s;

	for (pp = &h->spare; (s = *pp); pp = &s->next) {
		if (s->span != __hak_class_span[c])
			continue;
		*pp = s->next;
		h->nspare -= s->span;
		__hak_span_reclass(s, h->tag, c);
		return s;
	}
	return NULL;
}

/*
 * Give back the spare slabs (all: every one, else those that sat through
 * the last pass); those the superslab lock keeps (a scan's try) stay.
 */
static void spare_release(struct hak_heap *h, bool all)
{
	struct hak_slab **pp = &h->spare, *s;

	while ((s = *pp)) {
		unsigned span = s->span;	/* 0 once given back */

		if (!all && !(s->flags & HAK_SLAB_IDLE1)) {
			s->flags |= HAK_SLAB_IDLE1;
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->next = NULL;
		if (!scanning_here) {
			__hak_span_free(s);
		} else if (!__hak_span_free_try(s)) {
			s->next = *pp;
			*pp = s;
			pp = &s->next;
			continue;
		}
		h->nspare -= span;
		HAK_STAT_ADD(h, slabs_released, 1);
	}
}

/* s just reached used == 0: keep it for reuse or give it back. */
static void slab_emptied(struct hak_heap *h, struct hak_slab *s)
{
	unsigned c = s->class_idx;

	if (h->nempty[c] < HAK_KEEP_EMPTY || (!spare_put(h, s) && !slab_give_back(h, s)))
		h->nempty[c]++;
}

/* Give every empty slab of h back (thread exit, trim, a pooled heap's decay). */
static void release_empty(struct hak_heap *h)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		struct hak_slab *s = h->partial[c], *next;
		unsigned kept = 0;

		for (; s; s = next) {
			next = s->next;
			if (!s->used && !slab_give_back(h, s))
				kept++;
		}
		h->nempty[c] = kept;
	}
	spare_release(h, true);
}

/* ---- remote free ---- */

/* The packed remote-stack word: count | top << 16 | bottom << 32. */
#define HAK_RW_COUNT(w)		((uint32_t)((w) & 0xffff))
#define HAK_RW_TOP(w)		((uint32_t)(((w) >> 16) & 0xffff))
#define HAK_RW_BOTTOM(w)	((uint32_t)(((w) >> 32) & 0xffff))
#define HAK_RW_UNIT_SHIFT	4

HAK_BUILD_BUG_ON((4 * HAK_PAGE_SIZE) >> HAK_RW_UNIT_SHIFT > 0x10000);

/* The address of the first page of slab s. */
static inline uintptr_t slab_base(const struct hak_slab *s)
{
	return ((uintptr_t)s & ~(HAK_SS_SIZE - 1)) +
	       ((uintptr_t)__hak_slab_index(s) << HAK_PAGE_SHIFT);
}

static inline uint64_t rw_off(uintptr_t base, const void *p)
{
	return ((uintptr_t)p - base) >> HAK_RW_UNIT_SHIFT;
}

static inline void *rw_ptr(uintptr_t base, uint32_t off)
{
	return (void *)(base + ((uintptr_t)off << HAK_RW_UNIT_SHIFT));
}

/* The top block of the remote stack of s (NULL when empty), for walks. */
static void *remote_top(const struct hak_slab *s)
{
	uint64_t w = arch_load_acquire(&s->remote);

	return HAK_RW_COUNT(w) ? rw_ptr(slab_base(s), HAK_RW_TOP(w)) : NULL;
}

/*
 * Push slab s onto its owner's pending stack (step 2 below), and flag the
 * pool when the owner is pooled: its slabs may then be reclaimable.
 */
static void pending_push(struct hak_slab *s)
{
	struct hak_heap *owner = s->owner;
	struct hak_slab *top, *was;

	if (!arch_load_relaxed(&owner->attached) && !arch_load_relaxed(&pool_dirty))
		arch_store_relaxed(&pool_dirty, 1);
	top = arch_load_relaxed(&owner->pending);
	for (;;) {
		s->pending_next = top;
		was = arch_cmpxchg(&owner->pending, top, s);
		if (was == top)
			break;
		top = was;
	}
}

/*
 * Step 2 runs only after step 1 succeeded, so a thread caught by a fork
 * between the two leaves the child a slab with remote blocks on no
 * pending stack, which later pushes (seeing remote non-empty) never push
 * either. The pusher names the slab in its heap (h->pushing) from before
 * step 1 to after step 2; the child finishes the push for the threads
 * that are not there (fork_child_pushes). The release of each cmpxchg
 * keeps the first store before step 1. The clear is a release of its own:
 * the cmpxchg's acquire orders what follows after its load, not after its
 * store, so a relaxed clear could be seen before step 2 (C11; an LL/SC
 * arch), and a child that saw it so would keep the leak. A plain mov on
 * x86_64 either way. The clear comes after step 2, so the name outlives
 * the push for a moment: the child checks that the slab is still live.
 */
void __hak_remote_push(struct hak_slab *s, void *head, void *tail, uint32_t n)
{
	uintptr_t base = slab_base(s);
	struct hak_heap *me = __hak_tc.heap;
	uint64_t old, seen, w;

	if (me)
		arch_store_relaxed(&me->pushing, s);
	old = arch_load_relaxed(&s->remote);
	for (;;) {
		if (HAK_RW_COUNT(old)) {
			__hak_set_link(tail, rw_ptr(base, HAK_RW_TOP(old)));
			w = (HAK_RW_COUNT(old) + n) | rw_off(base, head) << 16 |
			    (uint64_t)HAK_RW_BOTTOM(old) << 32;
		} else {
			__hak_set_link(tail, NULL);
			w = n | rw_off(base, head) << 16 | rw_off(base, tail) << 32;
		}
		seen = arch_cmpxchg(&s->remote, old, w);
		if (seen == old)
			break;
		old = seen;
	}
	if (!HAK_RW_COUNT(old))	/* else s is already on its owner's pending stack */
		pending_push(s);
	if (me)
		arch_store_release(&me->pushing, NULL);
}

/*
 * Merge every pending slab's remote frees into its local free list. A
 * refill of class c passes its list and room: a whole chain of class c
 * that fits goes straight onto the list instead, without a block being
 * read (the blocks stay counted in used: they go from one holder to
 * another). Returns the blocks put on *list.
 */
static uint32_t collect_pending(struct hak_heap *h, unsigned c, void **list, uint32_t room)
{
	struct hak_slab *s, *next;
	uint32_t moved = 0;

	s = arch_xchg(&h->pending, NULL);
	for (; s; s = next) {
		uintptr_t base = slab_base(s);
		void *chain, *tail;
		uint64_t w;
		uint32_t n;

		next = s->pending_next;
		w = arch_xchg(&s->remote, 0);
		n = HAK_RW_COUNT(w);
		chain = rw_ptr(base, HAK_RW_TOP(w));
		tail = rw_ptr(base, HAK_RW_BOTTOM(w));
		HAK_STAT_ADD(h, remote_collected, n);
		if (s->class_idx == c && n <= room - moved && !hak_ff_level()) {
			__hak_set_link(tail, *list);
			*list = chain;
			moved += n;
			s->flags &= ~(HAK_SLAB_SCANNED | HAK_SLAB_IDLE_MASK);
			continue;
		}
		__hak_set_link(tail, s->free);
		s->free = chain;
		if (hak_ff_level() && unlikely(n > s->used))
			hak_ff_fail(chain, s->class_idx, "slab used counter underflow (remote)");
		s->used -= n;
		s->flags &= ~(HAK_SLAB_SCANNED | HAK_SLAB_IDLE_MASK);
		HAK_STAT_ADD(h, bytes_out, -(uint64_t)n * __hak_class_size[s->class_idx]);
		if (!(s->flags & HAK_SLAB_PARTIAL))
			partial_add(h, s);
		if (s->used == 0)
			slab_emptied(h, s);
	}
	return moved;
}

/* Merge every pending slab's remote frees (a load when there is none). */
static inline void collect_all(struct hak_heap *h)
{
	void *none = NULL;

	if (arch_load_relaxed(&h->pending))
		collect_pending(h, HAK_NCLASS, &none, 0);
}

/* ---- local free ---- */

/*
 * Put the chain head..tail of n blocks of h's slab s back on its free list
 * (one splice: the chain's links are already in place). Counters only: the
 * caller accounts bytes_out.
 */
static inline void local_free_run(struct hak_heap *h, struct hak_slab *s, void *head,
				  void *tail, uint32_t n)
{
	if (hak_ff_level() && unlikely(n > s->used))
		hak_ff_fail(head, s->class_idx, "slab used counter underflow");
	__hak_set_link(tail, s->free);
	s->free = head;
	s->used -= n;
	s->flags &= ~(HAK_SLAB_SCANNED | HAK_SLAB_IDLE_MASK);
	if (!(s->flags & HAK_SLAB_PARTIAL))
		partial_add(h, s);
	if (s->used == 0)
		slab_emptied(h, s);
}

static void local_free(struct hak_heap *h, struct hak_slab *s, void *p)
{
	/* read before: an emptied slab given back is another class's after */
	unsigned c = s->class_idx;

	local_free_run(h, s, p, p, 1);
	HAK_STAT_ADD(h, bytes_out, -(uint64_t)__hak_class_size[c]);
}

/* ---- runs of blocks going home (__hak_free_remote) ---- */

/*
 * A free of another heap's block links it onto this thread's run of its
 * class; the run is one slab's blocks, sent home with one splice onto the
 * slab's remote stack (__hak_remote_push) when a block of another slab of
 * the class comes, when it holds HAK_RUN_MAX blocks, and at this thread's
 * refills, overflows, hand-over, exit and flush_self. The blocks of a run
 * carry the free mark and stay counted in their slab's used, like blocks
 * on the remote stack: the slab is not released while one sits here.
 * A run is never served here, only sent home (no false sharing).
 */
#ifndef HAK_RUN_MAX
#define HAK_RUN_MAX	16
#endif
#ifndef HAK_RUN_BYTES
#define HAK_RUN_BYTES	4096
#endif

/*
 * s is NULL while the run is empty, so run_add() tests one word; left
 * counts down to the send, and the run holds lim - left blocks. lim
 * depends on the class only: worked out at the class's first run and
 * kept (the division, a DIV per run, was the most of what starting one
 * cost beyond sending the last).
 */
struct hak_run {
	struct hak_slab *s;
	void *head, *tail;
	uint32_t left;		/* blocks it takes before it goes home */
	uint32_t lim;		/* blocks a run of the class holds; 0: not known yet */
};

static __thread struct hak_run runs[HAK_NCLASS] __attribute__((tls_model("initial-exec")));
/* bit i: runs[i] holds blocks */
static __thread uint64_t runs_held __attribute__((tls_model("initial-exec")));

HAK_BUILD_BUG_ON(HAK_NCLASS > 64);

/*
 * The run of class c as run_add() addresses it: relative to the thread
 * pointer, one operand per field (asm/tls.h), where &runs[c] took
 * %fs:0, the GOT's offset and two ADDs, twice (9 instructions a block
 * with the LEA for the calls' argument, which now take c).
 */
typedef struct hak_run ARCH_TLS_SEG hak_run_tls;

static __always_inline hak_run_tls *run_tls(unsigned c)
{
	return (hak_run_tls *)(arch_tls_off(runs) + (uintptr_t)c * sizeof(struct hak_run));
}

/* The push last, a tail call (no register to save around it). */
static void run_send(struct hak_run *r)
{
	struct hak_slab *s = r->s;

	r->s = NULL;
	runs_held &= ~(1ull << (r - runs));
	__hak_remote_push(s, r->head, r->tail, r->lim - r->left);
}

/* Send every run home (this thread's slow paths, exit, hand-over). */
static void runs_send_all(void)
{
	while (runs_held)
		run_send(&runs[__builtin_ctzll(runs_held)]);
}

static inline void runs_send_any(void)
{
	if (unlikely(runs_held))
		runs_send_all();
}

/* Does this thread's run of class c hold p? */
static bool run_holds(const void *p, unsigned c)
{
	struct hak_run *r;

	if (c >= HAK_NCLASS)
		return false;
	r = &runs[c];
	return r->s && on_list(r->head, p, r->lim - r->left);
}

/*
 * p (class c) starts this thread's run of slab s, after the run's blocks
 * of another slab went home. Out of line, like run_full(), so that the
 * common case of run_add() makes no call and __hak_free_remote saves no
 * register (callgrind: 16 instructions of its 79 per block were the
 * saves and restores; Documentation/benchmarks.md, "producer-consumer:
 * pinned pairs").
 */
static void run_start(unsigned c, struct hak_slab *s, void *p) __noinline;

/* the run of class c is full: send it home (a tail call of run_add()) */
static void run_full(unsigned c) __noinline;

static void run_full(unsigned c)
{
	hak_run_tls *r = run_tls(c);
	struct hak_slab *s = r->s;

	r->s = NULL;
	runs_held &= ~(1ull << c);
	__hak_remote_push(s, r->head, r->tail, r->lim);	/* left is 0 */
}

/* p, of slab s (class c, another heap's), goes home in this thread's run. */
static __always_inline void run_add(struct hak_slab *s, void *p, unsigned c)
{
	hak_run_tls *r = run_tls(c);

	if (likely(r->s == s)) {
		__hak_set_link(p, r->head);
		r->head = p;
		if (unlikely(--r->left == 0))
			run_full(c);
		return;
	}
	run_start(c, s, p);
}

static void run_start(unsigned c, struct hak_slab *s, void *p)
{
	hak_run_tls *r = run_tls(c);
	struct hak_slab *old = r->s;
	void *head = r->head, *tail = r->tail;
	uint32_t lim = r->lim, n = lim - r->left;

	if (unlikely(!lim)) {
		lim = HAK_RUN_BYTES / __hak_class_size[c];
		lim = lim < 1 ? 1 : lim < HAK_RUN_MAX ? lim : HAK_RUN_MAX;
		r->lim = lim;
	}
	if (lim < 2) {
		/* no run of this class ever started: nothing to send first */
		__hak_remote_push(s, p, p, 1);
		return;
	}
	/*
	 * The owner cannot see this run: a second free of p by its thread
	 * must park p rather than take the mark for a live block's value.
	 */
	if (!arch_load_relaxed(&s->owner->lent))
		arch_store_relaxed(&s->owner->lent, 1);
	r->s = s;
	r->head = r->tail = p;
	r->left = lim - 1;
	/*
	 * The run it replaces goes home last, a tail call: a call in the
	 * middle made this function save and restore six registers, 12 of
	 * the 52 instructions it took (callgrind, producer-consumer).
	 */
	if (old)
		__hak_remote_push(old, head, tail, n);
	else
		runs_held |= 1ull << c;
}

/*
 * Idle-owner detection (__hak_free_remote): this thread's view. An owner is
 * idle after HAK_IDLE_FREES frees to it with no refill of its own, if its
 * last purge tick (h->active_ms: any slow path of its thread once the
 * coarse clock moved) is HAK_IDLE_MS older than this thread's own
 * (__hak_tick_ms; no clock read here). The count alone took a busy owner
 * for idle whenever another thread freed 256 of its blocks in a row while
 * its bins were full enough to need no refill (a structure handed to
 * another thread and dropped whole), and that thread cached them in bins
 * of classes it was not using: size-chain with half of each chain handed
 * to the next thread, 2 threads, had its peak RSS grow through the run
 * to 28 MB at 0.39 s of CPU, 22 MB and 0.29 s with the blocks sent home
 * (Documentation/benchmarks.md, "Workloads outside the suite, again"). A
 * sleeping owner (larson's main thread) ticks no more, and is idle at the
 * 256th free as before. With time-based purging off
 * (HAKMEM_PURGE_DELAY_MS=0) nothing writes active_ms: the count decides,
 * once this thread has ticked 10 ms into the run. A freer whose own last
 * tick is not 10 ms past the owner's (one that only frees) finds no owner
 * idle until its next slow path: every block goes home meanwhile, as
 * under the watch before (rv21b: 200,000 frees of a sleeping owner's
 * blocks, none cached; after one slow path of the freer, all of them).
 */
#define HAK_IDLE_FREES	256
#define HAK_IDLE_MS	10

static __thread struct hak_heap *rf_owner __attribute__((tls_model("initial-exec")));
static __thread uint64_t rf_refills __attribute__((tls_model("initial-exec")));
static __thread uint32_t rf_same __attribute__((tls_model("initial-exec")));
/*
 * The tag of rf_owner while it counts as idle, 0 otherwise: a free of a
 * block with that tag is cached at once (__hak_free_slow, lib/alloc.c).
 * Cleared at this thread's refills and overflows, so an owner that went
 * back to work is seen at the next of them (owner_idle() then reads its
 * refill count).
 */
HAK_HIDDEN __thread uint32_t __hak_rf_tag __attribute__((tls_model("initial-exec")));

/*
 * Set __hak_rf_tag and its form for __hak_free_slow (rfx, tcache.h): the
 * owner byte the fast path hands that function for a block of that tag,
 * tag xor this thread's tag byte. Also after tagx changes. A tag equal to
 * ours gives 0, which no block comes with (the fast path takes those as
 * ours): none then, so a pointer outside the map (ex 0) never matches.
 */
static void rf_tag_set(uint32_t tag)
{
	uint32_t x = (tag ^ (__hak_tc.tagx >> 8)) & 0xff;

	__hak_rf_tag = tag;
	__hak_tc.rfx = tag && x ? x : HAK_RFX_NONE;
}

/*
 * Heap hand-over (heap_handover(), below): frees of pooled heaps' blocks
 * this thread lets pass before it tries again after a failed try.
 */
static __thread uint32_t handover_skip __attribute__((tls_model("initial-exec")));
static bool heap_handover(struct hak_tcache *tc, struct hak_heap *to) __noinline;

/* Is o the owner this thread found idle, still without a refill since? */
static inline bool owner_seen_idle(const struct hak_heap *o)
{
	return o == rf_owner && rf_same >= HAK_IDLE_FREES &&
	       arch_load_relaxed(&o->stats.refills) == rf_refills;
}

/*
 * The depot: per class, a few batches of blocks of idle owners' slabs
 * that a thread's cache overflowed. Sending them home would lose them:
 * an owner that does not allocate never collects its remote frees (larson's
 * main thread, which filled every lane's table and sleeps), so each lane
 * carved fresh memory for what it sent there, and needed caches of
 * thousands of blocks per class to keep the owner's blocks in circulation.
 * A refill that finds no free block in its own slabs takes a batch here
 * before it takes new pages. Blocks in the depot count as out in their
 * slab's used, exactly as in a thread cache, and carry the free mark
 * (a double free of one is parked for the owner, never freed twice).
 *
 * The depot is only ever try-locked: a thread that finds it busy or full
 * sends the blocks home, and a refill that finds it busy carves, so it
 * never waits and needs no fork handling (a child that inherits it busy
 * just does without it). Trim sends everything in it home.
 */
#define HAK_DEPOT_SLOTS		8
#define HAK_DEPOT_BATCH_BYTES	(256u << 10)

struct depot_batch {
	void *head, *tail;
	uint32_t n;
};

static struct depot {
	int busy;			/* try-lock */
	unsigned nr;			/* batches; read unlocked as a hint */
	struct depot_batch b[HAK_DEPOT_SLOTS];
} __aligned(64) depot[HAK_NCLASS];

/*
 * atomic, never cleared: a batch was ever put. Until then a refill or a
 * check does not read depot[c].nr: its 10 KiB span three pages that a
 * program which never puts a batch (one thread) faulted in at start,
 * reading them (Documentation/benchmarks.md, "Process start").
 */
static int depot_used __boot_once;

static inline bool depot_trylock(struct depot *d)
{
	return !arch_load_relaxed(&d->busy) && !arch_xchg(&d->busy, 1);
}

static inline void depot_unlock(struct depot *d)
{
	arch_store_release(&d->busy, 0);
}

static bool depot_put(unsigned c, void *head, void *tail, uint32_t n)
{
	struct depot *d = &depot[c];
	unsigned nr;

	if ((size_t)n * __hak_class_size[c] > HAK_DEPOT_BATCH_BYTES ||
	    arch_load_relaxed(&d->nr) == HAK_DEPOT_SLOTS || !depot_trylock(d))
		return false;
	nr = d->nr;
	if (nr < HAK_DEPOT_SLOTS) {
		d->b[nr] = (struct depot_batch){ head, tail, n };
		arch_store_relaxed(&d->nr, nr + 1);
		if (!arch_load_relaxed(&depot_used))
			arch_store_relaxed(&depot_used, 1);
	}
	depot_unlock(d);
	return nr < HAK_DEPOT_SLOTS;
}

/* Link a batch of class c of at most room blocks onto *list; its size. */
static uint32_t depot_take(unsigned c, void **list, uint32_t room)
{
	struct depot *d = &depot[c];
	struct depot_batch bt = { NULL, NULL, 0 };
	unsigned i;

	if (!arch_load_relaxed(&depot_used) || !arch_load_relaxed(&d->nr) || !depot_trylock(d))
		return 0;
	for (i = d->nr; i--;) {
		if (d->b[i].n > room)
			continue;
		bt = d->b[i];
		d->b[i] = d->b[d->nr - 1];
		arch_store_relaxed(&d->nr, d->nr - 1);
		break;
	}
	depot_unlock(d);
	if (!bt.n)
		return 0;
	__hak_set_link(bt.tail, *list);
	*list = bt.head;
	return bt.n;
}

/* Is p in a batch of class c in the depot (when it is free to look)? */
static bool depot_holds(unsigned c, const void *p)
{
	struct depot *d = &depot[c];
	bool found = false;
	unsigned i;

	if (!arch_load_relaxed(&depot_used) || !arch_load_relaxed(&d->nr) || !depot_trylock(d))
		return false;
	for (i = 0; i < d->nr && !found; i++)
		found = on_list(d->b[i].head, p, d->b[i].n);
	depot_unlock(d);
	return found;
}

static void flush_list_home(struct hak_heap *h, void *p, bool depot_ok);

/* Trim: send every batch in the depot home. */
static void depot_drain(struct hak_heap *h)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		void *list = NULL;

		while (depot_take(c, &list, UINT32_MAX))
			;
		flush_list_home(h, list, false);
	}
}

/*
 * Return a list of blocks (any slabs, one class) to their slabs: our own
 * slabs directly, other heaps' slabs through their remote lists, batching
 * runs of blocks that share a slab into one atomic push; blocks of an
 * owner this thread found idle go to the depot (when depot_ok) instead.
 */
static void flush_list_home(struct hak_heap *h, void *p, bool depot_ok)
{
	void *ihead = NULL, *itail = NULL;
	uint32_t in = 0;
	unsigned ic = 0;
	uint64_t local_bytes = 0;

	if (hak_ff_level())
		depot_ok = false;
	while (p) {
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)p));
		void *next = __hak_link(p);

		if (s->owner == h) {
			/*
			 * The run of blocks of this slab that follow goes back
			 * in one splice: a bin's blocks mostly come from one
			 * slab in a row (a refill takes them so), and the bin's
			 * own links already chain them, so each block costs a
			 * link read and a slab compare, not a whole free.
			 */
			uintptr_t lo = slab_base(s), len = (uintptr_t)s->span << HAK_PAGE_SHIFT;
			void *tail = p;
			uint32_t n = 1;

			/* In s's pages (NULL wraps to above len). */
			while ((uintptr_t)next - lo < len) {
				tail = next;
				next = __hak_link(next);
				n++;
			}
			local_bytes += (uint64_t)n * __hak_class_size[s->class_idx];
			local_free_run(h, s, p, tail, n);
			p = next;
			continue;
		}
		if (depot_ok && owner_seen_idle(s->owner)) {
			__hak_set_link(p, ihead);
			ihead = p;
			if (!itail)
				itail = p;
			in++;
			ic = s->class_idx;
			p = next;
			continue;
		}
		{
			void *tail = p;
			uint32_t n = 1;

			/*
			 * Blocks cached here (an idle owner's, or a tag
			 * collision's) already carry the free key, which is
			 * every heap's mark: a later double free of one, by
			 * any thread, is parked for the owner to confirm.
			 */
			while (next && __hak_slab_head(__hak_page_of((uintptr_t)next)) == s) {
				tail = next;
				next = __hak_link(next);
				n++;
			}
			HAK_STAT_ADD(h, remote_frees, n);
			__hak_remote_push(s, p, tail, n);
		}
		p = next;
	}
	if (local_bytes)
		HAK_STAT_ADD(h, bytes_out, -local_bytes);
	if (in && !depot_put(ic, ihead, itail, in))
		flush_list_home(h, ihead, false);
}

static inline void flush_list(struct hak_heap *h, void *p)
{
	flush_list_home(h, p, true);
}

/* Flush bin c down to keep blocks (the most recently freed stay). */
static void bin_trim(struct hak_heap *h, struct hak_tbin *b, uint32_t keep)
{
	void *cut, *rest;
	uint32_t i;

	if (__hak_tbin_count(b) <= keep)
		return;
	HAK_STAT_ADD(h, blocks_flushed, __hak_tbin_count(b) - keep);
	if (keep == 0) {
		rest = b->head;
		b->head = NULL;
	} else {
		cut = b->head;
		for (i = 1; i < keep; i++)
			cut = __hak_link(cut);
		rest = __hak_link(cut);
		__hak_set_link(cut, NULL);
	}
	__hak_tbin_set_count(b, keep);
	flush_list(h, rest);
}

/*
 * The bin overflowed: send its n most recently freed blocks (n <= count)
 * to their slabs and keep the older ones. The newest blocks are the ones
 * still in the cache, so the cut and the walk home read hot links; trimming
 * to half the capacity read the cold older half (freed up to cap frees of
 * every class ago, long evicted when frees come in random order), twice,
 * and a miss each time (footprint: bin_trim + flush_list_home were a third
 * of the profile). A bin at its capacity serves malloc as well with old
 * blocks as with new ones; each spill takes HAK_SPILL blocks, so a run of
 * frees pays one slow call (and one scan-lock cmpxchg) per HAK_SPILL.
 */
#define HAK_SPILL	32

/*
 * Hardened: the list head (n <= HAK_SPILL blocks, NULL-terminated) relinked
 * in address order, falling or rising (spill_sorted: the way that makes
 * the run continue its slab's free list, which it goes in front of; else
 * the way the bin's order runs). The carve order is random 16 wide (above), so
 * a program that frees its blocks in the order it got them frees them
 * nearly, not exactly, in address order; the spill's run goes to the front
 * of its slab's free list, and a refill pops that list, one dependent load
 * per block. Out of order, every pop is a cache miss (footprint, CPU at
 * fixed work: 1.38-1.47x defconfig's with the 16-wide order alone,
 * 1.13-1.22x with this); in order, as the default build's lists come out
 * of the same program, the loads go down through memory and the hardware
 * fetches them ahead. The links are hot (the blocks were just freed):
 * each block goes into the slot of its place (below), and the slots are
 * read back in order; an insertion sort did it until 2026-12-03, with a
 * mispredicted branch at the end of every block's shifts (the 16-wide
 * order leaves each block up to 15 places out): the spill was 8% of
 * footprint's CPU samples, 4% with the slots, 2% in the default build
 * (Documentation/boxes/hardened.md).
 *
 * Only when the run is dense: blocks spread over more than
 * HAK_SPILL_SORT_SPAN bytes lie on different pages whatever their order,
 * so sorting them gives the refill's pops nothing to prefetch, and the
 * insertion sort of a run freed in random order (larson's: about 2,400
 * instructions a spill, a mispredicted branch per block) is pure cost. The
 * span costs a compare and two conditional moves per block, read on the
 * walk the cut makes anyway.
 */
#define HAK_SPILL_SORT_SPAN	(64UL << 10)

/*
 * Slots of the exact sort below: a spill whose span, in units of the
 * largest power of two not above the class's stride, is under this many
 * is put in order by placing each block at its unit (two blocks of one
 * class lie a stride apart at least, so no two share a unit) and reading
 * the occupied units back with a bit scan: two passes, no comparison
 * between blocks and no branch on them. A spill of blocks
 * freed in carve order spans about 48 strides (the 32 blocks and the 16
 * of the carve window); 1024 units cover the whole HAK_SPILL_SORT_SPAN
 * from 64 B blocks up, 16 KiB of 16 B blocks. A slot holds the block's
 * index in the spill (a byte), so the slots take 1 KiB of stack.
 */
#define HAK_SPILL_SLOTS		1024

static void *spill_insertion(void **a, uint32_t k, bool fall)
{
	void *p = NULL;
	uint32_t i, j;

	for (i = 1; i < k; i++) {
		void *q = a[i];

		for (j = i; j && (uintptr_t)a[j - 1] < (uintptr_t)q; j--)
			a[j] = a[j - 1];
		a[j] = q;
	}
	if (fall) {
		for (j = k; j--;) {
			__hak_set_link(a[j], p);
			p = a[j];
		}
	} else {
		for (j = 0; j < k; j++) {
			__hak_set_link(a[j], p);
			p = a[j];
		}
	}
	return p;
}

/*
 * Take bin b's n newest blocks (n <= HAK_SPILL) off it (h's bin) and
 * return them as a list in address order, falling or rising (below; as
 * they came when they span more than HAK_SPILL_SORT_SPAN); one walk, which
 * the cut needs anyway, also weighs the newer half against the older and
 * counts the steps down.
 */
static void *spill_sorted(struct hak_heap *h, struct hak_tbin *b, uint32_t n, unsigned c)
{
	void *a[HAK_SPILL], *p = b->head;
	uint8_t slot[HAK_SPILL_SLOTS];
	uint64_t used[HAK_SPILL_SLOTS / 64];
	uintptr_t lo = UINTPTR_MAX, hi = 0, top, newer = 0, older = 0, last = 0;
	unsigned sh = 63 - (unsigned)__builtin_clzll(__hak_class_stride(c));
	uint32_t k, w, falls = 0;
	bool fall;

	HAK_BUILD_BUG_ON(HAK_SPILL > 256);
	if (unlikely(!n))	/* never: a spill takes one block at least */
		return NULL;
	for (k = 0; k < n; k++) {
		uintptr_t q = (uintptr_t)p;

		p = __hak_link(p);
		a[k] = (void *)q;
		lo = q < lo ? q : lo;
		hi = q > hi ? q : hi;
		if (2 * k < n)
			newer += q >> 4;	/* no wrap: 32 addresses below 2^47 */
		else
			older += q >> 4;
		falls += q < last;	/* k == 0: not below 0 */
		last = q;
	}
	b->head = p;
	if (hi - lo > HAK_SPILL_SORT_SPAN) {
		__hak_set_link(a[n - 1], NULL);
		return a[0];
	}
	/*
	 * Which way: the run goes in front of its slab's free list
	 * (flush_list_home splices it), so it ends next to the list's head
	 * when that lies below the run (falling) or above it (rising). A
	 * program that frees in the order it allocated frees going up after
	 * a carve, and going down in its next sweep (handed out from lists
	 * that fall): always falling, that sweep's lists went down through a
	 * run and jumped 64 blocks up to the top of the next, a zigzag that
	 * the sweeps after inherit (footprint at fixed work: 4-7% of its
	 * CPU; Documentation/boxes/hardened.md, "The spill's direction").
	 * With no list, one inside the run or another heap's slab (its list
	 * is its owner's to read), the way the bin's order runs: falling
	 * when the newer half lies higher.
	 */
	fall = (n - n / 2) * older <= n / 2 * newer;	/* the halves' means */
	{
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)a[0]));

		if (s->owner == h && s->free)
			fall = (uintptr_t)s->free < lo ? true :
			       (uintptr_t)s->free > hi ? false : fall;
	}
	/*
	 * Already in that order: the cut alone, as in the default build.
	 * Blocks handed out from sorted runs come back so when the program
	 * frees them in the order it got them (footprint after its first
	 * sweep).
	 */
	if (falls == (fall ? n - 1 : 0)) {
		__hak_set_link(a[n - 1], NULL);
		return a[0];
	}
	top = (hi - lo) >> sh;
	if (top >= HAK_SPILL_SLOTS)
		return spill_insertion(a, n, fall);
	memset(used, 0, sizeof(used));
	for (k = 0; k < n; k++) {
		uintptr_t x = ((uintptr_t)a[k] - lo) >> sh;
		uint64_t bit = 1ULL << (x & 63);

		if (unlikely(used[x / 64] & bit))	/* cannot be: a unit holds one block */
			return spill_insertion(a, n, fall);
		used[x / 64] |= bit;
		slot[x] = (uint8_t)k;
	}
	p = NULL;
	if (fall) {
		/* lowest first, each in front: the head is the highest */
		for (w = 0; w <= top / 64; w++) {
			uint64_t m = used[w];

			while (m) {
				void *q = a[slot[w * 64 + (unsigned)__builtin_ctzll(m)]];

				m &= m - 1;
				__hak_set_link(q, p);
				p = q;
			}
		}
		return p;
	}
	/* highest first: the head is the lowest */
	for (w = (uint32_t)(top / 64) + 1; w--;) {
		uint64_t m = used[w];

		while (m) {
			unsigned bit = 63 - (unsigned)__builtin_clzll(m);
			void *q = a[slot[w * 64 + bit]];

			m &= ~(1ULL << bit);
			__hak_set_link(q, p);
			p = q;
		}
	}
	return p;
}

static void bin_spill(struct hak_heap *h, struct hak_tbin *b, unsigned c, uint32_t n)
{
	void *head = b->head, *cut = head;
	uint32_t i;

	if (hak_hd_on()) {
		head = spill_sorted(h, b, n, c);
	} else {
		for (i = 1; i < n; i++)
			cut = __hak_link(cut);
		b->head = __hak_link(cut);
		__hak_set_link(cut, NULL);
	}
	__hak_tbin_set_count(b, __hak_tbin_count(b) - n);
	HAK_STAT_ADD(h, blocks_flushed, n);
	flush_list(h, head);
}

/*
 * Send bin b's newest blocks home until it holds keep (the adaptive box's
 * shrink of a class gone idle). Cutting the oldest off instead, as
 * bin_trim does, walks the keep blocks that stay first, a cold link read
 * each (the class had been idle for two windows), on top of the read of
 * every block sent home: size-chain, whose classes go idle and come back
 * chain after chain, read 929k kept links to send 576k blocks home
 * (1,600 chains), bin_trim 8% of its CPU samples. The newest go in spills
 * of HAK_SPILL, each walked once for the cut and once, from the cache, by
 * the walk home (sorted first in the hardened build, as a spill's are);
 * the older blocks stay, as after an overflow.
 */
static void bin_shed(struct hak_heap *h, struct hak_tbin *b, unsigned c, uint32_t keep)
{
	while (__hak_tbin_count(b) > keep) {
		uint32_t n = __hak_tbin_count(b) - keep;

		bin_spill(h, b, c, n < HAK_SPILL ? n : HAK_SPILL);
	}
}

/* ---- refill ---- */

/* Cut the block at blk (class c) and put it on *list, marked free. */
static inline void carve_one(struct hak_heap *h, unsigned c, void **list,
			     uintptr_t blk, uintptr_t mark)
{
	if (HAK_HDR_SIZE)
		hak_hdr_write((void *)blk, c, h->tag);
	hak_vg_set_mark((void *)blk, mark);
	hak_vg_noaccess((void *)blk, __hak_class_size[c]);
	__hak_set_link((void *)blk, *list);
	*list = (void *)blk;
}

/*
 * Hardened: cut the next n blocks of s in a random order (the box's
 * hak_hd_carve_order: each a random one of the 16 lowest not yet cut).
 * idx[0] goes on *list last, so it is the first handed out: the blocks
 * come out going up through memory, 16 wide.
 */
static void carve_random(struct hak_heap *h, struct hak_slab *s, void **list,
			 uint32_t n, uintptr_t mark)
{
	uint16_t idx[HAK_HD_CARVE_MAX];
	unsigned c = s->class_idx;
	size_t stride = __hak_class_stride(c);
	uint32_t done, k, m;

	for (done = 0; done < n; done += m) {
		/* the slab's block arithmetic once per batch, not per block */
		uintptr_t base = __hak_slab_block(s, s->carved + done);

		m = n - done < HAK_HD_CARVE_MAX ? n - done : HAK_HD_CARVE_MAX;
		hak_hd_carve_order(idx, m);
		for (k = m; k; k--)
			carve_one(h, c, list, base + idx[k - 1] * stride, mark);
	}
}

/* ---- page-granular purging inside live slabs (owner only) ---- */

/*
 * A slab's 4 KiB pages whose blocks are all free are purged (madvise)
 * once the slab has gone a purge delay without an allocation or free,
 * and the blocks that overlap a purged page are "parked": taken off the
 * free list (their links were in the purged memory) and still free (not
 * in used). The purged pages are recorded in the superslab header
 * (page_purged, 16 bits per 64 KiB page, 64 bits for the largest slab).
 * slab_take() unparks a page at a time when the free list and the
 * carving area are exhausted: the blocks that overlap it and no other
 * purged page go back on the free list (their headers rewritten). Only
 * pages wholly covered by carved blocks are parked; the never-carved
 * tail is purged without parking (carving writes it afresh). The scan
 * walks the free list into a bitmap out of line; the fast paths are
 * untouched.
 */
#define HAK_SUBPAGE		4096UL
#define HAK_SUBPAGES		(HAK_PAGE_SIZE / HAK_SUBPAGE)	/* per 64 KiB page */
#define HAK_SLAB_MAX_BLOCKS	(HAK_PAGE_SIZE / 16)		/* 16 B in one page */

#define HAK_PURGE_BUSY_BLOCKS	4096	/* blocks returned per delay: busy */

static size_t heap_pages_purged __boot_hot;	/* atomic: bytes, ever */


static inline uint64_t slab_parked(const struct hak_slab *s)
{
	const struct hak_superslab *ss = __hak_ss_of((uintptr_t)s);
	unsigned i = __hak_slab_index(s), k;
	uint64_t m = 0;

	for (k = 0; k < s->span; k++)
		m |= (uint64_t)ss->page_purged[i + k] << (16 * k);
	return m;
}

static inline void slab_set_parked(struct hak_slab *s, uint64_t m)
{
	struct hak_superslab *ss = __hak_ss_of((uintptr_t)s);
	unsigned i = __hak_slab_index(s), k;

	for (k = 0; k < s->span; k++)
		ss->page_purged[i + k] = (uint16_t)(m >> (16 * k));
}

/* Sub-pages (bits, relative to slab_base) that block i's slot overlaps. */
static inline uint64_t block_pages(uintptr_t start, uintptr_t base, size_t stride, uint32_t i)
{
	uintptr_t lo = start + (uintptr_t)i * stride, hi = lo + stride - 1;
	unsigned a = (unsigned)((lo - base) / HAK_SUBPAGE), b = (unsigned)((hi - base) / HAK_SUBPAGE);

	return (b >= 63 ? ~0ULL : (1ULL << (b + 1)) - 1) & ~((1ULL << a) - 1);
}

/* Blocks [*first, *last] overlapping sub-page k (clamped to carved). */
static inline bool page_blocks(const struct hak_slab *s, uintptr_t start, uintptr_t base,
			       size_t stride, unsigned k, uint32_t *first, uint32_t *last)
{
	uintptr_t lo = base + (uintptr_t)k * HAK_SUBPAGE, hi = lo + HAK_SUBPAGE - 1;

	if (hi < start)
		return false;
	*first = lo < start ? 0 : (uint32_t)((lo - start) / stride);
	*last = (uint32_t)((hi - start) / stride);
	if (*last >= s->carved)
		*last = s->carved - 1;
	return *first < s->carved;
}

/* Put back on the free list the blocks of s's lowest purged sub-page. */
static void unpark_page(struct hak_heap *h, struct hak_slab *s)
{
	uint64_t m = slab_parked(s);
	unsigned k = (unsigned)__builtin_ctzll(m), c = s->class_idx;
	uintptr_t start = __hak_slab_start(s), base = slab_base(s);
	size_t stride = __hak_class_stride(c);
	uint32_t i, first, last;

	m &= m - 1;
	slab_set_parked(s, m);
	if (!page_blocks(s, start, base, stride, k, &first, &last))
		return;
	for (i = last + 1; i-- > first;) {
		uintptr_t blk = start + HAK_HDR_SIZE + (uintptr_t)i * stride;

		if (block_pages(start, base, stride, i) & m)
			continue;	/* still overlaps another purged page */
		/*
		 * Parking zeroed the link and mark words and purged the page:
		 * a word written since is a free (a double free) or a write
		 * into a block nobody was given.
		 */
		if (unlikely(hak_vg_next((void *)blk) || hak_vg_mark((void *)blk)))
			bad_block((void *)blk, c,
				  "double free or write after free (block in a purged page)");
		if (HAK_HDR_SIZE)
			hak_hdr_write((void *)blk, c, h->tag);
		hak_vg_noaccess((void *)blk, __hak_class_size[c]);
		if (hak_ff_level() < 2)
			hak_vg_remark((void *)blk, __hak_free_key());
		__hak_set_link((void *)blk, s->free);
		s->free = (void *)blk;
	}
}

/*
 * Before the first page of s is queued: the hugepage box may keep the
 * pages of a slab in a superslab it advised (false), else the superslab
 * loses its advice (khugepaged would otherwise fill the purged pages in
 * again). The purge comes after, at the caller's flush. cold: the heap
 * has been idle for the delay, or s is at least 3/4 free.
 */
static bool slab_before_purge(struct hak_slab *s, bool idle, bool *told)
{
	if (*told)
		return true;
	*told = true;
	return __hak_ss_before_purge(__hak_ss_of((uintptr_t)s),
				     idle || (s->carved - s->used) * 4 >= s->carved * 3);
}

/*
 * Scan s and queue its wholly free sub-pages on b (purged when the caller
 * flushes b, before it lets the owner back in).
 */
static void slab_purge_pages(struct hak_slab *s, struct hak_purge_batch *b, bool idle)
{
	bool told = false;
	uint64_t bits[HAK_SLAB_MAX_BLOCKS / 64] = { 0 };
	uint64_t parked = slab_parked(s), purge = 0, all;
	uintptr_t start = __hak_slab_start(s), base = slab_base(s);
	size_t stride = __hak_class_stride(s->class_idx);
	unsigned k, npages = s->span * HAK_SUBPAGES;
	uint32_t i, first, last;
	void *p, *next, *keep = NULL, *tail = NULL;

	if (s->capacity > HAK_SLAB_MAX_BLOCKS)
		return;
	/* Free blocks: the free list and the parked ones. */
	for (p = s->free; p; p = __hak_link(p)) {
		i = (uint32_t)(((uintptr_t)p - HAK_HDR_SIZE - start) / stride);
		bits[i / 64] |= 1ULL << (i % 64);
	}
	for (all = parked; all; all &= all - 1) {
		if (!page_blocks(s, start, base, stride, (unsigned)__builtin_ctzll(all),
				 &first, &last))
			continue;
		for (i = first; i <= last; i++)
			bits[i / 64] |= 1ULL << (i % 64);
	}
	for (k = 0; k < npages; k++) {
		if (parked & (1ULL << k))
			continue;
		if (!page_blocks(s, start, base, stride, k, &first, &last)) {
			uintptr_t lo = base + (uintptr_t)k * HAK_SUBPAGE;

			/* Never carved (or the header): purge the tail once. */
			if (lo >= start && !(s->flags & HAK_SLAB_TAIL_PURGED)) {
				if (!slab_before_purge(s, idle, &told))
					return;
				__hak_os_purge_add(b, (void *)lo, HAK_SUBPAGE);
			}
			continue;
		}
		/*
		 * A page that reaches past the carved blocks would be carved
		 * into later: not yet. Once the slab is carved whole, what
		 * lies past its last block is never used, so its last page
		 * goes like any other (one per slab whose blocks do not fill
		 * it exactly: 4 MiB per 1000 slabs otherwise).
		 */
		if (s->carved < s->capacity &&
		    (uintptr_t)(start + (uintptr_t)(last + 1) * stride) <
		    base + (uintptr_t)(k + 1) * HAK_SUBPAGE)
			continue;
		for (i = first; i <= last; i++)
			if (!(bits[i / 64] & (1ULL << (i % 64))))
				break;
		if (i > last)
			purge |= 1ULL << k;
	}
	s->flags |= HAK_SLAB_TAIL_PURGED;
	if (!purge || !slab_before_purge(s, idle, &told))
		return;
	/* Unlink the blocks that overlap a page to purge, while still readable. */
	all = parked | purge;
	for (p = s->free; p; p = next) {
		next = __hak_link(p);
		i = (uint32_t)(((uintptr_t)p - HAK_HDR_SIZE - start) / stride);
		if (block_pages(start, base, stride, i) & all) {
			/* parked: zero words (unpark_page checks them) */
			hak_vg_set_next(p, NULL);
			hak_vg_remark(p, 0);
			continue;
		}
		if (tail)
			__hak_set_link(tail, p);
		else
			keep = p;
		tail = p;
	}
	if (tail)
		__hak_set_link(tail, NULL);
	s->free = keep;
	for (k = 0; k < npages;) {
		unsigned j;

		if (!(purge & (1ULL << k))) {
			k++;
			continue;
		}
		for (j = k; j < npages && (purge & (1ULL << j)); j++)
			;
		/* A failed madvise leaves the pages resident: still parked. */
		__hak_os_purge_add(b, (void *)(base + (uintptr_t)k * HAK_SUBPAGE),
				   (size_t)(j - k) * HAK_SUBPAGE);
		k = j;
	}
	slab_set_parked(s, all);
}

/*
 * The thread cache's bins hold blocks that keep their pages resident (a few
 * MiB per thread with the adaptive sizing box), and a thread that goes idle
 * would leave them there for good: no other thread may touch its bins. A
 * bin whose head and count are what the owner saw an eighth of the delay
 * ago has most likely not been used since (a malloc and free of the same
 * block in between would cost one refill later): it goes back to its
 * slabs, where the pages it held can be purged once the heap has been
 * idle for the delay, by any thread (__hak_heap_purge_idle). So a thread
 * that stops right after a burst of frees still hands its cache back if
 * it calls the allocator for another eighth of the delay.
 */
static void trim_idle_bins(struct hak_heap *h)
{
	struct hak_tcache *tc = &__hak_tc;
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		struct hak_tbin *b = &tc->bins[c];

		if (b->head && b->head == h->bin_seen[c] &&
		    __hak_tbin_count(b) == h->bin_seen_n[c])
			bin_trim(h, b, 0);
		h->bin_seen[c] = b->head;
		h->bin_seen_n[c] = __hak_tbin_count(b);
	}
}

/*
 * Scan h's partial slabs for free pages. By the owner (idle false): a slab
 * is scanned once it has gone a whole pass (a delay) unchanged, and not
 * while the heap is busy. By another thread on an idle heap (idle true,
 * the scan lock held): no slab changed for a delay, so every one is due.
 */
static size_t heap_scan(struct hak_heap *h, bool busy, bool idle)
{
	struct hak_purge_batch b;
	size_t done;
	unsigned c;

	b.n = 0;
	b.done = 0;
	for (c = 0; c < HAK_NCLASS; c++) {
		struct hak_slab *s;

		for (s = h->partial[c]; s; s = s->next) {
			/* The owner wants its heap back: the rest can wait. */
			if (idle && (arch_load_relaxed(&h->scan_want) ||
				     arch_load_relaxed(&scan_stop)))
				goto out;
			/* Unchanged since the last pass, a delay ago? */
			if (!(s->flags & HAK_SLAB_IDLE1)) {
				s->flags |= HAK_SLAB_IDLE1;
				if (!idle)
					continue;
			}
			if (busy || (s->flags & HAK_SLAB_SCANNED))
				continue;
			s->flags |= HAK_SLAB_SCANNED;
			/*
			 * Worth a scan: a quarter of it free, two pages' worth
			 * at least (an empty slab kept for reuse qualifies: it
			 * has been idle a delay too).
			 */
			if ((s->carved - s->used) * 4 < s->carved ||
			    (size_t)(s->carved - s->used) * __hak_class_stride(c) < 2 * HAK_SUBPAGE)
				continue;
			slab_purge_pages(s, &b, idle);
		}
	}
	if (idle)
		spare_release(h, true);	/* idle for a delay: none is wanted */
out:
	/* Before the owner may touch these pages again (the caller's unlock). */
	done = __hak_os_purge_flush(&b);
	if (done)
		arch_fetch_add(&heap_pages_purged, done);
	return done;
}

size_t __hak_heap_purge_pages(unsigned now, unsigned delay)
{
	struct hak_heap *h = __hak_tc.heap;
	size_t done;
	uint64_t act;
	bool busy;

	if (!h)
		return 0;
	arch_store_relaxed(&h->active_ms, now);
	if (__hak_ms_age(now, h->bin_pass_ms) > delay / 8) {
		h->bin_pass_ms = now;
		heap_enter(h);
		trim_idle_bins(h);
		spare_release(h, false);
		heap_exit(h);
	}
	/*
	 * Per heap, not per thread: a heap adopted by a new thread keeps its
	 * pace, so "unchanged since the last pass" means for a whole delay.
	 */
	if (__hak_ms_age(now, h->page_pass_ms) < delay)
		return 0;
	/*
	 * A heap still freeing in bulk (a teardown, a burst) is not scanned,
	 * only aged: its slabs are likely to empty whole, and purging pages
	 * first would only add madvise calls and TLB shootdowns. "In bulk"
	 * is net of what the thread took back: a steady churn that refills
	 * as much as it flushes (thousands of blocks a delay) left every
	 * pass busy, so its idle slabs' free pages were never purged
	 * (dk19: 76 MiB resident for good, selftests/core/purge_churn).
	 * The difference wraps; read as signed, a delay of more refills
	 * than returns is quiet.
	 */
	/* relaxed: the decay pass writes remote_collected too (idle_collect) */
	act = h->stats.blocks_flushed + arch_load_relaxed(&h->stats.remote_collected) -
	      h->stats.blocks_refilled;
	busy = (int64_t)(act - h->page_pass_act) > HAK_PURGE_BUSY_BLOCKS;
	h->page_pass_act = act;
	h->page_pass_ms = now;
	heap_enter(h);
	done = heap_scan(h, busy, false);
	heap_exit(h);
	return done;
}

static void kept_flush(struct hak_heap *h);

static bool kept_any(const struct hak_heap *h)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++)
		if (h->kept[c].head)
			return true;
	return false;
}

/* A heap pooled for a delay: its kept bins home, its empty slabs back. */
static void pool_decay(struct hak_heap *h)
{
	kept_flush(h);
	release_empty(h);
}

/*
 * An idle owner's remote frees (decay pass, the scan lock held): a thread
 * that stopped calling the allocator (larson's main thread, which filled
 * every lane's table and sleeps) never collects what other threads free to
 * it, so those blocks sat on its slabs' remote stacks, counted out, for as
 * long as it slept: 3.0 MB of larson's 20-24 MB at 2 threads
 * (Documentation/design.md, "Scaling past the cores", the seventeenth pass).
 * Collected here, they are free on their slabs' lists, where the scan that
 * follows purges their whole pages, and a slab they empty goes back to its
 * superslab beyond the one kept per class (slab_emptied), whose pages the
 * working threads' next slabs take. Not release_empty(): "idle" is a
 * delay without a purge tick, which a thread that only hits its cache
 * also shows, and taking its kept slabs made it take new ones (thread-
 * churn at 16 threads: CPU 1.02-1.17 of main's in 7 of 7 rounds). The
 * owner's fast paths touch only its bins, and its slow paths wait for the
 * scan lock (heap_enter), as for the scan itself.
 */
static void idle_collect(struct hak_heap *h)
{
	collect_all(h);
}

size_t __hak_heap_purge_idle(unsigned now, unsigned delay)
{
	struct hak_heap *h;
	size_t done = 0;

	/*
	 * Heaps are never freed and all_next never changes once a heap is on
	 * the list, so the walk needs heap_lock only to read the head: a scan
	 * can take long (thousands of madvise calls) and must not hold up
	 * threads that start or exit. Fork waits for it (scan_stop).
	 */
	if (!scan_begin())
		return 0;
	hak_lock(&heap_lock);
	h = all_heaps;
	hak_unlock(&heap_lock);
	for (; h && !arch_load_relaxed(&scan_stop); h = h->all_next) {
		/* a tick after our clock read is not an old one */
		if (__hak_ms_age(now, arch_load_relaxed(&h->active_ms)) < delay ||
		    arch_cmpxchg(&h->scan_lk, 0, HAK_SCAN_OTHER) != 0)
			continue;
		/*
		 * A pooled heap's pages are left to the pool's scavenger; the
		 * bins its last thread left, a delay ago, go back to their
		 * slabs (the scan lock keeps an adopter out meanwhile).
		 */
		if (arch_load_relaxed(&h->attached)) {
			/* the owner's sharded paths take no scan lock: shard_enter */
			if (arch_load_relaxed(&__hak_shard_min) != UINT32_MAX) {
				if (!__hak_os_fence_others() ||
				    arch_load_acquire(&h->shard_busy)) {
					arch_store_release(&h->scan_lk, 0);
					continue;
				}
			}
			idle_collect(h);
			done += heap_scan(h, false, true);
		} else if (kept_any(h))
			pool_decay(h);
		arch_store_release(&h->scan_lk, 0);
	}
	scan_end();
	return done;
}

/*
 * Before a refill takes new pages: collect the remote frees waiting on
 * other heaps' slabs (the scan lock of each, tried, never waited for).
 * Where threads outnumber the CPUs, an owner waiting for one does not
 * collect what its consumers free to it, and those slabs, emptied by
 * them, stay resident while the running threads take new pages for their
 * own blocks: batch-pool (xmalloc-test's shape) at 16 threads held 13 MB
 * of slabs whose every block was freed, against 4 MB live
 * (Documentation/design.md, "Other heaps' remote frees before new
 * pages"). Collected here, a slab they empty goes back to its superslab
 * past the one its class keeps (slab_emptied), where the refill's
 * __hak_span_alloc takes its resident pages before clean ones (ss_pick);
 * the rest are on their owners' free lists. Only past the cores
 * (past_cores): with a CPU each, an owner collects at its own next
 * refill, and larson at 1 thread took 1.10-1.30x main's CPU a block with
 * its pending slabs collected by the next generation's threads. Not with
 * free-list sharding on: the owner's sharded paths take no scan lock, and
 * the fence the decay pass uses for them (__hak_os_fence_others) is a
 * system call.
 */
static void collect_others(struct hak_heap *me)
{
	struct hak_heap *o;

	if (!past_cores() || arch_load_relaxed(&__hak_shard_min) != UINT32_MAX || !scan_begin())
		return;
	hak_lock(&heap_lock);
	o = all_heaps;
	hak_unlock(&heap_lock);
	for (; o && !arch_load_relaxed(&scan_stop); o = o->all_next) {
		if (o == me || !arch_load_relaxed(&o->pending) ||
		    !arch_load_relaxed(&o->attached) ||
		    arch_cmpxchg(&o->scan_lk, 0, HAK_SCAN_OTHER) != 0)
			continue;
		collect_all(o);
		arch_store_release(&o->scan_lk, 0);
	}
	scan_end();
}

size_t __hak_heap_pages_purged(void)
{
	return arch_load_relaxed(&heap_pages_purged);
}

/*
 * Prefetch (for writing) the first line of every carved block of slab s,
 * whose free list a refill has just taken whole: malloc will pop those
 * blocks one by one, and each pop reads the link in the block's line, a
 * dependent cold miss per block (the list was freed long ago, in the
 * program's order), which holds retirement and serialises the pops.
 * Issued here the lines come in together, as independent misses, and the
 * pops find them in the L1 or L2. The refill calls it only when at least
 * half the carved blocks are free, so at most two lines are fetched per
 * block handed out (the other lines are live blocks'); a line of a live
 * block costs a fetch, never a fault (prefetches do not fault).
 * footprint at fixed work: Documentation/design.md, "The free path".
 */
static void slab_prefetch(const struct hak_slab *s, unsigned c)
{
	size_t step = __hak_class_stride(c);
	uintptr_t q = __hak_slab_block(s, 0);
	uintptr_t end = q + (uintptr_t)s->carved * step;

	if (step < ARCH_CACHE_LINE) {
		step = ARCH_CACHE_LINE;
		q &= ~(uintptr_t)(ARCH_CACHE_LINE - 1);
	}
	for (; q < end; q += step)
		arch_prefetchw((void *)q);
}

/*
 * Past the cores, the owner carves into pages never touched with its scan
 * lock dropped. Those first touches are page faults (10-13 us each on the
 * test VM), the longest stretch of a refill, and an owner preempted in
 * one held its scan lock meanwhile: batch-pool at 16 threads, another
 * heap's refill about to take new pages (collect_others) found the scan
 * lock held by a producer in a carve 1,685-3,425 times a run and
 * collected 31-84 heaps (Documentation/design.md, "The carve's page
 * faults outside the scan lock"). So the n blocks are reserved first:
 * counted carved and used, as blocks in the bin are, so no scanner takes
 * them for free or uncarved (slab_purge_pages), and the slab, never empty
 * while they are counted, is not released (collect_pending, slab_emptied);
 * then the lock goes, the blocks are written (their memory is nobody
 * else's: no list holds them), and carve_close takes it again (waiting
 * for a scanner, as heap_enter) and undoes the reservation for the
 * caller's own counting. Only at the outer level of the owner's slow
 * paths (depth 1, with depth 0 in the window: a signal handler's slow path
 * takes the lock itself; enter_waits keeps heap_handover out, as in
 * heap_enter_wait), without fail-fast checks, and only where
 * collect_others runs (past the cores, no free-list sharding): elsewhere
 * nothing would take the lock meanwhile.
 */
static bool carve_open(struct hak_heap *h, struct hak_slab *s, uint32_t n, size_t stride)
{
	uintptr_t lo = __hak_slab_block(s, s->carved), hi = lo + (uintptr_t)n * stride;

	/* the first page the carve touches that no carved block did */
	if (hi <= ((lo - 1) | (HAK_SUBPAGE - 1)) + 1 || h->depth != 1 || hak_ff_level() ||
	    arch_load_relaxed(&__hak_shard_min) != UINT32_MAX || !past_cores())
		return false;
	s->carved += n;
	s->used += n;
	enter_waits++;		/* a frame is inside: no heap_handover meanwhile */
	barrier();
	heap_exit(h);
	return true;
}

static void carve_close(struct hak_heap *h, struct hak_slab *s, uint32_t n)
{
	heap_enter(h);
	barrier();
	enter_waits--;
	s->carved -= n;
	s->used -= n;
}

/*
 * Take up to want blocks of slab s onto *list; returns how many. Carved
 * blocks get the free mark of the bin they go to (mark), so a free of one
 * the program was never given is caught like a double free.
 */
static uint32_t slab_take(struct hak_heap *h, struct hak_slab *s,
			  void **list, uint32_t want, uint32_t whole, uint32_t dense,
			  uintptr_t mark, bool *all)
{
	unsigned c = s->class_idx;
	uint32_t got = 0, len = s->carved - s->used;

	if (s->used == 0 && h->nempty[c])
		h->nempty[c]--;
	if (hak_ff_level() >= 2)
		hak_ff_walk_slab(s);
	/*
	 * A free list no longer than what is wanted goes over whole, without
	 * a block being read (popping it is a cache miss per block: the
	 * blocks were freed long ago), as the pops below would have taken it
	 * all anyway; and one up to whole (the bin's room, >= want) too:
	 * popping want of a longer list reads each link twice, cold here
	 * and again at malloc's pop (footprint's random frees leave long
	 * lists), and a full bin costs the frees that follow only a spill
	 * of its newest blocks. Its length is carved - used while nothing
	 * is parked. The bin's list must be empty (the free list's tail is
	 * unknown); carving below may still prepend to it. A longer list
	 * still goes whole, up to dense, when at least half the slab is on
	 * it (dense_limit): then slab_prefetch below fetches its lines.
	 */
	if (!*list && s->free && !hak_ff_level() && !slab_parked(s) &&
	    (len <= whole || (len <= dense && 2 * len >= s->carved))) {
		got = len;
		*list = s->free;
		s->free = NULL;
		*all = true;
		if (2 * got >= s->carved)
			slab_prefetch(s, c);
	}
	while (got < want && s->free) {
		void *p = s->free;

		arch_prefetchw(p);	/* read, then written: one ownership request */
		if (hak_ff_level())
			hak_ff_on_slab_pop(s, p);
		s->free = __hak_link(p);
		__hak_set_link(p, *list);
		*list = p;
		got++;
	}
	if (got < want && s->carved < s->capacity) {
		size_t stride = __hak_class_stride(c);
		uint32_t n = s->capacity - s->carved, k;
		uintptr_t blk;

		if (n > want - got)
			n = want - got;
		if (hak_hd_on()) {
			carve_random(h, s, list, n, mark);
		} else {
			/*
			 * Carve from the bottom up, so the list runs in
			 * falling address order (the head is the highest
			 * block), as a hardened spill's does. Handed out
			 * going up, the same blocks made larson 10-25%
			 * slower on this machine at the same instructions
			 * and simulated misses (Documentation/design.md,
			 * "The carve's direction").
			 */
			bool open;

			/*
			 * Read before the window: a handler's refill inside it
			 * may carve past the reserved blocks of this slab.
			 */
			blk = __hak_slab_block(s, s->carved);
			open = carve_open(h, s, n, stride);
			for (k = n; k; k--) {
				carve_one(h, c, list, blk, mark);
				blk += stride;
			}
			if (open)
				carve_close(h, s, n);
		}
		s->carved += n;
		got += n;
	}
	while (got < want && unlikely(slab_parked(s))) {
		unpark_page(h, s);
		while (got < want && s->free) {
			void *p = s->free;

			s->free = __hak_link(p);
			__hak_set_link(p, *list);
			*list = p;
			got++;
		}
	}
	s->flags &= ~(HAK_SLAB_SCANNED | HAK_SLAB_IDLE_MASK);
	if (hak_ff_level() && unlikely(s->used + got > s->capacity))
		hak_ff_fail(*list, c, "slab used counter overflow");
	s->used += got;
	HAK_STAT_ADD(h, bytes_out, (uint64_t)got * __hak_class_size[c]);
	/* PARTIAL: a signal handler's refill inside carve_open's window may have */
	if (!s->free && s->carved == s->capacity && !slab_parked(s) &&
	    (s->flags & HAK_SLAB_PARTIAL))
		partial_del(h, s);
	return got;
}

static void scavenge_pool(bool kept);

/*
 * A slow path of a thread whose exit destructor ran already attached a heap
 * (HAK_T_LATE): glibc frees its own per-thread buffers (strerror's message
 * of an unknown errno, dlerror's, the resolver's) after the last round of
 * key destructors, and another key's destructor may allocate in that last
 * round, after ours. Nothing would detach that heap: it stayed attached
 * for good, with its slabs, and counted live (thread_share), one per
 * exited thread (selftests/core/exit_late). So such a slow path detaches
 * again before it returns, which pools the heap with the bins kept, as at
 * thread exit; the thread's next slow path attaches it (or another) anew.
 */
static inline void late_done(void)
{
	if (unlikely(__hak_tc.state == HAK_T_LATE))
		__hak_heap_detach();
}

static struct hak_heap *heap_of_thread(void)
{
	struct hak_tcache *tc = &__hak_tc;

	if (likely(tc->heap))
		return tc->heap;
	return __hak_heap_attach();
}

/*
 * A refill ends at a slab free list taken whole once it holds this many
 * blocks (bin_fill); a shorter one is followed by pops from the next slab,
 * so a refill never hands out a block or two for its call.
 */
#define HAK_WHOLE_MIN	16

/*
 * Move up to want blocks of class c from h's slabs onto bin b; a refill
 * (refill true) may stop short at a list taken whole, a box's fill of a
 * given count (__hak_tcache_fill) does not.
 */
static uint32_t bin_fill(struct hak_heap *h, struct hak_tbin *b, unsigned c,
			 uint32_t want, bool refill)
{
	uint32_t got = 0, room = b->cap > __hak_tbin_count(b) ?
				    b->cap - __hak_tbin_count(b) : 0;
	uint32_t lim = refill ? refill_limit(c, room) : room;
	uint32_t dense = refill ? dense_limit(c, room) : 0;
	void *list = b->head;

	if (arch_load_relaxed(&h->pending))
		got = collect_pending(h, c, &list, lim);
	while (got < want) {
		struct hak_slab *s = h->partial[c];
		bool all = false;

		if (!s) {
			uint32_t n = depot_take(c, &list, room > got ? room - got : 0);

			if (n) {
				got += n;
				continue;
			}
			/*
			 * Before taking new pages, let pooled heaps (of exited
			 * threads) give back slabs that remote frees emptied.
			 */
			s = spare_take(h, c);
			if (!s) {
				if (arch_load_relaxed(&pool_dirty) &&
				    arch_xchg(&pool_dirty, 0))
					scavenge_pool(false);
				collect_others(h);
				s = __hak_span_alloc(h, h->tag, c);
				if (!s)
					break;
				HAK_STAT_ADD(h, slabs_taken, 1);
			}
			partial_add(h, s);
		}
		got += slab_take(h, s, &list, want - got,
				 (lim > want ? lim : want) - got, dense > got ? dense - got : 0,
				 __hak_free_key(), &all);
		/*
		 * A free list taken whole (unread) ends the refill, short of
		 * want: the next slab's blocks would be popped one cold link
		 * at a time (in front of the whole list, whose tail is
		 * unknown), a dependent cache miss each, where the refill
		 * they save costs about 150 instructions. The malloc that
		 * pops each block reads its line then, overlapped with the
		 * program's own work, as with a page-local free list
		 * (footprint: simulated misses in refills 826k -> 315k).
		 */
		if (refill && all && got >= HAK_WHOLE_MIN)
			break;
	}
	b->head = list;
	if (got > room)
		bin_raise(b, c, __hak_tbin_count(b) + got);
	else
		b->room -= got;
	return got;
}

uint32_t __hak_tcache_fill(unsigned c, uint32_t n)
{
	struct hak_tcache *tc = &__hak_tc;
	struct hak_tbin *b = &tc->bins[c];
	uint32_t room;

	if (!tc->heap || c >= HAK_NCLASS)
		return 0;
	room = b->cap > __hak_tbin_count(b) ? b->cap - __hak_tbin_count(b) : 0;
	heap_enter(tc->heap);
	n = bin_fill(tc->heap, b, c, n < room ? n : room, false);
	heap_exit(tc->heap);
	return n;
}

void __hak_tcache_trim(unsigned c, uint32_t keep)
{
	struct hak_tcache *tc = &__hak_tc;

	if (tc->heap && c < HAK_NCLASS) {
		heap_enter(tc->heap);
		bin_shed(tc->heap, &tc->bins[c], c, keep);
		heap_exit(tc->heap);
	}
}

/*
 * Blocks a refill asks for: half the bin's capacity, but for the classes
 * of HAK_REFILL_CLASS_MIN bytes and more at most HAK_REFILL_BYTES of
 * blocks (one 64 KiB slab's worth, at least HAK_WHOLE_MIN blocks). A bin
 * grown to hundreds of blocks of a 1-3.5 KiB class refilled half of them
 * at once, carving or popping (so making resident) up to 1.5 MiB that the
 * program might not ask for before the class went cold, and the bin then
 * kept those slabs from emptying (size-chain: peak RSS 10.9 -> 9.3 MB,
 * 19.2 -> 16.3 MB at 2 threads, at the same CPU; Documentation/design.md,
 * "size-chain's resident memory at the peak"). The small classes, whose
 * bins carry footprint's and larson's speed, keep half.
 *
 * The classes of a 4 KiB page and more ask for one block: each block
 * carved is a page made resident (the carve writes its link and header),
 * and a refill of such a class carved 4 (the bin's capacity is 8) that the
 * thread often never used: glibc-thread at 32 threads, whose sizes reach
 * 32 KiB but hold few blocks of the 13 page classes, had 19.3 MB peak RSS
 * against 13.0 with one, glibc's 6.7 (Documentation/benchmarks.md,
 * "mimalloc-bench workloads at 2, 8 and 32 threads"). Blocks already
 * free still come as before: a slab's short free list is taken whole
 * (slab_take), whatever the want.
 */
#define HAK_REFILL_CLASS_MIN	512
#define HAK_REFILL_BYTES	HAK_PAGE_SIZE

static inline uint32_t refill_want(const struct hak_tbin *b, unsigned c)
{
	uint32_t want = b->cap / 2 ? b->cap / 2 : 1;
	size_t stride = __hak_class_stride(c), most;

	if (stride >= HAK_OS_PAGE)
		return 1;
	if (stride < HAK_REFILL_CLASS_MIN || (size_t)want * stride <= HAK_REFILL_BYTES)
		return want;
	most = HAK_REFILL_BYTES / stride;
	if (most < HAK_WHOLE_MIN)
		most = HAK_WHOLE_MIN;
	return want < most ? want : (uint32_t)most;
}

/*
 * A class's first refill in a heap asks for less: about a 4 KiB page of
 * blocks (at least one), the next for the rest of one refill's worth (see
 * below), the ones after for refill_want's. A process start
 * makes a few blocks of most classes, and a first refill of half the bin
 * (16 KiB of each class of 128 B and more) carved and linked four pages
 * of each where the program used one: sed made 22 refills, 72 pages of
 * slabs resident, a quarter of its page faults (Documentation/benchmarks.md,
 * "Process start"). A class in use pays one refill more in the heap's
 * life (a pooled heap keeps its marks for the next thread). Invariant: the
 * want is at least 1 and never more than refill_want's, so every other
 * rule (the bin's room, the whole free lists of slab_take, the page
 * classes' one block) holds as before.
 *
 * The refill that follows the young one completes it, to one refill's
 * worth in all (want less the young blocks): the carve then meets a slab's
 * end where it did without the young refill. A refill that straddles two
 * slabs fills the bin from both (their blocks alternate in it), and a
 * spill of blocks more than 64 KiB apart is not sorted (spill_sorted):
 * 32 B blocks, 2,048 to a slab, made 128 + 512 + 512 + 512 and then a
 * straddling 512 (hardened/hd_links point 15: 62% of the slabs' links in
 * order, 97% before the young refill and again with the completion).
 * The adaptive-sizing box does not see the completing refill
 * (refill_slow), or two refills in one window made
 * the class hot and doubled its capacity where one full refill had not
 * (random-mixed 8..1024 B: 3% more CPU, 1.3% more page faults).
 */
#define HAK_FILL_NONE	0	/* no refill of the class yet */
#define HAK_FILL_YOUNG	1	/* one young refill; the next completes it */
#define HAK_FILL_FULL	2

static inline uint32_t refill_young(struct hak_heap *h, unsigned c, uint32_t want)
{
	uint32_t n;

	if (likely(h->filled[c] == HAK_FILL_FULL))
		return want;
	n = (uint32_t)(HAK_SUBPAGE / __hak_class_stride(c));
	n = n ? n : 1;
	if (h->filled[c] == HAK_FILL_YOUNG) {
		h->filled[c] = HAK_FILL_FULL;
		return n < want ? want - n : want;
	}
	h->filled[c] = n < want ? HAK_FILL_YOUNG : HAK_FILL_FULL;
	return n < want ? n : want;
}

/*
 * ---- free-list sharding (tcache.h, __hak_shard_min) ----
 *
 * A sharded class keeps a bin of __hak_shard_cap_of() blocks at most. A malloc
 * that finds it empty pops one block off the class's first partial slab
 * (or carves one) and a free that finds it full pushes the block onto its
 * own slab's free list: the bin no longer keeps a share of every slab the
 * class has, so a chain freed whole leaves its slabs whole (size-chain's
 * peak RSS). Neither takes the scan lock (shard_enter below).
 * Anything out of the simple case goes to the generic paths.
 */
uint32_t __hak_shard_min = UINT32_MAX;	/* atomic, as the two below */
uint32_t __hak_shard_cap;
uint32_t __hak_shard_bytes;
static int shard_ready __boot_once;	/* atomic: the three above are set */

/*
 * At a thread's first attach: the options, and the fence the decay pass
 * needs (without it no class is sharded). Threads that attach together
 * all get here and write the same values, while a thread without a heap
 * may read __hak_shard_min on its first refill (__hak_tcache_refill):
 * atomic stores and loads (plain MOVs on x86_64), or TSan reports the
 * race (rv22: four threads whose first malloc came at once).
 */
static void shard_setup(void)
{
	size_t min = __hak_opt.shard_min;

	if (min && __hak_os_fence_others_init()) {
		arch_store_relaxed(&__hak_shard_cap, (uint32_t)__hak_opt.shard_cap);
		arch_store_relaxed(&__hak_shard_bytes, (uint32_t)__hak_opt.shard_bytes);
		arch_store_relaxed(&__hak_shard_min, (uint32_t)min);
	}
	arch_store_release(&shard_ready, 1);
}

/*
 * The owner's side of the scan lock for the sharded paths: a store and a
 * load with no fence between them (a compiler barrier only), where
 * heap_enter's cmpxchg cost a fifth of size-chain's CPU. The decay pass
 * takes scan_lk, fences this thread (__hak_os_fence_others: its store
 * buffer drains), then reads shard_busy: either it sees this thread's
 * store and backs off, or this thread's load comes after the fence and
 * sees scan_lk taken, and the path goes the generic way (heap_enter
 * waits). False: take the generic path.
 */
static __always_inline bool shard_enter(struct hak_heap *h)
{
	arch_store_relaxed(&h->shard_busy, 1);
	barrier();
	if (likely(!arch_load_acquire(&h->scan_lk)))
		return true;
	arch_store_release(&h->shard_busy, 0);
	return false;
}

static __always_inline void shard_exit(struct hak_heap *h)
{
	arch_store_release(&h->shard_busy, 0);
}

static void *refill_slow(uintptr_t ix) __noinline;
static void overflow_slow(void *p, uintptr_t ix) __noinline;

/* A malloc of sharded class ix / 4 whose bin is empty. */
static void *__noinline shard_alloc(uintptr_t ix)
{
	struct hak_tcache *tc = &__hak_tc;
	struct hak_heap *h = tc->heap;
	unsigned c = (unsigned)(ix / 4);
	struct hak_slab *s;
	void *p;

	if (unlikely(!h || tc->state != HAK_T_LIVE || !alloc_counted || tc->bins[c].head ||
		     arch_load_relaxed(&h->pending) || arch_load_relaxed(&nr_suspects) ||
		     hak_ff_level()))
		return refill_slow(ix);
	if (unlikely(!shard_enter(h)))
		return refill_slow(ix);
	s = h->partial[c];
	if (unlikely(!s)) {
		s = spare_take(h, c);
		if (!s)
			goto slow;
		partial_add(h, s);
	}
	/*
	 * Parked pages (purged inside the slab, their blocks off the list)
	 * matter only once the list and the bump area are used up: then the
	 * generic path unparks them, or takes the slab off the partial list.
	 */
	if (likely(s->free)) {
		p = s->free;
		s->free = __hak_link(p);
	} else if (s->carved < s->capacity && !hak_hd_on()) {
		p = (void *)__hak_slab_block(s, s->carved);
		s->carved++;
		if (HAK_HDR_SIZE)
			hak_hdr_write(p, c, h->tag);
	} else {
		goto slow;
	}
	if (unlikely(s->used == 0) && h->nempty[c])
		h->nempty[c]--;
	s->used++;
	s->flags &= ~(HAK_SLAB_SCANNED | HAK_SLAB_IDLE_MASK);
	HAK_STAT_ADD(h, bytes_out, __hak_class_size[c]);
	if (unlikely(!s->free && s->carved == s->capacity) && !slab_parked(s))
		partial_del(h, s);
	shard_exit(h);
	return __hak_tbin_took(p, c);
slow:
	shard_exit(h);
	return refill_slow(ix);
}

/* A free of block p (marked free) of sharded class ix / 4 whose bin is full. */
static void __noinline shard_free(void *p, uintptr_t ix)
{
	struct hak_tcache *tc = &__hak_tc;
	struct hak_heap *h = tc->heap;
	unsigned c = (unsigned)(ix / 4);
	struct hak_slab *s;

	if (unlikely(!h || tc->state != HAK_T_LIVE || arch_load_relaxed(&nr_suspects) ||
		     hak_ff_level()))
		goto slow;
	s = __hak_slab_head(__hak_page_of((uintptr_t)p));
	if (unlikely(s->owner != h || s->class_idx != c))
		goto slow;
	if (unlikely(!shard_enter(h)))
		goto slow;
	tc->bins[c].room++;	/* the push took room for p */
	local_free(h, s, p);
	shard_exit(h);
	return;
slow:
	overflow_slow(p, ix);
}

void *__hak_tcache_refill(uintptr_t ix)
{
	if (__hak_sharded_class((unsigned)(ix / 4)))
		return shard_alloc(ix);
	return refill_slow(ix);
}

void __hak_tcache_overflow(void *p, uintptr_t ix)
{
	if (__hak_sharded_class((unsigned)(ix / 4)))
		shard_free(p, ix);
	else
		overflow_slow(p, ix);
}

static void *refill_slow(uintptr_t ix)
{
	unsigned c = (unsigned)(ix / 4);
	struct hak_tbin *b = &__hak_tc.bins[c];
	struct hak_heap *h = heap_of_thread();
	uint32_t got;

	if (unlikely(!h))
		return NULL;
	rf_tag_set(0);	/* look at the idle owner again */
	runs_send_any();
	heap_enter(h);
	settle_if_any(h, true);
	__hak_purge_tick();
	if (!b->head) {
		bin_lower(b, c);
		if (likely(h->filled[c] != HAK_FILL_YOUNG))	/* see refill_young */
			hak_adapt_on_refill(c);
		/*
		 * The thread's first refill warms its hot classes (this one
		 * too, if it is one of them): a thread that only frees never
		 * takes blocks it would not use.
		 */
		hak_prewarm_thread();
		if (unlikely(!alloc_counted)) {
			alloc_counted = true;
			arch_fetch_add(&nr_alloc, 1u);
		}
		got = 0;
		if (!b->head) {
			uint32_t want = refill_young(h, c, refill_want(b, c));
			bool gen = !__hak_sharded_class(c);

			got = bin_fill(h, b, c, want, gen);
			if (!got && __hak_purge_for_retry())
				got = bin_fill(h, b, c, want, gen);
		}
		HAK_STAT_ADD(h, refills, 1);
		HAK_STAT_ADD(h, blocks_refilled, got);
		if (!b->head) {
			heap_exit(h);
			late_done();
			errno = ENOMEM;
			return NULL;
		}
	}
	heap_exit(h);
	if (unlikely(__hak_tc.state == HAK_T_LATE)) {
		void *p = __hak_tbin_take(b, b->head, c);

		late_done();
		return p;
	}
	return __hak_tbin_take(b, b->head, c);
}

/*
 * An owner that does not allocate (a main thread that filled tables and
 * waits, a producer that is done) never collects its remote frees, so the
 * memory freed to it is not reused: with 64 larson threads on 2 cores the
 * whole timed run was such a warm-up, twice the peers' page faults. The
 * freeing thread remembers the last owner it freed to and that owner's
 * refill count; after HAK_IDLE_FREES frees to it with no refill in
 * between, from an owner whose thread has not ticked for HAK_IDLE_MS (a
 * busy owner whose bins are full does not refill either), the owner
 * counts as idle and its blocks are cached here (then
 * served to this thread, or sent home in batches at overflow, as for a
 * tag collision), if this thread allocates (heap_allocates). A working
 * owner refills often, so producer/consumer pairs and cache-scratch's
 * single frees still send every block home; past the cores a producer
 * waiting for a CPU does not, but its consumer never allocates.
 */

static bool owner_idle(const struct hak_heap *h)
{
	uint64_t r = arch_load_relaxed(&h->stats.refills);

	if (h != rf_owner || r != rf_refills) {
		rf_owner = (struct hak_heap *)h;
		rf_refills = r;
		rf_same = 0;
		rf_tag_set(0);
		return false;
	}
	/* rf_same reaches HAK_IDLE_FREES (owner_seen_idle) only past the time */
	if (rf_same < HAK_IDLE_FREES - 1) {
		rf_same++;
		return false;
	}
	if (rf_same < HAK_IDLE_FREES) {
		if (__hak_ms_age(__hak_tick_ms, arch_load_relaxed(&h->active_ms)) < HAK_IDLE_MS)
			return false;
		rf_same = HAK_IDLE_FREES;
	}
	rf_tag_set(h->tag);
	return true;
}

/*
 * Does the thread of heap h allocate small blocks (has it ever refilled a
 * bin)? Caching an idle owner's blocks pays only in a thread that serves
 * them again: a thread that only frees (a consumer) would overflow them
 * into the depot or back to the owner, a walk of blocks it already
 * handled. Past the cores that was most of what it cached: a producer
 * waiting for a CPU looks idle to its consumer after HAK_IDLE_FREES
 * frees (producer-consumer at 64 pairs: 180k overflows, none without).
 * Tested first: a thread that only frees then never reads the owner's
 * refill counter, a line the owner writes at every refill.
 */
static inline bool heap_allocates(const struct hak_heap *h)
{
	return arch_load_relaxed(&h->stats.refills) != 0;
}

static void free_remote_all(void *p, unsigned c) __noinline;
static void free_remote_idle(struct hak_slab *s, void *p, unsigned c) __noinline;
static __always_inline void free_remote_go(struct hak_heap *h, void *p, unsigned c);

/*
 * Free of block p (class c) of a slab owned by another heap: give it
 * straight back to its owner with one atomic push, rather than caching it
 * here, so a block never serves a second thread while its neighbours in
 * the same cache line serve the first (false sharing), unless the owner is
 * idle (above). Before this thread has a heap (tag 0) or for an unclassed
 * block, take the ordinary path, which attaches a heap or sorts the block
 * out.
 *
 * The common case, a block of a working owner's slab from a thread with a
 * heap that passes every check, makes no call but run_add()'s tail calls,
 * so it saves no register; whatever else may happen (an attach, a
 * hand-over, a suspect mark, a tag of our own, fail-fast) goes to
 * free_remote_all(), which runs every test again from the start. The
 * saves and restores were 16 of the 79 instructions a block this function
 * took on the pinned producer-consumer row (callgrind;
 * Documentation/benchmarks.md, "producer-consumer: pinned pairs").
 */
void __hak_free_remote(void *p, unsigned c)
{
	struct hak_tcache *tc = &__hak_tc;

	arch_prefetchw(p);	/* see free_remote_all() */
	if (unlikely(c >= HAK_NCLASS || !tc->heap || __hak_block_owner((uintptr_t)p) == tc->tag ||
		     __hak_off_boundary((uintptr_t)p, (uint16_t)__hak_class_mask[c]) ||
		     hak_ff_level())) {
		free_remote_all(p, c);
		return;
	}
	free_remote_go(tc->heap, p, c);
}

/*
 * The common case of both: p (class c, inside its boundary) of another
 * heap's slab, from a thread with heap h, fail-fast off.
 */
static __always_inline void free_remote_go(struct hak_heap *h, void *p, unsigned c)
{
	struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)p));

	/* a measurement build without the checks skips the mark: HAK_FREE_CHECKS */
	if (unlikely((HAK_FREE_CHECKS && hak_vg_mark(p) == __hak_free_key()) ||
		     !arch_load_relaxed(&s->owner->attached))) {
		free_remote_all(p, c);
		return;
	}
	/* owner_idle() makes no call: its count stays one per free */
	if (heap_allocates(h) && owner_idle(s->owner)) {
		free_remote_idle(s, p, c);
		return;
	}
	__hak_zero_freed(p, c);
	hak_vg_set_mark(p, __hak_free_key());
	hak_vg_free(p);
	HAK_STAT_ADD(h, remote_frees, 1);
	run_add(s, p, c);
}

/*
 * The page-map entry said another heap's block of bin ix (lib/alloc.c,
 * __hak_free_slow): the tests of __hak_free_remote that the entry did
 * not settle. The boundary is the bin's mask, in the TLS block like the
 * heap (its high bits refuse a pointer the map's index wrapped); without
 * a heap (the attach), on a boundary miss or with fail-fast, the free is
 * sorted out from the registry again, which ends in free_remote_all()
 * and its every test.
 */
void __hak_free_home(void *p, uintptr_t ix)
{
	hak_tc_tls *t = __hak_tc_tls();
	struct hak_heap *h = t->heap;

	arch_prefetchw(p);	/* see free_remote_all() */
	if (unlikely(!h || arch_tls_test_ne((uintptr_t)p, &__hak_tbin_at(t, &ix)->mask) ||
		     hak_ff_level())) {
		__hak_free_any(p);
		return;
	}
	free_remote_go(h, p, (unsigned)(ix / 4));
}

/* An idle owner's block: cached here (see free_remote_all()). */
static void free_remote_idle(struct hak_slab *s, void *p, unsigned c)
{
	if (!arch_load_relaxed(&s->owner->lent))
		arch_store_relaxed(&s->owner->lent, 1);
	__hak_tcache_push(p, c);
}

/* __hak_free_remote, every case. */
static void free_remote_all(void *p, unsigned c)
{
	struct hak_tcache *tc = &__hak_tc;
	struct hak_slab *s;
	int saved;

	/*
	 * The mark test below reads p, the push then writes it: p was last
	 * written by the thread that allocated it, on another core. Fetch
	 * its line for writing first, so it moves once instead of being
	 * shared by the read and taken over again by the write.
	 */
	arch_prefetchw(p);
	/*
	 * A block of the owner found idle at the last look (owner_idle(),
	 * below) does not come here: __hak_free_slow caches it at once.
	 *
	 * errno is saved only around what may set it (an attach, a
	 * hand-over); the push home makes no system call: no call to
	 * __errno_location on the common path.
	 *
	 * A thread's first free may be of another thread's block: attach
	 * first, so that the block goes home through its owner (caching
	 * it here would hide a double free from the owner).
	 */
	if (c < HAK_NCLASS && !tc->heap) {
		saved = errno;
		if (heap_of_thread())
			errno = saved;
		if (unlikely(tc->state == HAK_T_LATE)) {
			__hak_free_remote(p, c);	/* with the heap */
			late_done();
			return;
		}
	}
	if (c >= HAK_NCLASS || !tc->heap || __hak_block_owner((uintptr_t)p) == tc->tag) {
		__hak_tcache_push(p, c);
		return;
	}
	if (unlikely(__hak_off_boundary((uintptr_t)p, (uint16_t)__hak_class_mask[c])))
		__hak_free_misaligned(p, 4 * (uintptr_t)c);
	s = __hak_slab_head(__hak_page_of((uintptr_t)p));
	if (HAK_FREE_CHECKS && unlikely(hak_vg_mark(p) == __hak_free_key())) {
		/*
		 * Free already, or a live block holding that value. In this
		 * thread's bin (an idle owner's block cached here): report it
		 * now; anywhere else only the owner can tell: ask it.
		 */
		struct hak_tbin *b = &tc->bins[c];

		if (on_list(b->head, p, __hak_tbin_count(b)))
			bad_block(p, c, "double free (block in the thread cache)");
		if (run_holds(p, c))
			bad_block(p, c, "double free (block on its way home)");
		park_suspect(p, c);
		return;
	}
	/*
	 * A pooled heap that has more out than ours (a predecessor's, whose
	 * data this thread inherited): take it, and the block, with the rest
	 * of that data, is then our own.
	 */
	if (!arch_load_relaxed(&s->owner->attached)) {
		bool took;

		saved = errno;
		took = heap_handover(tc, s->owner);
		errno = saved;
		if (took) {
			__hak_tcache_push(p, c);
			return;
		}
	}
	/*
	 * An idle owner's block is cached here (a second free by this thread
	 * finds it in the bin); it carries the free key, every heap's mark,
	 * when the bin sends it home.
	 */
	if (heap_allocates(tc->heap) && owner_idle(s->owner)) {
		free_remote_idle(s, p, c);
		return;
	}
	if (hak_ff_level())
		hak_ff_on_free(p, c);
	__hak_zero_freed(p, c);
	if (hak_ff_level() < 2)
		hak_vg_set_mark(p, __hak_free_key());
	hak_vg_free(p);
	HAK_STAT_ADD(tc->heap, remote_frees, 1);
	run_add(s, p, c);
}

/*
 * With the header box, the slot aligned block p was cut from, its class in
 * *sc. Every header byte on the way is checked against the slab, since
 * the program may have written over them (a write before its block):
 * trusted, a forged slot class cached a slot in another class's bin (a
 * 48-byte block served for 1,000 bytes), a forged distance an address
 * that is no block. Anything else, a corrupt class byte among them (the
 * page's class did not confirm it: alloc.h), is reported with what. The
 * fail-fast box checks the same first, with its own words.
 */
uintptr_t __hak_hdr_slot(const void *p, unsigned *sc, const char *what)
{
	const struct hak_hdr *hd = hak_hdr_of(p);
	uintptr_t slot = (uintptr_t)p - 16 * (uintptr_t)hd->delta;
	unsigned c;

	if (!HAK_HDR_SIZE || hd->check != hak_hdr_check(p) || hd->class_idx != HAK_HDR_ALIGNED)
		__hak_bad_free(p, what);
	c = __hak_page_class(slot);
	if (hd->slot_class != c || c >= HAK_NCLASS)
		__hak_bad_free(p, "corrupt block header (slot class)");
	if (!__hak_slab_is_block(__hak_slab_head(__hak_page_of(slot)), slot) ||
	    16 * (size_t)hd->delta + 16 > __hak_class_size[c])
		__hak_bad_free(p, "corrupt block header (slot distance)");
	*sc = c;
	return slot;
}

/*
 * With the header box, an aligned block's header sends its free here (its
 * class byte is HAK_HDR_ALIGNED): find the slot it was cut from, restore the
 * slot's header and cache the slot. Without the box a block of class
 * HAK_CLASS_NONE lies in a free page: not a live block.
 */
static void free_unclassed(void *p)
{
	const struct hak_hdr *hd = hak_hdr_of(p);
	unsigned sc;
	void *slot;

	if (!HAK_HDR_SIZE)
		__hak_bad_free(p, "not a live block (free page)");
	slot = (void *)__hak_hdr_slot(p, &sc, "not a live block (free page or bad header)");
	hak_hdr_write(slot, sc, hd->owner);
	hak_vg_alloc(slot, __hak_class_size[sc], false);	/* whole again, then freed */
	/*
	 * The class-less bin's push that sent p here gave it the free mark.
	 * Cut at its slot's start (delta 0), p's mark word is the very word
	 * the slot's push below tests: it would take the slot for a block
	 * freed twice, and park it for good once its heap has lent blocks
	 * (stolen from, or cached by an idle owner's freer). The aligned
	 * header proves it live (a second free finds the slot's own header,
	 * restored above, and goes the usual way). Cut further in, the mark
	 * stayed in the slot's data, where the next block cut at the same
	 * offset (whose program need not write it) carried it while live, as
	 * did the block realloc copied it into: their frees were taken for
	 * double frees (and parked, or crashed the owner's walk of a run).
	 * So it is cleared for every cut. Fail-fast level 2 keeps its own
	 * mark there, and ours was not written.
	 */
	if (hak_ff_level() < 2)
		hak_vg_set_mark(p, 0);
	/*
	 * The push re-checks the header just written (always a pass here);
	 * the barrier keeps sparse from calling that a self-comparison.
	 */
	barrier();
	__hak_tcache_push(slot, sc);
}

static void overflow_slow(void *p, uintptr_t ix)
{
	unsigned c = (unsigned)(ix / 4);
	struct hak_tbin *b = &__hak_tc.bins[c];
	struct hak_heap *h;
	int saved = errno;

	if (unlikely(c >= HAK_NCLASS)) {
		__hak_tbin_set_count(b, 0);	/* the sentinel bin holds nothing */
		free_unclassed(p);
		errno = saved;
		return;
	}
	/*
	 * The push took room for p, which is not on the list yet: give it
	 * back until p is linked, so the bin's count is its list's length
	 * while the calls below look at the bin. An attach's kept_restore
	 * sets the count afresh, and the purge tick's idle-bin trim
	 * (trim_idle_bins) takes the count for the list's: with p counted
	 * and not listed, a trim left the bin one block short of its count,
	 * and once emptied by pops its count wrapped (head NULL, count huge):
	 * the next trim to a capacity (adaptive sizing) followed the NULL
	 * head (larson_sim, hardened: SEGV at 0 in bin_trim).
	 */
	b->room++;
	h = heap_of_thread();
	if (unlikely(!h)) {
		/*
		 * No heap could be attached (metadata memory exhausted): hand
		 * the block to its slab's owner as a remote free.
		 */
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)p));

		__hak_remote_push(s, p, p, 1);	/* p does not stay */
		errno = saved;
		return;
	}
	rf_tag_set(0);	/* look at the idle owner again */
	runs_send_any();
	heap_enter(h);
	__hak_purge_tick();
	__hak_set_link(p, b->head);
	b->head = p;
	b->room--;		/* may be "minus one": spilled below */
	settle_if_any(h, true);
	if (__hak_tbin_count(b) > b->cap) {
		uint32_t n = __hak_tbin_count(b) - b->cap / 2;

		if (n > HAK_SPILL)
			n = HAK_SPILL;
		b->spare += n;
		if (b->spare >= b->cap / 2) {
			b->spare = 0;
			HAK_STAT_ADD(h, overflows, 1);
			hak_adapt_on_overflow(c);
		}
		bin_spill(h, b, c, n);
	}
	heap_exit(h);
	late_done();
	errno = saved;
}

/* ---- thread attach / detach ---- */

static struct hak_heap *heap_new(void)
{
	static unsigned next_tag __boot_once;
	struct hak_heap *h = __hak_meta_alloc(sizeof(*h));
	unsigned n;

	if (!h)
		return NULL;
	/*
	 * Tags 1..HAK_TAG_MAX (254; 0xff is the tag byte of a thread without
	 * a heap, HAK_TAGX_NONE), round robin: two heaps may share one, which only makes
	 * a free between them look local (the block is then cached by the
	 * freeing thread, as every free was before tags; the double-free
	 * confirmation then counts every heap as lent).
	 */
	n = arch_fetch_add(&next_tag, 1u);
	h->tag = (uint8_t)(1 + n % HAK_TAG_MAX);
	if (n >= HAK_TAG_MAX && !arch_load_relaxed(&tags_shared))
		arch_store_relaxed(&tags_shared, 1);
	hak_lock(&heap_lock);
	h->all_next = all_heaps;
	all_heaps = h;
	nr_heaps++;
	hak_unlock(&heap_lock);
	return h;
}

static struct hak_heap *list_pop(struct hak_heap **list) __must_hold(&heap_lock)
{
	struct hak_heap *h = *list;

	if (h)
		*list = h->pool_next;
	return h;
}

static struct hak_heap *pool_pop_from(struct hak_heap **list)
{
	struct hak_heap *h;

	hak_lock(&heap_lock);
	h = list_pop(list);
	hak_unlock(&heap_lock);
	if (h)
		h->pool_next = NULL;
	return h;
}

static void pool_push_to(struct hak_heap **list, struct hak_heap *h)
{
	hak_lock(&heap_lock);
	h->pool_next = *list;
	*list = h;
	hak_unlock(&heap_lock);
}

/* A pooled heap for a thread that attaches: a scavenge's too (heap_scav). */
static struct hak_heap *heap_pool_pop(void)
{
	struct hak_heap *h;

	hak_lock(&heap_lock);
	h = list_pop(&heap_pool);
	if (!h)
		h = list_pop(&heap_scav);
	hak_unlock(&heap_lock);
	if (h)
		h->pool_next = NULL;
	return h;
}

static void heap_pool_push(struct hak_heap *h)
{
	pool_push_to(&heap_pool, h);
}

static bool list_unlink(struct hak_heap **pp, struct hak_heap *h) __must_hold(&heap_lock)
{
	for (; *pp; pp = &(*pp)->pool_next) {
		if (*pp == h) {
			*pp = h->pool_next;
			return true;
		}
	}
	return false;
}

/* Take h out of the pool if it is there (not adopted, not being scavenged). */
static bool heap_pool_take(struct hak_heap *h)
{
	bool found;

	hak_lock(&heap_lock);
	found = list_unlink(&heap_pool, h) || list_unlink(&heap_scav, h);
	hak_unlock(&heap_lock);
	if (found)
		h->pool_next = NULL;
	return found;
}

/* CPUs in this thread's affinity mask (a cpuset limits it), at least 1. */
static unsigned count_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

/*
 * The CPUs this process may run on, counted once, by the first thread to
 * attach (normally the main thread, at its first malloc, before a program
 * pins its workers). Boxes size their sharding by it too: a box that
 * counted the mask of its own first caller got 1 CPU when that caller was
 * a worker pinned to one, and so 2 L2.5 shards for 64 producers on any
 * machine (Documentation/benchmarks.md, producer-consumer-mid at 16 and 64
 * pairs).
 */
unsigned __hak_nr_cpus(void)
{
	unsigned n = arch_load_relaxed(&nr_cpus);

	if (unlikely(!n)) {
		n = count_cpus();
		arch_store_relaxed(&nr_cpus, n);
	}
	return n;
}

/*
 * Thread exit: keep the bins in the heap, as they are, for the next thread
 * that adopts it. Flushing them block by block to their slabs, and the
 * next thread refilling from those cold lists, were most of a short-lived
 * thread's cost in the allocator (thread-churn: 24k of 42k instructions
 * and nearly all data cache misses per thread). The blocks stay counted
 * out of their slabs, as in any bin, and carry the free key.
 */
static void kept_save(struct hak_tcache *tc, struct hak_heap *h)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		struct hak_tbin *b = &tc->bins[c];

		h->kept[c] = (struct hak_kept_bin){ b->head, __hak_tbin_count(b) };
		b->head = NULL;
		b->cap = 0;
		__hak_tbin_set_count(b, 0);
	}
}

/*
 * Attach: the bins of the heap's last thread become this thread's, down to
 * this thread's capacities (which may be smaller: more threads live, or
 * the adaptive box's fresh start).
 */
static void kept_restore(struct hak_heap *h, struct hak_tcache *tc)
{
	unsigned c;

	/*
	 * The idle-bin check (trim_idle_bins) starts over: the bins it saw
	 * are the last thread's, the very heads and counts restored here, so
	 * the new thread's first call would take them for unused since and
	 * flush them whenever the heap sat pooled for an eighth of the delay,
	 * undoing the kept bins and the prewarm (tls_prewarm/prewarm_first).
	 */
	memset(h->bin_seen, 0, sizeof(h->bin_seen));
	memset(h->bin_seen_n, 0, sizeof(h->bin_seen_n));
	for (c = 0; c < HAK_NCLASS; c++) {
		struct hak_kept_bin *k = &h->kept[c];
		struct hak_tbin *b = &tc->bins[c];

		if (!k->head)
			continue;
		if (b->head) {			/* never: bins are empty at attach */
			flush_list(h, k->head);
		} else {
			b->head = k->head;
			__hak_tbin_set_count(b, k->n);
			if (k->n > b->cap)
				bin_trim(h, b, b->cap);
		}
		*k = (struct hak_kept_bin){ NULL, 0 };
	}
}

/* A pooled heap's kept bins back to their slabs (trim, decay; h held). */
static void kept_flush(struct hak_heap *h)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		struct hak_kept_bin *k = &h->kept[c];

		if (!k->head)
			continue;
		HAK_STAT_ADD(h, blocks_flushed, k->n);
		flush_list_home(h, k->head, false);
		*k = (struct hak_kept_bin){ NULL, 0 };
	}
}

/*
 * The thread of tc lets go of h (entered): its bins are kept with the heap
 * for the next thread, what is owed to it is collected and its empty slabs
 * released; h counts as pooled from now (thread exit, hand-over).
 */
static void heap_leave(struct hak_tcache *tc, struct hak_heap *h)
{
	runs_send_any();	/* before collect_all: some may be h's own */
	kept_save(tc, h);
	settle_if_any(h, true);
	collect_all(h);
	release_empty(h);
	arch_store_relaxed(&h->active_ms, __hak_now_ms());	/* pooled since */
	arch_store_relaxed(&h->attached, 0);
}

/*
 * ---- heap hand-over ----
 *
 * A thread that hands its data to a successor and exits (a worker replaced
 * by a fresh thread, a pipeline stage restarted, larson's lanes) pools its
 * heap only after the successor started, so the successor attached to
 * another heap, and every free of what it inherited is a free of another
 * heap's block: the out-of-line path, and a block it caches as an idle
 * owner's stays foreign each time it frees it again (at 16 threads under
 * callgrind, 64 instructions per larson operation in __hak_free_remote).
 * So a thread that frees a block of a pooled heap holding more than twice
 * what its own heap has out (bytes_out: blocks out of the heap's slabs,
 * wherever they are) takes that heap: its own goes to the pool with its
 * bins kept, as at thread exit, and the pooled heap's kept bins become its
 * bins, as at attach (the thread keeps its capacities). The test keeps a
 * thread on the heap that holds most of its data: a long-lived thread with
 * data of its own keeps its heap, and one hand-over makes the next one
 * need a heap larger still, so threads do not trade heaps back and forth.
 * Nothing moves between heaps, so a slab's owner still never changes; only
 * which thread holds which heap. heap_lock is taken once per try (a walk
 * of the pool and of heap_scav); after a failed take (the heap was adopted
 * or is in a scavenge's hands) the next HAK_IDLE_FREES frees of pooled
 * heaps do not try.
 */
static bool heap_handover(struct hak_tcache *tc, struct hak_heap *to)
{
	struct hak_heap *h = tc->heap;
	uint32_t cap[HAK_NCLASS];
	unsigned c;

	if (handover_skip) {
		handover_skip--;
		return false;
	}
	if (!h || h->depth || enter_waits ||
	    arch_load_relaxed(&to->stats.bytes_out) <=
	    2 * arch_load_relaxed(&h->stats.bytes_out))	/* idle_collect writes it too */
		return false;
	if (!heap_pool_take(to)) {
		handover_skip = HAK_IDLE_FREES;	/* adopted or scavenged meanwhile */
		return false;
	}
	to->adopted++;
	heap_enter(h);
	for (c = 0; c < HAK_NCLASS; c++)
		cap[c] = tc->bins[c].cap;
	heap_leave(tc, h);
	heap_exit(h);
	heap_pool_push(h);

	heap_enter(to);
	arch_store_relaxed(&to->attached, 1);
	HAK_STAT_ADD(to, handovers, 1);
	tc->heap = to;
	tc->tag = to->tag;
	tc->tagx = HAK_TAGX(to->tag);
	for (c = 0; c < HAK_NCLASS; c++)
		__hak_tbin_set_cap(&tc->bins[c], cap[c]);
	kept_restore(to, tc);
	collect_all(to);
	heap_exit(to);
	rf_owner = NULL;	/* the idle-owner memo may name either heap */
	rf_tag_set(0);
	return true;
}

void __hak_tcache_direct_setup(void)
{
	/* every direct request to the profiler's countdown (lib/alloc.h) */
	if (hak_prof_sampling())
		memset(__hak_tc.size_ix, 4 * HAK_CLASS_NONE, sizeof(__hak_tc.size_ix));
}

struct hak_heap *__hak_heap_attach(void)
{
	struct hak_tcache *tc = &__hak_tc;
	uint32_t cap[HAK_NCLASS];
	struct hak_heap *h;
	size_t share;
	unsigned c;

	__hak_init();
	hak_hd_init();		/* before this thread writes any link */
	if (hak_hd_on())
		tc->hd_secret = hak_hd_secret();	/* and before it pops one */
	__hak_nr_cpus();
	if (unlikely(!arch_load_acquire(&shard_ready)))
		shard_setup();
	h = heap_pool_pop();
	if (h)
		h->adopted++;
	else
		h = heap_new();
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	heap_enter(h);
	arch_fetch_add(&nr_live, 1u);
	arch_store_relaxed(&h->attached, 1);
	tc->heap = h;
	tc->tag = h->tag;
	share = thread_share(tcache_bytes);
	for (c = 0; c < HAK_NCLASS; c++)
		cap[c] = default_cap(share, c);
	hak_adapt_initial_caps(cap);
	for (c = 0; c < HAK_NCLASS; c++)
		if (__hak_sharded_class(c))
			cap[c] = __hak_shard_cap_of(c);
	for (c = 0; c <= HAK_NCLASS; c++) {
		struct hak_tbin *b = &tc->bins[c];

		b->mask = __hak_class_mask[c] | HAK_MASK_HIGH;
		__hak_tbin_set_cap(b, c < HAK_NCLASS ? cap[c] : 0);
	}
	memset(cap_lift, 0, sizeof(cap_lift));	/* a thread attaching again */
	__hak_tcache_direct_setup();
	tc->tagx = HAK_TAGX(h->tag);
	rf_tag_set(__hak_rf_tag);	/* rfx follows our tag */
	/*
	 * After the exit destructor (state EXITING) the key may never be
	 * called again: the slow path that attached detaches (late_done).
	 */
	if (tc->state == HAK_T_EXITING) {
		tc->state = HAK_T_LATE;
	} else {
		tc->state = HAK_T_LIVE;
		__hak_thread_register(tc);
	}
	kept_restore(h, tc);
	collect_all(h);
	heap_exit(h);
	return h;
}

void __hak_heap_detach(void)
{
	struct hak_tcache *tc = &__hak_tc;
	struct hak_heap *h = tc->heap;

	if (!h) {
		/* a thread that never attached (a grow area only) exits too */
		tc->state = HAK_T_EXITING;
		return;
	}
	heap_enter(h);
	heap_leave(tc, h);
	tc->heap = NULL;
	tc->tag = 0;
	tc->tagx = HAK_TAGX_NONE;
	tc->state = HAK_T_EXITING;
	tc->exits++;
	rf_owner = NULL;
	rf_tag_set(0);
	arch_fetch_add(&nr_live, -1u);
	if (alloc_counted) {
		alloc_counted = false;
		arch_fetch_add(&nr_alloc, -1u);
	}
	heap_exit(h);
	heap_pool_push(h);
}

void __hak_heap_flush_self(void)
{
	struct hak_tcache *tc = &__hak_tc;
	struct hak_heap *h = tc->heap;
	unsigned c;

	if (!h)
		return;
	runs_send_any();
	heap_enter(h);
	for (c = 0; c < HAK_NCLASS; c++)
		bin_trim(h, &tc->bins[c], 0);
	depot_drain(h);
	settle_if_any(h, true);
	collect_all(h);
	release_empty(h);
	heap_exit(h);
}

/*
 * Collect the remote frees and release the empty slabs of the pooled heaps;
 * with kept, also send their kept bins home (trim; a refill about to take
 * new pages leaves them to the threads that will adopt the heaps).
 */
static void scavenge_pool(bool kept)
{
	size_t left, n = 0;
	struct hak_heap *h;

	hak_lock(&heap_lock);
	left = nr_heaps;
	hak_unlock(&heap_lock);
	/*
	 * One heap at a time, and each goes back where an attaching thread
	 * finds it (heap_scav, then the pool) as soon as its pass is done:
	 * when the pass kept the heaps it took to itself, every thread that
	 * started meanwhile found the pool empty and made a new heap, with a
	 * superslab of its own (54-165 heaps for at most 65 threads, 32
	 * parents starting short threads in turn: selftests/core/churn_heaps;
	 * Documentation/benchmarks.md, "Threads far past the cores"). Each
	 * pass is bounded (by the heaps there are, then by what the first
	 * moved), so two scavenges passing heaps back and forth end.
	 */
	while (left-- && (h = pool_pop_from(&heap_pool))) {
		heap_enter(h);
		settle_if_any(h, false);
		if (kept)
			kept_flush(h);
		heap_exit(h);
		pool_push_to(&heap_scav, h);
		n++;
	}
	/*
	 * Collect in a second pass: a kept bin holds other heaps' blocks (an
	 * idle owner's blocks cached by the freer, blocks taken from an idle
	 * heap), and its flush sends them home to heaps settled before it. A
	 * heap adopted in between is collected by its new thread (attach).
	 */
	while (n-- && (h = pool_pop_from(&heap_scav))) {
		heap_enter(h);
		collect_all(h);
		release_empty(h);
		heap_exit(h);
		heap_pool_push(h);
	}
}

void __hak_heap_scavenge_pool(void)
{
	struct hak_heap *h = __hak_tc.heap;

	scavenge_pool(true);
	/* the kept bins may have sent blocks home to our own heap too */
	if (h && arch_load_relaxed(&h->pending)) {
		heap_enter(h);
		collect_all(h);
		release_empty(h);
		heap_exit(h);
	}
}

void __hak_heap_stats(struct hak_heap_stats *sum, size_t *nr)
{
	struct hak_heap *h;

	*sum = (struct hak_heap_stats){ 0 };
	hak_lock(&heap_lock);
	for (h = all_heaps; h; h = h->all_next) {
		sum->refills += arch_load_relaxed(&h->stats.refills);
		sum->overflows += arch_load_relaxed(&h->stats.overflows);
		sum->blocks_refilled += arch_load_relaxed(&h->stats.blocks_refilled);
		sum->blocks_flushed += arch_load_relaxed(&h->stats.blocks_flushed);
		sum->remote_frees += arch_load_relaxed(&h->stats.remote_frees);
		sum->remote_collected += arch_load_relaxed(&h->stats.remote_collected);
		sum->slabs_taken += arch_load_relaxed(&h->stats.slabs_taken);
		sum->slabs_released += arch_load_relaxed(&h->stats.slabs_released);
		sum->bytes_out += arch_load_relaxed(&h->stats.bytes_out);
		sum->handovers += arch_load_relaxed(&h->stats.handovers);
	}
	*nr = nr_heaps;
	hak_unlock(&heap_lock);
}

/*
 * False: backed off (lock.h), nothing held. The wait for a scan backs off
 * to naps, as heap_enter_wait: the scanner may be a default-policy thread
 * on the CPU of a real-time forker (selftests/core/fifo_scan_wait: 1.0-4.0
 * s for one fork before).
 */
bool __hak_heap_fork_prepare(void) __acquires(&heap_lock)
{
	bool took = false;
	uint64_t start = 0;
	unsigned n = 0;

	arch_fetch_add(&scan_stop, 1);
	scan_stop_mine++;
	while (arch_load_acquire(&heap_scanning) && !scanning_here &&
	       !__hak_fork_scan_skip(&start)) {
		if (__hak_fork_backoff()) {
			__acquire(&heap_lock);	/* the context says taken (lock.h) */
			goto out;
		}
		__hak_os_backoff(n++);
	}
	took = hak_lock_fork_prepare(&heap_lock);
out:
	if (!took) {
		arch_fetch_add(&scan_stop, -1);
		scan_stop_mine--;
	}
	return took;
}

void __hak_heap_fork_parent(void) __releases(&heap_lock)
{
	hak_lock_fork_parent(&heap_lock);
	arch_fetch_add(&scan_stop, -1);
	scan_stop_mine--;
}

bool __hak_heap_scanning_here(void)
{
	return scanning_here;
}

/*
 * In the child, before anything else runs: the remote pushes that threads
 * not here left half done (h->pushing, __hak_remote_push). A slab whose
 * remote stack holds blocks but which is on no pending stack is pushed
 * onto its owner's, as its pusher would have. Whatever else that thread
 * was doing, a slab with an empty stack, or one on its owner's pending
 * stack, is left as it is. The forking thread's own push (a fork from a
 * signal handler that interrupted it) is left to its frame, which
 * finishes it when the handler returns; so is an owner with a frame in it
 * (scan_lk held: the forking thread's, or a thread's that is not here and
 * whose heap nobody enters again), whose frame may hold its pending stack
 * taken whole. One load per heap, and a walk of one pending stack per
 * push found half done.
 */
static void fork_child_pushes(void)
{
	struct hak_heap *h, *owner, *me = __hak_tc.heap;
	struct hak_slab *s, *p;

	for (h = all_heaps; h; h = h->all_next) {
		s = arch_load_relaxed(&h->pushing);
		if (!s || h == me)
			continue;
		arch_store_relaxed(&h->pushing, NULL);	/* its thread is not here */
		/*
		 * A thread caught past its push onto the pending stack, before
		 * its clear, names a slab its owner may have collected and
		 * released since, and a trim unmapped with its superslab
		 * (selftests/core/fork_push_stale): read only a live
		 * superslab's header. A released slab's has no owner and an
		 * empty remote stack.
		 */
		if (!__hak_ss_owns((uintptr_t)s))
			continue;
		owner = s->owner;
		if (!owner || !HAK_RW_COUNT(arch_load_relaxed(&s->remote)) ||
		    arch_load_relaxed(&owner->scan_lk))
			continue;
		for (p = arch_load_relaxed(&owner->pending); p && p != s; p = p->pending_next)
			;
		if (p)
			continue;
		pending_push(s);
		nr_pushes_finished++;
	}
}

unsigned long __hak_heap_fork_pushes(void)
{
	return nr_pushes_finished;
}

void __hak_heap_fork_child(void) __releases(&heap_lock)
{
	hak_lock_fork_child(&heap_lock);
	arch_store_release(&scan_stop, --scan_stop_mine);
	/*
	 * A scan another thread ran (fork_scan_skip: another handler fork's
	 * frame, or one waited for past the bound): that thread is not here,
	 * and neither the flag nor the scan lock it held on a heap would ever
	 * be cleared. The forking thread's own heap may be that one (it was
	 * idle), whose next slow path waited for it in heap_enter for good
	 * (selftests/core/fork_scan_left). What the scan left half done on
	 * that heap stays so, as under any lock a fork leaves.
	 */
	if (!scanning_here && arch_load_relaxed(&heap_scanning)) {
		struct hak_heap *h;

		for (h = all_heaps; h; h = h->all_next)
			(void)arch_cmpxchg(&h->scan_lk, HAK_SCAN_OTHER, 0);
		arch_store_release(&heap_scanning, 0);
	}
	if (arch_load_relaxed(&scan_gate) != gate_token())
		arch_store_relaxed(&scan_gate, 0);
	fork_child_pushes();
	/*
	 * Only the forking thread lives on: the parent's other threads
	 * counted as live would keep the child's caches at a share of the
	 * budget for good (thread_share, __hak_tcache_live_share).
	 */
	arch_store_relaxed(&nr_live, __hak_tc.heap ? 1u : 0u);
	/*
	 * The decay pass's fence needs the registration, which a kernel that
	 * does not carry it into the child refuses here: then no class is
	 * sharded from now on (the generic paths serve their small bins).
	 */
	if (arch_load_relaxed(&__hak_shard_min) != UINT32_MAX && !__hak_os_fence_others_init())
		arch_store_relaxed(&__hak_shard_min, UINT32_MAX);
	arch_store_relaxed(&nr_alloc, alloc_counted ? 1u : 0u);
}
