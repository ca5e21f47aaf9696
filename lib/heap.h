/* SPDX-License-Identifier: MIT */
/*
 * Heaps: the slab-owning half of a thread. A heap holds, per class, a list
 * of its slabs that have free blocks ("partial", including a few empty
 * ones), and a lock-free stack of its slabs that received remote frees
 * ("pending"). A thread's tcache draws batches from its heap and returns
 * overflow to it.
 *
 * A heap outlives its thread: at thread exit the tcache's bins are kept in
 * the heap (kept[], warm), empty slabs are released and the heap goes to a
 * pool, to be adopted whole by the next new thread, which starts with those
 * bins. So heap pointers never dangle, a slab's owner never changes while
 * it has live blocks, and remote frees to a dead thread's slabs are
 * collected by whichever thread adopts its heap. A pooled heap's kept bins
 * go back to their slabs at trim, or once it has sat a purge delay in the
 * pool (decay pass).
 *
 * Lock order: heap_lock (pool and list of all heaps) -> ss_lock. The
 * partial lists and slab fields marked "owner" in superslab.h are touched
 * only by the thread that has the heap attached.
 */
#ifndef HAK_HEAP_H
#define HAK_HEAP_H

#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>
#include <hak/compiler.h>
#include "size_class.h"
#include "superslab.h"
#include "tcache.h"
#include "init.h"
#include "boxes/header_classidx/header.h"

struct hak_heap_stats {
	uint64_t refills;		/* tcache refills */
	uint64_t overflows;		/* tcache flushes on free */
	uint64_t blocks_refilled;
	uint64_t blocks_flushed;
	uint64_t remote_frees;		/* blocks pushed to another heap's slab */
	uint64_t remote_collected;	/* blocks collected from this heap's slabs */
	uint64_t slabs_taken;
	uint64_t slabs_released;
	uint64_t bytes_out;		/* bytes of blocks out of this heap's slabs */
	uint64_t handovers;		/* taken from the pool by a thread that had one */
};

/* A bin of the thread that last detached the heap (owner, or pool holder). */
struct hak_kept_bin {
	void *head;
	uint32_t n;
};

/*
 * Pages of empty slabs a heap keeps for any class (lib/heap.c, spare
 * slabs): 2 MiB.
 */
#ifndef HAK_SPARE_PAGES
#define HAK_SPARE_PAGES	32
#endif

struct hak_heap {
	struct hak_slab *partial[HAK_NCLASS];
	uint16_t nempty[HAK_NCLASS];	/* empty slabs kept on partial[c] */
	/*
	 * HAK_FILL_* (owner; lib/heap.c, refill_young): the class's first
	 * refill in this heap asks for a page's worth of blocks.
	 */
	uint8_t filled[HAK_NCLASS];
	/*
	 * Empty slabs any class of the same span may take (owner; linked by
	 * next): the ones slab_emptied would give back to the superslab.
	 */
	struct hak_slab *spare;
	unsigned nspare;		/* pages on spare */
	struct hak_slab *pending;	/* remote-freed slabs; atomic push */
	struct hak_heap *all_next;	/* heap_lock */
	struct hak_heap *pool_next;	/* heap_lock */
	int attached;			/* atomic: 1 while a thread holds it, 0 in the pool */
	uint8_t tag;			/* 1..255, in page_owner[] and headers */
	uint32_t adopted;		/* times taken from the pool */
	unsigned page_pass_ms;		/* last in-slab page purge pass (owner) */
	uint64_t page_pass_act;		/* blocks flushed + collected - refilled by then */
	int scan_lk;			/* atomic: HAK_SCAN_* (lib/heap.c) */
	int scan_want;			/* atomic: the owner waits for scan_lk */
	/*
	 * atomic, never cleared: another thread has cached blocks of this
	 * heap's slabs (an idle owner's, lib/heap.c), so a free block of
	 * them may sit where this heap cannot look (suspects).
	 */
	int lent;
	unsigned depth;			/* owner's nesting of scan_lk */
	/*
	 * atomic: the owner is in a sharded path (shard_alloc, shard_free),
	 * which does not take scan_lk: a scanner that took scan_lk fences
	 * the owner's thread (__hak_os_fence_others) and backs off while
	 * this is set.
	 */
	int shard_busy;
	unsigned active_ms;		/* atomic: the owner's last purge tick, or detach */
	unsigned bin_pass_ms;		/* last idle-bin check (owner) */
	void *bin_seen[HAK_NCLASS];	/* bin heads at that check (owner) */
	uint32_t bin_seen_n[HAK_NCLASS];	/* and their counts */
	/*
	 * The last thread's bins while the heap is pooled (empty while a
	 * thread has it); the blocks keep a valid free mark whichever
	 * thread adopts the heap, the mark being one key for all (tcache.h).
	 */
	struct hak_kept_bin kept[HAK_NCLASS];
	/*
	 * The slab whose remote stack the holding thread is pushing to
	 * (__hak_remote_push, lib/heap.c), NULL between pushes: a fork child
	 * finishes a push that a thread not in the child left half done.
	 * Holder only; next to the stats its remote frees write anyway.
	 */
	struct hak_slab *pushing;
	struct hak_heap_stats stats;
};

