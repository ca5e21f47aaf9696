// SPDX-License-Identifier: MIT
/*
 * The hugepage box's rule for advice at map time: a heap must earn it.
 * A burst of small blocks fills its superslabs with 4 KiB faults (they are
 * advised by the decay pass once dense for a purge delay, none before its
 * first touch), so a burst freed again soon after never zeroes whole 2 MiB
 * pages. Once the dense
 * superslabs have stayed dense for HAK_HUGE_PROVE_X purge delays with no
 * advice withdrawn, new superslabs are advised before their first touch
 * and land in 2 MiB pages (AnonHugePages grows with them); once dense for
 * the proof time they count as proven too. Withdrawals (here: the heap is
 * freed and purged) take the grant away again.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "../lib/tap.h"
#include "init.h"
#include "boxes/hugepage/hugepage.h"
#include "hp_thp.h"
#include "../lib/coarse_sleep.h"

#define NB	(1u << 19)	/* 512 Ki blocks of 64 B: 32 MiB per fill */

/* A large malloc/free: a slow path of this thread, which ticks the decay. */
static void tick(void)
{
	tick_len(1u << 20);
}

static unsigned now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Fills b; returns the ms it took. */
static unsigned fill(void **b)
{
	unsigned i, t0 = now_ms();

	for (i = 0; i < NB; i++) {
		b[i] = malloc(64);
		memset(b[i], 1, 64);
	}
	return now_ms() - t0;
}

int main(void)
{
	static void *b1[NB], *b2[NB], *b3[NB];
	struct hak_huge_stats a, z;
	unsigned i, ms, prove = HAK_HUGE_PROVE_X * (unsigned)__hak_opt.purge_delay_ms;
	unsigned wait_ms = prove + 300;

	if (thp_never())
		tap_skip_all("transparent hugepages are off (\"never\") here");
	if (!__hak_opt.purge_delay_ms)
		tap_skip_all("HAKMEM_PURGE_DELAY_MS=0: no decay passes, map-time advice is not earned");
	thp_exclude(b1, sizeof(b1));
	thp_exclude(b2, sizeof(b2));
	thp_exclude(b3, sizeof(b3));
	tap_plan(0);
	a = hs();
	ms = fill(b1);
	z = hs();
	/* A fill slower than the proof time (a loaded machine) may earn it. */
	if (ms < prove)
		tap_ok(z.at_map == a.at_map,
		       "a 32 MiB burst in %u ms: no superslab advised before its first touch "
		       "(%zu at map)", ms, z.at_map - a.at_map);
	else
		tap_skip("the burst took %u ms, past the proof time (%u ms)", ms, prove);

	/*
	 * The burst stays: the purge delays of allocator activity prove it.
	 * A withdrawal meanwhile (a few decayed pages of the first, mixed
	 * superslab) restarts the proof, so wait for it up to 8x as long.
	 */
	for (i = 0; i < 8 * wait_ms; i += 30) {
		tst_sleep_ms(30);
		tick();
		if (i >= wait_ms && hs().earned > a.earned)
			break;
	}
	z = hs();
	tap_ok(z.advised - a.advised >= 10,
	       "its dense superslabs are advised by the decay pass (%zu), for khugepaged",
	       z.advised - a.advised);
	tap_ok(z.earned > a.earned, "after %u ms dense, map-time advice is earned (%zu)",
	       i, z.earned - a.earned);
	a = z;
	fill(b2);
	z = hs();
	tap_ok(z.at_map - a.at_map >= 10,
	       "the next 32 MiB: %zu superslabs advised before their first touch",
	       z.at_map - a.at_map);
	tap_ok(z.anon_huge_bytes >= (16u << 20), "AnonHugePages %zu KiB",
	       z.anon_huge_bytes >> 10);

	/*
	 * The superslabs huge from map time prove the heap too once they
	 * have stayed dense for the proof time: the grant rests on all of
	 * the heap that stays, not only on the few dense ones before it.
	 */
	for (i = 0; i < 8 * wait_ms; i += 30) {
		tst_sleep_ms(30);
		tick();
		if (i >= wait_ms && hs().proven >= a.proven + 10)
			break;
	}
	z = hs();
	tap_ok(z.proven >= a.proven + 10,
	       "after %u ms, those advised at map time count as proven (%zu, %zu before)",
	       i, z.proven, a.proven);

	/* Freed and purged: advice withdrawn, the grant goes with it. */
	for (i = 0; i < NB; i++) {
		free(b1[i]);
		free(b2[i]);
	}
	malloc_trim(0);
	a = hs();
	tap_ok(a.withdrawn > z.withdrawn, "freed: %zu withdrawn", a.withdrawn - z.withdrawn);
	ms = fill(b3);
	z = hs();
	if (ms < prove)
		tap_ok(z.at_map == a.at_map,
		       "after a withdrawal a new burst faults 4 KiB pages again (%zu at map)",
		       z.at_map - a.at_map);
	else
		tap_skip("the new burst took %u ms, past the proof time (%u ms)", ms, prove);
	for (i = 0; i < NB; i++)
		free(b3[i]);
	tap_finish();
}
