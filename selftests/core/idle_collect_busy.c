// SPDX-License-Identifier: MIT
/*
 * idle_collect_busy: the decay pass's scan of another heap never waits for
 * the superslab lock (lib/heap.c, slab_give_back). A fork in a signal
 * handler that interrupted that lock's holder waits for the scan to end
 * (__hak_heap_fork_prepare) while the holder cannot let go before its
 * handler returns: a scan that waited for the lock hung the fork for good.
 * A slab the scan empties while the lock is busy stays its heap's, empty,
 * and goes back at the heap's next release.
 *
 * Linked with --wrap=pthread_mutex_trylock: while the freer thread's
 * wrapper is armed, every try-lock of that thread finds its lock busy (a
 * lock taken by hak_lock then waits for it the usual way, so only the
 * try-locks see a busy lock). As in idle_collect, the main thread allocates
 * NB blocks and waits in pthread_join; the freer frees them all (they go
 * home as remote frees) and ticks the decay for a few purge delays, armed:
 *   - every block is collected, and not one slab went back (each was kept);
 * then, disarmed, the main thread calls malloc_trim (its heap's release):
 *   - the kept slabs go back, and NB blocks allocated again are intact.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"

#define NB	4096
#define BS	128
#define SLABS	(NB * BS / (64u << 10))

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static __thread int armed;
static unsigned long refused;	/* the freer's only */
static void *blk[NB];
static struct hak_stats st[4];

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	if (armed) {
		refused++;
		return EBUSY;
	}
	return __real_pthread_mutex_trylock(m);
}

static void *freer(void *arg)
{
	unsigned i;

	(void)arg;
	hak_stats_get(&st[0]);
	ct_free_home(blk, NB, BS);
	for (i = 0; i < 40; i++) {
		tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS / 4 + 1);
		armed = 1;
		ct_decay_tick();
		armed = 0;
		hak_stats_get(&st[1]);
		if (st[1].remote_collected - st[0].remote_collected >= NB)
			break;
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	unsigned long bad;

	tap_plan(5);
	ct_alloc_fill(blk, NB, BS);
	if (pthread_create(&t, NULL, freer, NULL))
		abort();
	pthread_join(t, NULL);

	tap_ok(st[1].remote_collected - st[0].remote_collected >= NB,
	       "collected while the owner made no call, the superslab lock busy (%llu of %d)",
	       (unsigned long long)(st[1].remote_collected - st[0].remote_collected), NB);
	tap_ok(refused > 0, "the scan met busy try-locks (%lu)", refused);
	tap_ok(st[1].slabs_released == st[0].slabs_released,
	       "no slab went back while the lock was busy (%llu released)",
	       (unsigned long long)(st[1].slabs_released - st[0].slabs_released));

	malloc_trim(0);
	hak_stats_get(&st[2]);
	tap_ok(st[2].slabs_released - st[1].slabs_released >= SLABS / 2,
	       "the kept slabs went back at the owner's release (%llu released, %u slabs' worth)",
	       (unsigned long long)(st[2].slabs_released - st[1].slabs_released), SLABS);

	ct_alloc_fill(blk, NB, BS);
	bad = ct_check_free(blk, NB, BS);
	tap_ok(bad == 0, "the owner, back at work: %d blocks intact (%lu bad)", NB, bad);
	tap_finish();
	return 0;
}
