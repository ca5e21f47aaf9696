/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the heap profiler box (CONFIG_HAK_HEAPPROF).
 *
 * The malloc fast path pays one subtraction and one branch: each thread
 * counts down the bytes it allocates (hak_prof_tick) and only when the
 * count goes negative does it call out of line (hak_prof_alloc). Dormant
 * (HAKMEM_PROF unset) the count starts near INTPTR_MAX and never runs out;
 * a new thread's count is 0, so its first malloc takes the slow path once,
 * which sets it. Active, the count is drawn from an exponential
 * distribution of mean HAKMEM_PROF_SAMPLE bytes and the block that takes it
 * below zero is sampled.
 *
 * A sampled block is always served by the big path (the L2.5 pool or its
 * own mapping, whatever its size), so its free reaches __hak_free_big,
 * which is out of line already: the small free fast path never checks for
 * samples. The frees of big blocks ask hak_prof_free() only while samples
 * are live.
 */
#ifndef HAK_BOX_HEAPPROF_H
#define HAK_BOX_HEAPPROF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_HEAPPROF)

/* Sampled blocks live now (0: frees of big blocks need not look). */
extern HAK_HIDDEN unsigned long __hak_prof_live;

/* Count n bytes down on *left; true when the slow path must run. */
static __always_inline bool hak_prof_tick(intptr_t *left, size_t n)
{
	return unlikely((*left -= (intptr_t)n) < 0);
}

/* malloc(n) whose countdown ran out: maybe a sample; never NULL-checks. */
void *hak_prof_alloc(size_t n) __noinline;
/* A big block the core made without __hak_alloc (calloc, memalign). */
void *hak_prof_note_big(void *p, size_t n) __noinline;
/* A big block p is being freed (or moved away by realloc). */
void hak_prof_forget(void *p) __noinline;

static __always_inline void *hak_prof_big(intptr_t *left, void *p, size_t n)
{
	if (hak_prof_tick(left, n))
		return hak_prof_note_big(p, n);
	return p;
}

static __always_inline void hak_prof_free(void *p)
{
	if (unlikely(__atomic_load_n(&__hak_prof_live, __ATOMIC_RELAXED)))
		hak_prof_forget(p);
}

/* realloc moved or resized big block p to q (n bytes). */
static __always_inline void *hak_prof_moved(intptr_t *left, void *p, void *q, size_t n)
{
	hak_prof_free(p);
	return hak_prof_big(left, q, n);
}

/* Options are read: arm the profiler (HAKMEM_PROF and friends). */
void hak_prof_init(void);
void hak_prof_fork_prepare(void);
void hak_prof_fork_parent(void);
void hak_prof_fork_child(void);

#else

static __always_inline bool hak_prof_tick(intptr_t *left, size_t n)
{
	(void)left; (void)n;
	return false;
}

static inline void *hak_prof_alloc(size_t n) { (void)n; return NULL; }

static __always_inline void *hak_prof_big(intptr_t *left, void *p, size_t n)
{
	(void)left; (void)n;
	return p;
}

static __always_inline void hak_prof_free(void *p) { (void)p; }

static __always_inline void *hak_prof_moved(intptr_t *left, void *p, void *q, size_t n)
{
	(void)left; (void)p; (void)n;
	return q;
}

static inline void hak_prof_init(void) { }
static inline void hak_prof_fork_prepare(void) { }
static inline void hak_prof_fork_parent(void) { }
static inline void hak_prof_fork_child(void) { }

#endif

#endif /* HAK_BOX_HEAPPROF_H */
