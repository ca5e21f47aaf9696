/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the heap profiler box (CONFIG_HAK_HEAPPROF).
 *
 * The malloc fast path pays one subtraction and one branch, and they
 * replace its small-size check: each thread has a fast byte budget
 * (__hak_tc.prof_left, never above HAK_SMALL_MAX); malloc takes n off it
 * (hak_prof_tick) and goes out of line (hak_prof_alloc) when n is more than
 * is left, which is true of every big request. The slow path refills the
 * budget from the thread's real countdown to the next sample (active: drawn
 * from an exponential distribution of mean HAKMEM_PROF_SAMPLE bytes;
 * dormant: endless), so dormant it runs once per 32 KiB allocated. A new
 * thread's budget is 0: its first malloc sets it.
 *
 * A sampled block is always served by the big path, whatever its size (a
 * small one from the L2.5 pool's smallest class when the pool is built,
 * else a mapping of its own), so its free reaches __hak_free_big,
 * which is out of line already: the small free fast path never checks for
 * samples. The frees of big blocks ask hak_prof_free() only while samples
 * are live, and call out only for an address whose filter bucket holds a
 * sample.
 */
#ifndef HAK_BOX_HEAPPROF_H
#define HAK_BOX_HEAPPROF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <hak/compiler.h>
#include <asm/processor.h>
#include <asm/tls.h>

#if IS_ENABLED(CONFIG_HAK_HEAPPROF)

#define HAK_PROF_BUILT	1

/* Sampled blocks live now (0: frees of big blocks need not look). */
extern HAK_HIDDEN unsigned long __hak_prof_live;

/*
 * Sampled blocks per hash bucket of their address, read without a lock by
 * frees of big blocks while samples are live: a zero proves the block was
 * not sampled, so most mid-size and large frees of a profiled process do
 * not leave __hak_free_big.
 */
#define HAK_PROF_FILTER	65536
extern HAK_HIDDEN uint32_t *__hak_prof_filter;

static __always_inline uint32_t *hak_prof_filter_of(uintptr_t a)
{
	return &__hak_prof_filter[((uint64_t)a * 0xc2b2ae3d27d4eb4fULL >> 40) &
				  (HAK_PROF_FILTER - 1)];
}

/* Take n bytes from the fast budget *left; true when it does not cover n. */
static __always_inline bool hak_prof_tick(unsigned long ARCH_TLS_SEG *left, size_t n)
{
	return unlikely(arch_tls_sub_borrows(left, n));
}

/* A malloc(n) the fast budget did not cover (already taken off it). */
void *hak_prof_alloc(size_t n) __noinline;
/* A big block the core made without __hak_alloc (calloc, memalign, realloc). */
void *hak_prof_note_big(void *p, size_t n) __noinline;
/* A big block p is being freed (or moved away by realloc). */
void hak_prof_forget(void *p) __noinline;

static __always_inline void *hak_prof_big(void *p, size_t n)
{
	return hak_prof_note_big(p, n);
}

static __always_inline void hak_prof_free(void *p)
{
	if (unlikely(__atomic_load_n(&__hak_prof_live, __ATOMIC_RELAXED)) &&
	    __atomic_load_n(hak_prof_filter_of((uintptr_t)p), __ATOMIC_RELAXED))
		hak_prof_forget(p);
}

/* realloc moved or resized big block p to q (n bytes). */
static __always_inline void *hak_prof_moved(void *p, void *q, size_t n)
{
	hak_prof_free(p);
	return hak_prof_note_big(q, n);
}

/* Options are read: arm the profiler (HAKMEM_PROF and friends). */
void hak_prof_init(void);
/*
 * True once the profiler samples: a thread attaching then points its
 * direct size table (lib/tcache.h) at the always-empty bin, so its
 * requests up to HAK_DIRECT_MAX bytes reach the countdown.
 */
bool hak_prof_sampling(void);
bool hak_prof_fork_prepare(void);
void hak_prof_fork_parent(void);
void hak_prof_fork_child(void);
/* The calling thread (its frame a signal handler interrupted) holds the profile lock. */
bool hak_prof_fork_mine(void);

#else

#define HAK_PROF_BUILT	0

static __always_inline bool hak_prof_tick(unsigned long ARCH_TLS_SEG *left, size_t n)
{
	(void)left; (void)n;
	return false;
}

static inline void *hak_prof_alloc(size_t n) { (void)n; return NULL; }
static __always_inline void *hak_prof_big(void *p, size_t n) { (void)n; return p; }
static __always_inline void hak_prof_free(void *p) { (void)p; }

static __always_inline void *hak_prof_moved(void *p, void *q, size_t n)
{
	(void)p; (void)n;
	return q;
}

static inline void hak_prof_init(void) { }
static inline bool hak_prof_sampling(void) { return false; }
static inline bool hak_prof_fork_prepare(void) { return true; }
static inline void hak_prof_fork_parent(void) { }
static inline void hak_prof_fork_child(void) { }
static inline bool hak_prof_fork_mine(void) { return false; }

#endif

#endif /* HAK_BOX_HEAPPROF_H */
