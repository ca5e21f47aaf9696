/* SPDX-License-Identifier: MIT */
/*
 * Giving memory back over time (lib/purge.c) and within a memory limit
 * (lib/limit.c).
 *
 * Every cache (free superslab pages, the L2.5 pool's free blocks, BigCache's
 * blocks, the grow areas' free slots) is purged once it has stayed unused for the purge delay
 * (HAKMEM_PURGE_DELAY_MS, CONFIG_HAK_PURGE_DELAY_MS). The decay runs from
 * the allocator's slow paths (__hak_purge_tick: one coarse-clock read, and
 * a pass every quarter delay) and, with the background purge box, from its
 * thread while the program is idle. Near the memory limit every cache is
 * purged; an allocation that the OS (or a hard limit) refused is retried
 * once after purging everything.
 *
 * Locks: none held by the caller of any function here; a pass takes the
 * caches' locks one at a time. One pass runs at a time (purge_busy).
 */
#ifndef HAK_PURGE_H
#define HAK_PURGE_H

#include <stddef.h>
#include <stdbool.h>
#include <hak/compiler.h>

/* A slow path with no lock held: maybe run a decay pass (cheap otherwise). */
void __hak_purge_tick(void);
/*
 * The coarse clock (__hak_now_ms) at this thread's last tick that found
 * it moved: a time stamp for fast paths that read no clock. It lags
 * behind the clock by the time since the thread's last slow path.
 */
extern __thread unsigned __hak_tick_ms __attribute__((tls_model("initial-exec")));
/*
 * One decay pass over the shared caches at time now (ms, __hak_now_ms):
 * what has been unused for the purge delay (the learned one while the
 * program is busy) is purged. Bytes released. The pass a tick runs, for
 * tests that want one now.
 */
size_t __hak_purge_decay(unsigned now);
/*
 * A decay pass if one is due (no tick ran one for a quarter of the delay);
 * *ran tells whether it ran. For the background purge box. It uses the
 * base delay when no slow path ran for a delay and the other threads did
 * not compute through it (the program is idle), the learned one otherwise.
 */
size_t __hak_purge_idle(bool *ran);
/* Purge every cache now (near the limit, the retry). Bytes released. */
size_t __hak_purge_all(void);
/*
 * malloc_trim: the same, but the mid-size blocks other threads cached
 * within the purge delay stay theirs (they are reusing them).
 */
size_t __hak_purge_trim(void);
/*
 * An allocation failed: purge every cache; true when something was
 * released, so the caller retries once.
 */
bool __hak_purge_for_retry(void) __cold;

struct hak_purge_stats {
	size_t delay_ms;	/* the purge delay configured */
	size_t learned_ms;	/* the busy passes' delay (refault feedback) */
	size_t learn_up, learn_down;	/* times it doubled, halved */
	size_t passes;		/* decay passes run */
	size_t decayed_bytes;	/* bytes released by decay passes */
	size_t limit;		/* memory limit (0: none) */
	size_t limit_hard;	/* 1: allocations past it fail */
	size_t limit_purges;	/* purge-everything runs near the limit */
	size_t retries;		/* failed allocations retried after a purge */
};
void __hak_purge_stats(struct hak_purge_stats *st);
void __hak_purge_fork_child(void);
/*
 * The delay the busy passes use: the learned one, at least the configured
 * one (the dirty limit spares the pages freed within an eighth of it).
 */
unsigned __hak_purge_busy_ms(void);
/* Tests: set the busy passes' learned delay (as refaults would). */
void __hak_purge_set_learned(unsigned ms);

/*
 * HAKMEM_MEMORY_LIMIT* (start-up); the cgroup's limit is read then only
 * under HAKMEM_MEMORY_LIMIT_HARD=1, else by __hak_limit_resolve.
 */
void __hak_limit_init(void);
/*
 * Read the cgroup's memory limit now if it was left for later (the OS
 * layer past HAK_LIMIT_LAZY_BYTES mapped, the purge tick a delay into the
 * process's life, __hak_os_limit); once, in one thread (lib/limit.c).
 */
void __hak_limit_resolve(void);
/* Is the cgroup's limit still to be read? */
bool __hak_limit_unread(void);
/*
 * Still to be read and not a purge delay into this process's life (its
 * fork, for a fork child)? The purge tick waits for the late read then.
 */
bool __hak_limit_waits(unsigned now, unsigned delay);
/*
 * Where that wait starts in this thread (lib/limit.c); every fork child
 * sets HAK_LIMIT_FORKED (lib/init.c), so that a shell's subshells, which
 * the parent's clock puts past the delay, do not each read the cgroup
 * before their exec: the wait starts at the child's first tick.
 */
extern __thread unsigned __hak_limit_from_ms __attribute__((tls_model("initial-exec")));
#define HAK_LIMIT_FORKED	(~0u)
/* The cgroup memory limit of the process, 0 when none (lib/limit.c). */
size_t __hak_cgroup_limit(void);
/*
 * Is the cgroup directory the limit came from within 1/8 of it, by the
 * kernel's count less its page cache (lib/limit.c)? False when the limit
 * is not a cgroup's or cannot be read; one system call reader at a time.
 */
bool __hak_cgroup_near(void);
void __hak_cgroup_fork_child(void);
/*
 * Memory the machine can still give without swapping (MemAvailable of
 * /proc/meminfo: free pages plus reclaimable page cache), and its total,
 * in bytes; false when /proc cannot be read (lib/limit.c).
 */
bool __hak_mem_available(size_t *avail, size_t *total);
/* The process's resident set in bytes, 0 when unknown (lib/limit.c). */
size_t __hak_rss(void);

#endif /* HAK_PURGE_H */
