/* SPDX-License-Identifier: MIT */
/*
 * The OS layer: the only place hakmem talks to the kernel about memory.
 * mmap/munmap/mremap/madvise/mprotect, and mincore, nothing else. Every call
 * but mincore (whose one caller falls back to what it does without it) can
 * be made to fail on purpose by the fault-injection test hook
 * (CONFIG_HAK_FAULT_INJECT) so tests reach each caller's error path.
 */
#ifndef HAK_OS_H
#define HAK_OS_H

#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <hak/compiler.h>
#include "lock.h"

#include <stdint.h>
#include <sched.h>
#include <asm/processor.h>

#define HAK_OS_PAGE	4096UL

/* Fresh zeroed read-write memory of len bytes (page multiple), or NULL. */
void *__hak_os_map(size_t len) __must_check;
/* Same, aligned to align (a power of two >= page size), or NULL. */
void *__hak_os_map_aligned(size_t len, size_t align) __must_check;
/*
 * Reserve len bytes of zeroed read-write address space (a grow area):
 * no swap accounting (but for vm.overcommit_memory=2, which ignores
 * MAP_NORESERVE), not counted against the memory limit (only touched
 * pages become memory); NULL when the kernel refuses it.
 */
void *__hak_os_reserve(size_t len) __must_check;
/* Give back what __hak_os_reserve reserved (never counted as mapped). */
void __hak_os_unreserve(void *p, size_t len);
/*
 * A sparse table that costs no commit charge, not even under
 * vm.overcommit_memory=2 (which ignores MAP_NORESERVE and charges every
 * private writable mapping in full): len bytes reserved read-only (reads
 * see zeros). Its parts are made writable one at a time with
 * __hak_os_open, which the kernel
 * charges under mode 2: false with errno ENOMEM when refused (at the
 * commit limit, past vm.max_map_count, or the fault-injection site
 * HAK_OS_PROTECT). Never counted as mapped.
 */
void *__hak_os_reserve_ro(size_t len) __must_check;
bool __hak_os_open(void *p, size_t len) __must_check;
/*
 * Is vm.overcommit_memory 2 (read at the first call)? Then a MAP_NORESERVE
 * reserve (__hak_os_reserve) is charged in full against the commit limit.
 */
bool __hak_os_commit_strict(void);
/* Is a soft RLIMIT_AS or RLIMIT_DATA under 64 GiB? (Asked anew each call.) */
bool __hak_os_space_tight(void);
/*
 * Is address space memory here (either of the two above)? Then a mapping
 * made ahead of use (the superslab stock, the grow areas, the L2.5 pool's
 * regions) is charged whole, so they map little ahead or nothing.
 */
bool __hak_os_space_costly(void);
/*
 * Read a small file (a /proc or cgroup one) into buf, NUL-terminated: bytes
 * read, or -1 when it cannot be opened. Safe inside malloc: no cancellation
 * point, errno unchanged.
 */
ssize_t __hak_os_read_file(const char *path, char *buf, size_t size);
/*
 * Sleep ns nanoseconds (less if a signal comes), and write len bytes of
 * buf to fd once: neither is a cancellation point (safe inside malloc,
 * free and fork's handlers), errno unchanged.
 */
void __hak_os_nap(unsigned long ns);
void __hak_os_write(int fd, const void *buf, size_t len);
/*
 * len random bytes from the kernel (getrandom, GRND_NONBLOCK) through a
 * system call, never an interposer's getrandom (libfaketime's, os.c
 * __hak_os_clock): bytes written, or -1. No cancellation point, errno
 * unchanged.
 */
ssize_t __hak_os_getrandom(void *buf, size_t len);
/*
 * The kernel's id of this process (a system call), never an interposer's
 * getpid: libfaketime's FAKETIME_FAKEPID answers one id in the parent and
 * every child, which the fork bookkeeping (init.c) and the rlimit test of
 * the interposed prlimit tell processes apart by. errno unchanged.
 */
pid_t __hak_os_getpid(void);

/*
 * In a seccomp sandbox (lib/os.c, where the state is set: at the first
 * malloc from /proc/self/status, or by the interposed prctl), the calls
 * glibc's malloc does not make are skipped: their callers take the answer
 * they take when the call fails. Never cleared.
 */
