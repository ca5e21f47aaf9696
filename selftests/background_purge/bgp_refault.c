// SPDX-License-Identifier: MIT
/*
 * The refault feedback (lib/purge.c, learn()) with the background purge
 * thread running. A thread frees its working set and comes back to it
 * four delays later, round after round, while another thread calls the
 * allocator every half delay: the program is busy, but its slow paths are
 * rarer than the passes (a quarter delay apart), so the background thread
 * runs many of them. Those passes must use the learned delay too: at the
 * configured one (pd29) they purged the waiting thread's set every round
 * and the re-takes kept faulting. Then the whole process goes idle right
 * after a fresh set is freed, with no allocator call at all: the
 * background thread's first passes use the configured delay, not the
 * learned one (which has grown past the gap, to 8 delays here), so RSS
 * falls within about four delays (the L2.5 pool holds a class taken from
 * for three): issue 11's idle bar.
 * runner: long (it sleeps through its rounds, 14 s; started first)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "tap.h"
#include "proc.h"
#include "coarse_sleep.h"
#include "refault_set.h"
#include "init.h"
#include "purge.h"
#include "boxes/background_purge/bgpurge.h"

#define ROUNDS	12

static volatile int stop;
static unsigned delay;

/* A slow path (a 4 MiB block) every half delay: busy, but rarely. */
static void *ticker(void *arg)
{
	(void)arg;
	while (!stop) {
		char *volatile p = malloc(4u << 20);

		if (!p)
			tap_bail("a 4 MiB malloc failed");
		p[0] = 1;
		free(p);
		refault_tick();
		tst_sleep_ms(delay / 2);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct hak_bgpurge_stats bg0, bg1;
	struct hak_purge_stats ps;
	struct refault_set set;
	pthread_t tk, wk;
	long before, after = 0;
	static struct refault_rounds rr = { .rounds = ROUNDS };
	unsigned waited;

	if (!getenv("HAKMEM_BACKGROUND_PURGE")) {
		setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	(void)argc;
	free(malloc(1 << 20));		/* reads the options, starts the thread */
	delay = refault_delay(8, 20);
	tap_plan(5);
	hak_bgpurge_stats(&bg0);
	rr.gap = 4 * delay + 100;
	rr.delay = delay;
	if (pthread_create(&tk, NULL, ticker, NULL) || pthread_create(&wk, NULL, refault_worker, &rr))
		tap_bail("pthread_create");
	pthread_join(wk, NULL);
	hak_bgpurge_stats(&bg1);
	tap_ok(bg1.running && bg1.passes > bg0.passes,
	       "the background thread ran passes while the program was busy (%zu)",
	       bg1.passes - bg0.passes);
	refault_check(&rr);
	__hak_purge_stats(&ps);
	tap_diag("busy delay learned: %zu ms (configured %u, %zu up, %zu down)", ps.learned_ms,
		 delay, ps.learn_up, ps.learn_down);

	stop = 1;
	pthread_join(tk, NULL);
	refault_set_take(&set, ROUNDS);
	before = proc_status_kib("VmRSS");
	refault_set_free(&set);
	__hak_purge_stats(&ps);
	tap_ok(ps.learned_ms >= 4 * delay, "the busy delay is %zu ms (configured %u)",
	       ps.learned_ms, delay);
	/*
	 * No allocator call from here. At the configured delay the set goes
	 * within about two delays; at the learned one it would stay for the
	 * learned delay. A loaded machine may run the thread late: wait up
	 * to 6 s, and ask that it went before the learned delay.
	 */
	for (waited = 0; waited < 6000; waited += 20) {
		after = proc_status_kib("VmRSS");
		if (before - after >= (long)(REFAULT_PAGES * 4) / 2)
			break;
		usleep(20 * 1000);
	}
	tap_ok(waited < ps.learned_ms,
	       "idle: the background thread gives the set back at the configured delay: "
	       "RSS %ld -> %ld KiB after %u ms (busy delay %zu ms)", before, after, waited,
	       ps.learned_ms);
	tap_finish();
}
