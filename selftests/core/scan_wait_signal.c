// SPDX-License-Identifier: MIT
/*
 * scan_wait_signal: a signal handler that allocates while its thread waits
 * for another thread's scan of its heap (lib/heap.c, heap_enter_wait)
 * must wait for that scan too. The owner's depth count was raised before
 * the wait, so the handler's slow path found it held and ran beside the
 * scanner, both on the heap's slab lists (rv33: since collect_others, a
 * busy owner waits there whenever another thread collects its remote
 * frees; before, only the decay pass's scan of a heap idle for a delay).
 *
 * Linked with --wrap=pthread_mutex_trylock and --wrap=sched_yield. As in
 * idle_collect_busy, the main thread allocates NB blocks and goes quiet;
 * a freer thread frees them (remote frees) and ticks the decay pass, whose
 * scan of the main thread's heap collects them and, giving back a slab it
 * emptied, tries the superslab lock: there the freer's wrapper holds the
 * scan (the heap's scan lock, HAK_SCAN_OTHER) until the main thread's
 * "handler" has either returned or started waiting. The main thread then
 * allocates a size its bins never held: its refill waits for the scan
 * lock, and the first sched_yield of that wait (a signal landing there)
 * allocates another new size:
 *   1. that allocation returned only once the scanner had let go (main:
 *      it returned while the scan held the heap);
 *   2. the blocks of both, and NB blocks allocated again, are intact.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "heap.h"

#define NB	4096
#define BS	128
#define OUTER	1536	/* sizes the main thread's bins never held */
#define INNER	2560
#define WAIT_MS	10000

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);
int __real_sched_yield(void);
int __wrap_sched_yield(void);

static struct hak_heap *mine;		/* the main thread's heap */
static pthread_t main_thread;
static __thread int armed;		/* the freer, while it ticks */
static int holding;			/* atomic: the freer holds the scan */
static int done_hold;			/* atomic: the hold happened */
static int handler;			/* atomic: 0, 1 returned, 2 waiting */
static int held_at_return = -1;
static int yield_armed, in_yield;	/* atomic: the main thread's */
static void *inner, *blk[NB];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	uint64_t end;

	if (armed && !__atomic_load_n(&done_hold, __ATOMIC_RELAXED) &&
	    __atomic_load_n(&mine->scan_lk, __ATOMIC_RELAXED) > 1) {	/* HAK_SCAN_OTHER */
		__atomic_store_n(&done_hold, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
		end = now_ms() + WAIT_MS;
		while (now_ms() < end && !__atomic_load_n(&handler, __ATOMIC_ACQUIRE))
			tst_sleep_ms(1);
		__atomic_store_n(&holding, 0, __ATOMIC_RELEASE);
		return EBUSY;
	}
	return __real_pthread_mutex_trylock(m);
}

int __wrap_sched_yield(void)
{
	if (!pthread_equal(pthread_self(), main_thread) ||
	    !__atomic_load_n(&yield_armed, __ATOMIC_RELAXED))
		return __real_sched_yield();
	if (__atomic_load_n(&in_yield, __ATOMIC_RELAXED)) {		/* the handler's own wait for the lock */
		__atomic_store_n(&handler, 2, __ATOMIC_RELEASE);
		return __real_sched_yield();
	}
	__atomic_store_n(&in_yield, 1, __ATOMIC_RELAXED);
	inner = malloc(INNER);	/* a handler that interrupted the wait */
	held_at_return = __atomic_load_n(&holding, __ATOMIC_ACQUIRE);
	if (!__atomic_load_n(&handler, __ATOMIC_RELAXED))
		__atomic_store_n(&handler, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&in_yield, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&yield_armed, 0, __ATOMIC_RELAXED);
	return __real_sched_yield();
}

static void *freer(void *arg)
{
	unsigned i;

	(void)arg;
	ct_free_home(blk, NB, BS);
	for (i = 0; i < 40 && !__atomic_load_n(&done_hold, __ATOMIC_RELAXED); i++) {
		tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS / 4 + 1);
		armed = 1;
		ct_decay_tick();
		armed = 0;
	}
	return NULL;
}

int main(void)
{
	unsigned long bad;
	pthread_t t;
	unsigned ms;
	void *outer;

	if (!CONFIG_HAK_PURGE_DELAY_MS)
		tap_skip_all("no purge delay: no decay pass scans another heap");
	tap_plan(2);
	main_thread = pthread_self();
	ct_alloc_fill(blk, NB, BS);
	mine = __hak_tc.heap;
	if (pthread_create(&t, NULL, freer, NULL))
		tap_bail("pthread_create");
	/* quiet (no allocator call) until the freer's scan holds our heap */
	for (ms = 0; ms < 40 * CONFIG_HAK_PURGE_DELAY_MS && !__atomic_load_n(&holding, __ATOMIC_ACQUIRE);
	     ms++)
		tst_sleep_ms(1);
	if (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE)) {
		pthread_join(t, NULL);
		tap_bail("the decay pass never held this heap's scan lock at a try-lock");
	}
	/* atomic stores: the compiler must not drop the first as dead */
	__atomic_store_n(&yield_armed, 1, __ATOMIC_SEQ_CST);
	outer = malloc(OUTER);
	__atomic_store_n(&yield_armed, 0, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);

	tap_ok(held_at_return == 0,
	       "the handler's allocation returned after the scan let go (%s; handler %s)",
	       held_at_return < 0 ? "no handler ran" :
	       held_at_return ? "it returned while the scan held the heap" : "yes",
	       handler == 2 ? "waited" : handler == 1 ? "did not wait" : "-");
	bad = !outer || !inner;
	if (outer) {
		memset(outer, 0x5a, OUTER);
		free(outer);
	}
	if (inner) {
		memset(inner, 0xa5, INNER);
		free(inner);
	}
	ct_alloc_fill(blk, NB, BS);
	bad += ct_check_free(blk, NB, BS);
	tap_ok(bad == 0, "both allocations made, %d blocks intact afterwards (%lu bad)", NB, bad);
	tap_finish();
	return 0;
}