enum hak_os_sandbox {
	HAK_SANDBOX_NONE,
	HAK_SANDBOX_AT_START,	/* a filter was in place at the first malloc */
	HAK_SANDBOX_PRCTL,	/* the program asked for a filter or no_new_privs */
};
extern int __hak_os_sandbox;

static inline bool __hak_os_sandboxed(void)
{
	return __atomic_load_n(&__hak_os_sandbox, __ATOMIC_RELAXED) != HAK_SANDBOX_NONE;
}
/*
 * A filter the program installed after start-up: even the calls every
 * glibc program makes while it starts (openat, read, prlimit64), which a
 * filter in place at exec must allow, may be refused.
 */
static inline bool __hak_os_sandboxed_late(void)
{
	return __atomic_load_n(&__hak_os_sandbox, __ATOMIC_RELAXED) == HAK_SANDBOX_PRCTL;
}
void __hak_os_sandbox_enter(int how);
void __hak_os_sandbox_probe(void);
/* getrlimit, or -1 (errno kept) in a late sandbox: prlimit64 is not malloc's. */
struct rlimit;
int __hak_os_getrlimit(int res, struct rlimit *rl);

/*
 * Step n (0, 1, 2, ...) of a wait for another thread that may need this
 * very CPU before we can go on (an initialising thread, a scan of our heap,
 * a lock holder preempted when threads outnumber the CPUs): spin a little,
 * then yield, then nap. The nap is what ends the wait under a real-time
 * policy: sched_yield() never hands the CPU down to a thread of lower
 * priority (a default-policy holder under a SCHED_FIFO waiter), so a wait
 * that only yielded lasted until the real-time throttle, 0.95 s of every
 * second, or forever with the throttle off (rv25, core/fifo_scan_wait).
 * No cancellation point, errno unchanged (__hak_os_nap).
 */
#define HAK_BACKOFF_SPINS	64
#define HAK_BACKOFF_YIELDS	128
#define HAK_BACKOFF_NAP_NS	50000u

/* Give the CPU up once: sched_yield, or a nap in a sandbox (not malloc's call). */
static inline void __hak_os_yield(void)
{
	if (__hak_os_sandboxed())
		__hak_os_nap(HAK_BACKOFF_NAP_NS);
	else
		sched_yield();
}

static inline void __hak_os_backoff(unsigned n)
{
	if (n < HAK_BACKOFF_SPINS)
		arch_cpu_relax();
	else if (n < HAK_BACKOFF_YIELDS)
		__hak_os_yield();
	else
		__hak_os_nap(HAK_BACKOFF_NAP_NS);
}

/*
 * The process's mappings, in address order (/proc/self/maps): open it
 * with __hak_os_maps_open (-1 when it cannot be read: no /proc), then
 * __hak_os_maps_each calls fn(start, end, arg) for each and closes it;
 * true when it read to the end. fn may unmap below start. Streamed
 * through a small stack buffer; safe inside malloc, as read_file.
 */
int __hak_os_maps_open(void);
bool __hak_os_maps_each(int fd, void (*fn)(uintptr_t start, uintptr_t end, void *arg),
			void *arg);
void __hak_os_unmap(void *p, size_t len);
/*
 * Count len bytes of reserved address space as mapped, as __hak_os_map
 * would (memory limit, fault injection): false with errno ENOMEM when
 * refused. __hak_os_uncommit takes them off again (after a purge).
 */
bool __hak_os_commit(size_t len) __must_check;
void __hak_os_uncommit(size_t len);
/*
 * A stock of address space for mappings of one length, aligned to it (the
 * superslabs): refilled by one mmap of one piece the first time and of
 * HAK_OS_STOCK_MAX pieces after, handed out a piece at a time. Each piece counts
 * as one mapping (the memory limit, the mapped bytes and the fault
 * injection site HAK_OS_MAP see it when it is taken); the untouched rest of
 * a refill is address space only. Pieces go back with __hak_os_unmap. The
 * caller serializes.
 */
