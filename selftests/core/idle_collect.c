// SPDX-License-Identifier: MIT
/*
 * idle_collect: the remote frees of an owner that makes no allocator call
 * are collected by the decay pass (lib/heap.c, idle_collect;
 * Documentation/design.md, "Scaling past the cores", the seventeenth pass).
 * Before, they sat on its slabs' remote stacks for as long as it slept:
 * larson's main thread, which fills every lane's table and sleeps, held
 * 3 MB that way.
 *
 * The main thread allocates NB blocks of BS and waits in pthread_join (no
 * allocator call), while a second thread, which has never refilled a bin
 * (so it caches none of them as an idle owner's), frees every one: they go
 * home to the main thread's slabs. The freer then calls the allocator
 * (a large block each time, which ticks the decay) for a few purge delays:
 *   - every block went home as a remote free, and every one was collected,
 *     though the owner made no call;
 *   - the owner's slabs that this emptied went back (slabs released);
 *   - the freer's NB blocks of the same size map nothing new (the pages of
 *     those slabs serve them), and keep their contents;
 * and the main thread, back at work, allocates and frees NB blocks intact.
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"

#define NB	4096
#define BS	128

static void *blk[NB];
static struct hak_stats st[4];
static unsigned long bad;

static void *freer(void *arg)
{
	unsigned i;

	(void)arg;
	hak_stats_get(&st[0]);
	ct_free_home(blk, NB, BS);
	hak_stats_get(&st[1]);
	for (i = 0; i < 40; i++) {
		tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS / 4 + 1);
		ct_decay_tick();
		hak_stats_get(&st[2]);
		if (st[2].remote_collected - st[0].remote_collected >= NB &&
		    st[2].slabs_released - st[0].slabs_released >= NB * BS / (64u << 10) / 2)
			break;
	}
	ct_alloc_fill(blk, NB, BS);
	hak_stats_get(&st[3]);
	bad = ct_check_free(blk, NB, BS);
	return NULL;
}

int main(void)
{
	pthread_t t;

	tap_plan(6);
	ct_alloc_fill(blk, NB, BS);
	if (pthread_create(&t, NULL, freer, NULL))
		abort();
	pthread_join(t, NULL);

	tap_ok(st[1].remote_frees - st[0].remote_frees == NB,
	       "%d frees of the idle owner's blocks went home (%llu remote)", NB,
	       (unsigned long long)(st[1].remote_frees - st[0].remote_frees));
	tap_ok(st[2].remote_collected - st[0].remote_collected >= NB,
	       "collected while the owner made no call (%llu of %d)",
	       (unsigned long long)(st[2].remote_collected - st[0].remote_collected), NB);
	tap_ok(st[2].slabs_released - st[0].slabs_released >= NB * BS / (64u << 10) / 2,
	       "the slabs they emptied went back (%llu released, %u slabs' worth freed)",
	       (unsigned long long)(st[2].slabs_released - st[0].slabs_released),
	       NB * BS / (64u << 10));
	tap_ok(st[3].mapped_bytes <= st[2].mapped_bytes,
	       "the freer's %d new blocks map nothing new (%zu -> %zu bytes)", NB,
	       st[2].mapped_bytes, st[3].mapped_bytes);
	tap_ok(bad == 0, "the freer's blocks intact (%lu bad)", bad);

	ct_alloc_fill(blk, NB, BS);
	bad = ct_check_free(blk, NB, BS);
	tap_ok(bad == 0, "the owner, back at work: %d blocks intact (%lu bad)", NB, bad);
	tap_finish();
	return 0;
}
