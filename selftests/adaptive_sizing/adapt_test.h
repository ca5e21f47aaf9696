/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the selftests/adaptive_sizing programs (not a test).
 * The programs link statically with libhakmem.a and read the calling
 * thread's cache (__hak_tc) directly; each runs its work in a fresh thread
 * so that the box's per-thread state starts from nothing.
 */
#ifndef HAK_SELFTEST_ADAPT_H
#define HAK_SELFTEST_ADAPT_H

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <hakmem/hakmem.h>
#include "size_class.h"
#include "heap.h"
#include "tcache.h"
#include "tap.h"
#include "proc.h"

#define AT_CAP_MIN	16u
#define AT_CAP_MAX	2048u
#define AT_BUDGET	((size_t)CONFIG_HAK_ADAPTIVE_BUDGET_KIB << 10)

#define AT_BUDGET_MIN	((size_t)CONFIG_HAK_ADAPTIVE_BUDGET_MIN_KIB << 10)

/*
 * For the tests past the cores: skip when the budget there is the whole,
 * else the CPUs this process may run on (*cpus) and a thread count past
 * them by more than one (2 x CPUs + 4, at most max).
 */
static inline unsigned at_past_cores(int *cpus, unsigned max)
{
	unsigned n;

	if (AT_BUDGET_MIN >= AT_BUDGET)
		tap_skip_all("the budget past the cores is the whole (HAK_ADAPTIVE_BUDGET_MIN_KIB)");
	*cpus = (int)proc_cpus();
	n = 2 * (unsigned)*cpus + 4;
	return n < max ? n : max;
}

static inline size_t at_stride(unsigned c)
{
	return __hak_class_stride(c);
}

/* The bound the box promises: max(budget, sum of the 16-block floors). */
static inline size_t at_bound(void)
{
	size_t floor = 0;
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++)
		floor += AT_CAP_MIN * at_stride(c);
	return floor > AT_BUDGET ? floor : AT_BUDGET;
}

static inline size_t at_cap_bytes(void)
{
	size_t n = 0;
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++)
		n += __hak_tcache_cap_set(c) * at_stride(c);
	return n;
}

static inline size_t at_held_bytes(void)
{
	size_t n = 0;
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++)
		n += __hak_tbin_count(&__hak_tc.bins[c]) * at_stride(c);
	return n;
}

/* Every bin of the calling thread within 16..2048 and count <= cap. */
static inline int at_bins_sane(void)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS; c++) {
		const struct hak_tbin *b = &__hak_tc.bins[c];

		if (b->cap < AT_CAP_MIN || b->cap > AT_CAP_MAX || __hak_tbin_count(b) > b->cap)
			return 0;
	}
	return 1;
}

static inline uint64_t at_refills(void)
{
	struct hak_stats st;

	hak_stats_get(&st);
	return st.refills;
}

static inline void at_run(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	if (pthread_create(&t, NULL, fn, arg) || pthread_join(t, NULL))
		tap_bail("pthread_create/join failed");
}

#endif /* HAK_SELFTEST_ADAPT_H */