#define HAK_OS_STOCK_MAX_SHIFT	5
#define HAK_OS_STOCK_MAX	(1u << HAK_OS_STOCK_MAX_SHIFT)
struct hak_os_stock {
	uintptr_t next;		/* the next piece */
	unsigned left;		/* pieces left from next on */
	unsigned shift;		/* the next refill maps 1 << shift pieces */
	unsigned long refills;	/* mmap calls made, for statistics and tests */
};
void *__hak_os_stock_take(struct hak_os_stock *st, size_t len) __must_check;
/*
 * Refill an empty st (its next batch, as a take would map it) without
 * taking a piece; false when nothing could be mapped (errno unchanged or
 * set by mmap). Lets a caller map outside its lock (superslab.c).
 */
bool __hak_os_stock_fill(struct hak_os_stock *st, size_t len) __must_check;
/* Unmap the untouched rest of st (pieces of len bytes); st is empty after. */
void __hak_os_stock_drop(struct hak_os_stock *st, size_t len);
/* Grow or shrink a mapping; may move it. NULL on failure (old one intact). */
void *__hak_os_remap(void *p, size_t old_len, size_t new_len) __must_check;
/*
 * Grow the range [p, p + old_len) to new_len bytes without moving its
 * pages: upwards (mremap in place; only when up) or, when the address
 * space after it is taken (or !up: the page after it is a guard page that
 * must stay right after the range), downwards (a fixed mapping of the free
 * space right before it). The new start, or NULL when no allowed side is
 * free (the range intact, errno unchanged: the caller maps fresh). The
 * result may span two kernel mappings.
 */
void *__hak_os_extend(void *p, size_t old_len, size_t new_len, bool up) __must_check;
/*
 * Move the pages of [src, src + len) onto [dst, dst + len), the head of a
 * mapping of the caller's (mremap MREMAP_FIXED, one call: from Linux 6.17
 * the source may span several mappings). Never touches src's contents.
 *   HAK_MOVE_DONE: moved; src is unmapped (another thread may map there at
 *     once: the caller must not touch or unmap it again).
 *   HAK_MOVE_KEPT: not moved; src intact, dst ours again (zero pages):
 *     mremap may unmap dst before it fails, and dst is mapped back with
 *     MAP_FIXED_NOREPLACE (never over someone else's mapping).
 *   HAK_MOVE_LOST: not moved; src intact, but dst could not be mapped
 *     back (another thread took part of it, or mremap failed before it
 *     unmapped dst): the caller must neither use nor unmap dst.
 *   HAK_MOVE_SPLIT: the kernel moved part of src and failed (a move of
 *     several mappings out of memory): src has holes; nothing to recover.
 * After one failure (a kernel that moves one mapping per call answers
 * EFAULT; else out of memory) and under valgrind every call answers KEPT
 * without a system call: dst may be lost at most once per process.
 */
enum hak_os_move {
	HAK_MOVE_DONE,
	HAK_MOVE_KEPT,
	HAK_MOVE_LOST,
	HAK_MOVE_SPLIT,
};
enum hak_os_move __hak_os_move(void *src, void *dst, size_t len) __must_check;
/*
 * Test hook (CONFIG_HAK_FAULT_INJECT): called when an injected move
 * failure has unmapped dst, before it is mapped back, so a test can take
 * the hole as another thread would.
 */
extern void (*hak_test_os_move_hole)(void *dst, size_t len);
/* Give the pages back; they read as zero on next touch. false on failure. */
bool __hak_os_purge(void *p, size_t len);
/*
 * Which pages of [p, p + len) (p page-aligned, len a page multiple) are
 * resident (mincore): bit 0 of vec[i] for the i-th page; false, errno set,
 * when the kernel refuses. Faults nothing in.
 */
bool __hak_os_resident(void *p, size_t len, unsigned char *vec) __must_check;
/*
 * What the kernel holds of hakmem's ranges, for the statistics: a report
 * opens a reader, counts its ranges with it and closes it.
 * __hak_os_rss_open: /proc/self/pagemap's PAGEMAP_SCAN (Linux 6.7 on)
 * where it works (not under valgrind), which tells the pages mapped to the
 * kernel's zero page (read, never written: not in Rss) from the others;
 * else mincore, which counts them as resident. A range the kernel refuses
 * (unmapped since the caller looked) counts 0. The reader's descriptor is
 * the caller's own (a report on the stack): no other thread, no fork child
 * and no program that closes descriptors can see it.
 */
