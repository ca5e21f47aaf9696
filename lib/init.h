/* SPDX-License-Identifier: MIT */
/*
 * Start-up, thread exit, fork, runtime options and diagnostics.
 *
 * Nothing needs initialising before the first malloc: the size tables are
 * const, the registry reads 0 until its first registration makes it, and
 * the locks are static. The first slow path of the process reads the
 * HAKMEM_* options and registers the thread-exit key and the fork
 * handlers; a malloc that those calls make re-enters safely.
 */
#ifndef HAK_INIT_H
#define HAK_INIT_H

#include <stddef.h>
#include <hak/compiler.h>
#include <asm/atomic.h>

struct hak_tcache;

/* Runtime options, read once from the environment (see options.c). */
struct hak_options {
	size_t stats;		/* HAKMEM_STATS: print statistics at exit */
	size_t dirty_max;	/* HAKMEM_DIRTY_MAX: free resident bytes kept */
	size_t tcache_bytes;	/* HAKMEM_TCACHE_BYTES: per-class cache budget */
	size_t failfast;	/* HAKMEM_TINY_REFILL_FAILFAST: fail-fast level */
	size_t bigcache_max;	/* HAKMEM_BIGCACHE_MAX: bytes BigCache may hold */
	size_t prof;		/* HAKMEM_PROF: heap profiler on */
	size_t prof_sample;	/* HAKMEM_PROF_SAMPLE: mean bytes between samples */
	size_t prof_depth;	/* HAKMEM_PROF_DEPTH: frames kept per stack */
	size_t prof_leaks;	/* HAKMEM_PROF_LEAKS: live stacks at exit */
	size_t prof_signal;	/* HAKMEM_PROF_SIGNAL: dump on this signal */
	size_t purge_delay_ms;	/* HAKMEM_PURGE_DELAY_MS: purge caches unused this long */
	size_t purge_delay_max_ms; /* HAKMEM_PURGE_DELAY_MAX_MS: cap of the learned delay */
	size_t memory_limit;	/* HAKMEM_MEMORY_LIMIT: bytes; HAK_LIMIT_UNSET: cgroup's */
	size_t memory_limit_hard; /* HAKMEM_MEMORY_LIMIT_HARD: fail past the limit */
	size_t background_purge; /* HAKMEM_BACKGROUND_PURGE: start the purge thread */
	size_t hugepage_collapse; /* HAKMEM_HUGEPAGE_COLLAPSE: MADV_COLLAPSE dense superslabs */
	size_t purge_batch;	/* HAKMEM_PURGE_BATCH: process_madvise for page scans */
	size_t grow_area;	/* HAKMEM_GROW_AREA: realloc growth in per-thread areas */
	size_t sandbox;		/* HAKMEM_SANDBOX: 0: never take the process for sandboxed */
	size_t adapt_class_max;	/* HAKMEM_ADAPTIVE_CLASS_MAX: bytes a grown class may cache */
	size_t shard_min;	/* HAKMEM_SHARD_MIN: classes of this stride and more are sharded; 0 off */
	size_t shard_cap;	/* HAKMEM_SHARD_CAP: the bin of a sharded class, blocks */
	size_t shard_bytes;	/* HAKMEM_SHARD_BYTES: the same in bytes (the larger wins) */
};
/* HAKMEM_SHARD_MIN's default (lib/tcache.h): off */
#ifndef HAK_SHARD_MIN_DEFAULT
#define HAK_SHARD_MIN_DEFAULT	0
#endif
/* HAKMEM_SHARD_BYTES's and _CAP's defaults (used once _MIN is set) */
#ifndef HAK_SHARD_BYTES_DEFAULT
#define HAK_SHARD_BYTES_DEFAULT	0
#endif
#ifndef HAK_SHARD_CAP_DEFAULT
#define HAK_SHARD_CAP_DEFAULT	0
#endif
#define HAK_LIMIT_UNSET		((size_t)-1)
extern struct hak_options __hak_opt;

extern int __hak_init_done;
void __hak_init_slow(void);

/*
 * Acquire pairs with the release store at the end of __hak_init_slow():
 * a thread that sees init done also sees the options it set. (A plain
 * load here is a data race with that store; ThreadSanitizer reports it.)
 */
static inline void __hak_init(void)
{
	if (likely(arch_load_acquire(&__hak_init_done)))
		return;
	__hak_init_slow();
}

/* Read the option table from the environment (init.c calls it once). */
void __hak_options_read(void);
/* pthread_atfork() that exit() and dlclose() never undo (init.c). */
int __hak_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* Arrange for the calling thread's heap to be detached at thread exit. */
void __hak_thread_register(struct hak_tcache *tc);

/* One line "hakmem: ..." on stderr, without allocating. */
void __hak_report(const char *fmt, ...) __printf(1, 2) __cold;
/* A free (or size query) of p failed check: report it and abort. */
void __hak_bad_free(const void *p, const char *check) __noreturn __cold;

/*
 * Forks of a multi-threaded process; of them, forks from a signal handler
 * whose frame held an allocator lock; back-offs of other forks' prepares
 * for them; locks such a fork left to another one's frame (init.c, "Fork,
 * back-off"); waits of such a fork it gave up after a bound (a lock, then
 * counted in skips too, a scan, the profile lock); forks without a lock
 * that waited their turn behind those, and the lock takes that waited for
 * such a turn meanwhile.
 */
struct hak_fork_stats {
	unsigned long forks, urgent, backoffs, skips, waited_out, turns, gated;
};
void __hak_fork_stats(struct hak_fork_stats *st);

/* Print statistics to fd (HAKMEM_STATS, malloc_stats). */
void __hak_stats_print(int fd);

#endif /* HAK_INIT_H */