/* Owner-written counters that the statistics reader may read at any time. */
#define HAK_STAT_ADD(h, field, n) \
	arch_store_relaxed(&(h)->stats.field, arch_load_relaxed(&(h)->stats.field) + (n))

/* Attach a heap to the calling thread (first slow path of a thread). */
struct hak_heap *__hak_heap_attach(void) __must_check;
/*
 * While the heap profiler samples, point this thread's direct size table
 * at the always-empty bin (lib/alloc.h): at attach, and at the end of
 * init for the initialising thread, which may have attached from inside
 * init (a malloc made by pthread_atfork) before the options were read.
 */
void __hak_tcache_direct_setup(void);
/* Thread exit: flush the tcache, release what is empty, pool the heap. */
void __hak_heap_detach(void);
/* Flush the calling thread's tcache and release its empty slabs (trim). */
void __hak_heap_flush_self(void);
/*
 * Purge the whole 4 KiB pages of free blocks inside the calling thread's
 * slabs that have seen no allocation or free for delay ms (purge tick).
 * Bytes purged.
 */
size_t __hak_heap_purge_pages(unsigned now, unsigned delay);
/*
 * The same for every other heap whose thread has not called the allocator
 * for delay ms (decay pass, any thread). Bytes purged.
 */
size_t __hak_heap_purge_idle(unsigned now, unsigned delay);
/* Bytes purged that way, ever. */
size_t __hak_heap_pages_purged(void);
/* Return pooled heaps' kept bins, remote frees and empty slabs (trim). */
void __hak_heap_scavenge_pool(void);

/* Half-done remote pushes this process's fork children finished (tests). */
unsigned long __hak_heap_fork_pushes(void);

/* Threads with a heap attached (a hint: it may change at once). */
unsigned __hak_heap_nr_live(void);

/*
 * Tag of the heap that owns block p's slab: the page-owner line's. With
 * the header box the header's owner byte must say the same (it always
 * does for a block malloc returned); a free that trusted a corrupt one
 * cached another heap's block in this thread's bins.
 */
static __always_inline unsigned __hak_block_owner(uintptr_t a)
{
	unsigned o = __hak_page_owner(a);

	if (HAK_HDR_SIZE && unlikely(hak_hdr_owner((const void *)a) != o))
		__hak_bad_free((const void *)a, "corrupt block header (owner byte)");
	return o;
}

/* Default tcache capacity of class c. */
uint32_t __hak_tcache_cap(unsigned c);
void __hak_tcache_set_bytes(size_t bytes);
/* Header box: the checked slot of aligned block p (heap.c), else report what. */
uintptr_t __hak_hdr_slot(const void *p, unsigned *sc, const char *what);

/*
 * The owner tag whose blocks this thread caches as an idle owner's (0:
 * none): the free slow path pushes them on the bin at once (lib/heap.c).
 */
extern HAK_HIDDEN __thread uint32_t __hak_rf_tag __attribute__((tls_model("initial-exec")));

/* Remote free of a chain head..tail of n blocks of slab s (lock-free). */
void __hak_remote_push(struct hak_slab *s, void *head, void *tail, uint32_t n);

/* Sum of every heap's counters (including pooled ones). */
void __hak_heap_stats(struct hak_heap_stats *sum, size_t *nr_heaps);

bool __hak_heap_fork_prepare(void);
void __hak_heap_fork_parent(void);
void __hak_heap_fork_child(void);
/* This thread runs a scan of other heaps (fork's prepare, init.c). */
bool __hak_heap_scanning_here(void);

#endif /* HAK_HEAP_H */