struct hak_os_rss_range {
	void *p;
	size_t len;
};

struct hak_os_rss {
	int fd;			/* /proc/self/pagemap, -1: mincore */
	size_t huge;		/* bytes counted that were in huge pages (fd >= 0) */
	/* ranges copied under a layer's lock, counted once it is dropped */
	struct hak_os_rss_range *v;	/* the reader's own mapping, not malloc's */
	size_t n, cap;			/* ranges in v; room for */
	size_t early;			/* bytes counted at add: v was full */
};
void __hak_os_rss_open(struct hak_os_rss *r);
void __hak_os_rss_close(struct hak_os_rss *r);
/* Resident bytes of the pages that hold [p, p + len); adds to r->huge. */
size_t __hak_os_resident_bytes(struct hak_os_rss *r, void *p, size_t len);
/*
 * A layer's locks are never held across the kernel calls (a report over
 * 50,000 large blocks took 80 ms, and each large shard's lock ~5 ms:
 * every large malloc and free of the other threads waited). Under the
 * lock the layer reads how many ranges it has and makes room for them
 * (__hak_os_rss_reserve: if they do not fit, the lock is dropped around
 * __hak_os_rss_room, one mmap, false when the kernel refuses); copies its ranges with __hak_os_rss_add, which makes no system
 * call while there is room (past it, it counts the range at once, under
 * the lock, as before); drops the lock; and __hak_os_rss_flush asks the
 * kernel and returns the bytes of the ranges added since the last flush.
 * The answer may be a little stale: a range freed meanwhile counts 0 (or
 * what was mapped there since), one added meanwhile is missed; each is
 * what a report taken a moment earlier or later would say.
 */
bool __hak_os_rss_room(struct hak_os_rss *r, size_t n);
/*
 * Under l, which the caller holds: room for the n ranges it is about to
 * add. When they do not fit, l is dropped around the mmap, so the caller
 * must read nothing under l before this that it relies on after (a count
 * read before may have grown: __hak_os_rss_add counts the overflow).
 */
static inline void __hak_os_rss_reserve(struct hak_os_rss *r, struct hak_lock *l, size_t n)
	__must_hold(l)
{
	if (n <= r->cap - r->n)
		return;
	hak_unlock(l);
	__hak_os_rss_room(r, n);	/* refused: the rest is counted under l */
	hak_lock(l);
}
void __hak_os_rss_add(struct hak_os_rss *r, void *p, size_t len);
size_t __hak_os_rss_flush(struct hak_os_rss *r);

/*
 * Many scattered ranges to give back (a page scan): collected, then purged
 * by one process_madvise call per HAK_PURGE_BATCH ranges where the kernel
 * takes MADV_DONTNEED from a process for itself (Linux 6.13 on), which
 * flushes the other CPUs' TLBs once per call instead of once per range;
 * one madvise per range elsewhere. The ranges are not purged until
 * __hak_os_purge_flush: flush before anyone may reuse them.
 */
#define HAK_PURGE_BATCH	64

struct hak_purge_batch {
	unsigned n;
	size_t done;			/* bytes purged by earlier flushes */
	struct iovec r[HAK_PURGE_BATCH];
};

