// SPDX-License-Identifier: MIT
/*
 * Refault feedback (lib/purge.c, learn()): a thread that frees its working
 * set, waits past the purge delay while the rest of the process stays busy
 * (another thread calls the allocator every 10 ms), and takes the set back,
 * round after round. With the configured delay every re-take faults the set
 * in again; once the allocator has seen its purges faulted back, the busy
 * passes' delay grows past the gap and the re-takes fault far less. Then
 * the whole process goes idle: the first pass after the idle spell uses the
 * configured delay, so the learned one does not keep an idle program's
 * memory. runner: long (it sleeps through its rounds, 8 s; started first)
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "init.h"
#include "purge.h"
#include "refault_set.h"

#define ROUNDS	8

static volatile int stop;

static void *ticker(void *arg)
{
	(void)arg;
	while (!stop) {
		ct_decay_tick();
		refault_tick();
		tst_sleep_ms(10);
	}
	return NULL;
}

int main(void)
{
	static struct refault_rounds rr = { .rounds = ROUNDS };
	unsigned delay;
	struct hak_purge_stats ps;
	pthread_t tk, wk;
	long before, after;

	delay = refault_delay(1, 0);
	tap_plan(4);
	rr.gap = 3 * delay + 50;
	rr.delay = delay;
	if (pthread_create(&tk, NULL, ticker, NULL) || pthread_create(&wk, NULL, refault_worker, &rr))
		tap_bail("pthread_create");
	pthread_join(wk, NULL);
	refault_check(&rr);
	__hak_purge_stats(&ps);
	tap_ok(ps.learned_ms > delay, "busy delay learned: %zu ms (configured %u, %zu up, %zu down)",
	       ps.learned_ms, delay, ps.learn_up, ps.learn_down);

	stop = 1;
	pthread_join(tk, NULL);
	before = proc_status_kib("VmRSS");
	/* idle: no call for the L2.5 pool's hold (3 delays) and more */
	tst_sleep_ms(4 * delay + 50);
	ct_decay_tick();
	tst_sleep_ms(delay / 4 + 30);
	ct_decay_tick();
	after = proc_status_kib("VmRSS");
	tap_ok(before - after >= (long)(REFAULT_PAGES * 4) / 2,
	       "an idle process gives the set back at the configured delay: RSS %ld -> %ld KiB",
	       before, after);
	tap_finish();
}