void __hak_os_purge_add(struct hak_purge_batch *b, void *p, size_t len);
/* One madvise per range from now on (HAKMEM_PURGE_BATCH=0). */
void __hak_os_purge_batch_off(void);
/* Purge what was added; bytes purged since the batch was zeroed. */
size_t __hak_os_purge_flush(struct hak_purge_batch *b);
/*
 * Guard pages (the hardened box): __hak_os_guard makes [p, p + len) fault
 * on any access, __hak_os_unguard makes it read-write memory again, and it
 * then reads as zeros: BigCache joins purged blocks over guards that a
 * split made out of pages with old data, and calls the result zeroed
 * (selftests/hardened/hd_bc_calloc). Linux 6.13
 * on: MADV_GUARD_INSTALL / MADV_GUARD_REMOVE, markers in the page table,
 * under the mmap lock taken for reading, without splitting the mapping;
 * they stay through MADV_DONTNEED, MADV_FREE, mremap and fork, and go
 * with munmap (an installed marker drops the page). Older kernels (EINVAL):
 * mprotect, which splits a mapping in three and takes the mmap lock for
 * writing, after a MADV_DONTNEED of the range (a memset when refused: an
 * mlock()ed range), as mprotect keeps the pages. Chosen once, by a probe at
 * the first call; always mprotect under valgrind (memcheck follows it). A
 * range the kernel refuses markers in (EINVAL: mlock()ed) gets mprotect.
 * false on failure (ENOMEM: with mprotect, the split would pass
 * vm.max_map_count). errno is left alone.
 */
bool __hak_os_guard(void *p, size_t len) __must_check;
bool __hak_os_unguard(void *p, size_t len) __must_check;
/*
 * Does a guard split a mapping (mprotect: it counts against
 * vm.max_map_count)? false once markers are in use and none fell back.
 */
bool __hak_os_guard_splits(void);

/*
 * Transparent hugepage advice for a 2 MiB-aligned range: MADV_HUGEPAGE
 * (on) or MADV_NOHUGEPAGE (off). false on failure (no THP in the kernel).
 */
bool __hak_os_advise_huge(void *p, size_t len, bool on);
/* MADV_COLLAPSE (Linux 6.1): make the range hugepages now. Slow: a copy. */
bool __hak_os_collapse(void *p, size_t len);

/* Bytes currently mapped through this layer, for statistics. */
size_t __hak_os_mapped(void);
/*
 * Minor page faults of the whole process so far (getrusage: one system
 * call), 0 when unknown; *peak (if not NULL) gets the resident set's
 * high-water mark in bytes from the same call (ru_maxrss), 0 when
 * unknown (in a sandbox). The purge's refault feedback (lib/purge.c).
 */
size_t __hak_os_minor_faults(size_t *peak);

/*
 * Time on a CPU plus time waiting for one on a runqueue, in ns, so far:
 * what a thread that computes accumulates whatever the machine's load,
 * and one that sleeps does not. From /proc/.../schedstat (open and read
 * with raw system calls: no stdio, no malloc, no cancellation point).
 * Where /proc cannot be read, the CPU-time clocks instead (time on a CPU
 * only, which a loaded machine shares out). The source of the figure,
 * HAK_OS_BUSY_*; two figures are comparable only from the same source.
 * Out of file descriptors: HAK_OS_BUSY_NONE (no figure) this time.
 * The purge's idle rule (lib/purge.c).
 */
enum { HAK_OS_BUSY_NONE, HAK_OS_BUSY_SCHED, HAK_OS_BUSY_CPU };
/* The calling thread's (/proc/thread-self/schedstat). */
int __hak_os_busy_self(uint64_t *ns);
/*
 * Every other thread's of the process, summed (/proc/self/task/N/
 * schedstat): three system calls per thread. A thread that exited takes its figure
 * with it (under the CPU clocks it stays in the process's). Past 64 other
 * threads the CPU clocks instead, for that reading (os.c, HAK_BUSY_TASKS_MAX).
 */
int __hak_os_busy_others(uint64_t *ns);

/*
 * clock_gettime of the kernel's clock, never an interposer's (libfaketime,
 * os.c): the vDSO's function, else the system call. No malloc, errno
 * unchanged.
 */
int __hak_os_clock(clockid_t clk, struct timespec *ts);
/*
 * The number of symbols in an ELF dynamic symbol table, from its DT_HASH
 * table (preferred) or its DT_GNU_HASH table (either may be NULL; 0 when
 * both are): the vDSO's, and a module's for the heap profiler's names.
 */
size_t __hak_os_elf_nsyms(const uint32_t *hash, const uint32_t *gnu);
/*
 * A program may define int __hak_clock_hook(clockid_t, struct timespec *)
 * to answer for the kernel in __hak_os_clock (a selftest that moves the
 * clock: selftests/lib/clock_offset.h); os.c declares it weak.
 */

/*
 * Milliseconds of CLOCK_MONOTONIC_COARSE (a vDSO read, no system call),
 * counted from the first reading in the process (1 then; see os.c).
 */
unsigned __hak_now_ms(void);

/*
 * Asymmetric fences (membarrier(2), private expedited): register once
 * (false when the kernel or a seccomp filter refuses it), then make every
 * running thread of the process execute a full barrier before the call
 * returns (false: it did not, the registration was refused or lost).
 * For the rare side of a Dekker handshake whose frequent side stores and
 * loads with no fence (lib/heap.c, the sharded paths).
 */
bool __hak_os_fence_others_init(void);
bool __hak_os_fence_others(void) __must_check;

/*
 * How far a stamp or a deadline can lie after a reading of now: a pass
 * reads its clock before its locks and long loops, so another thread's
 * stamp may be a little later, and a deadline is at most one purge delay
 * (HAKMEM_PURGE_DELAY_MS, at most 1 h; the refault feedback's windows of
 * four delays are cut to this) after the reading that set it.
 * Anything further "ahead" is in fact more than 24.8 days old (the 32-bit
 * difference wrapped): an idle process, a cache untouched that long.
 */
#define HAK_MS_AHEAD_MAX	(2u * 3600u * 1000u)

/*
 * Milliseconds from stamp to now: 0 when the stamp is later (a pass that
 * read its clock before another thread stamped something must see that
 * stamp as young, not as 49 days old), and the wrapped unsigned difference
 * (over 24.8 days) when it is more than HAK_MS_AHEAD_MAX "later": old, so
 * a pass that only restamps when it runs is not put off by another 24.8
 * days after a long idle time.
 */
static inline unsigned __hak_ms_age(unsigned now, unsigned stamp)
{
	int d = (int)(now - stamp);

	return d > 0 || d < -(int)HAK_MS_AHEAD_MAX ? (unsigned)d : 0;
}

/* Has now reached deadline (set as a reading plus at most one delay)? */
static inline bool __hak_ms_due(unsigned now, unsigned deadline)
{
	int d = (int)(now - deadline);

	return d >= 0 || d < -(int)HAK_MS_AHEAD_MAX;
}

/*
 * Memory limit (lib/limit.c sets it at start-up, a cgroup's later; 0:
 * none). A mapping that would take the mapped bytes within 1/8 of the
 * limit raises the "near" flag, which the first purge tick a delay after the last such purge
 * consumes by purging every cache; with hard set, a mapping past the
 * limit fails with ENOMEM.
 */
void __hak_os_set_limit(size_t bytes, bool hard);
/* The limit; a cgroup's still unread is read first (lib/limit.c). */
size_t __hak_os_limit(void);
/*
 * Mapped bytes below which the cgroup's limit is not read (lib/limit.c):
 * under it, only a limit below 8/7 of it could have raised the near flag.
 * A short process maps 2-5 MiB (sed, perl, python3 -c pass).
 */
#define HAK_LIMIT_LAZY_BYTES	((size_t)8 << 20)
/*
 * Does a hard limit refuse len bytes by themselves, with nothing else
 * mapped? Then purging every cache cannot make room: such a refusal
 * raises no near flag, and the caller's retry skips the purge.
 */
bool __hak_os_limit_refuses(size_t len);
/* Was the near-limit flag raised since the last call? Clears it. */
bool __hak_os_take_near(void);

/* The points at which a test may inject a failure. */
enum hak_os_site {
	HAK_OS_MAP,
	HAK_OS_REMAP,
	HAK_OS_PURGE,
	HAK_OS_PROTECT,		/* __hak_os_open (mprotect) */
	HAK_OS_NSITES,
};

/*
 * Fault injection (test builds only): the next n calls at site fail, or
 * every call after the first skip calls. A no-op without
 * CONFIG_HAK_FAULT_INJECT.
 */
void hak_test_os_fail(enum hak_os_site site, unsigned long skip, unsigned long n);
unsigned long hak_test_os_failed(enum hak_os_site site);

#endif /* HAK_OS_H */
