// SPDX-License-Identifier: MIT
/*
 * Refault feedback (lib/purge.c, judge()) while the process maps address
 * space it touches sparsely, as a program past the cores does when each of
 * its many threads gets a heap (ext35: python3 with 64 threads, 2 MiB
 * superslabs a thread, a few pages of each written). A worker takes its
 * working set, frees it, waits past the purge delay and takes it back
 * (refault_set.h); meanwhile the ticker keeps the process busy and maps a
 * 3 MiB block every 50 ms, writing one page of it. The faults of the
 * re-takes are refaults; the mapped bytes' growth (60 MB a second) is not
 * first touches, and until ext35 judge() took all of it for first touches:
 * the window never saw anything come back and the delay never grew. The
 * resident set's peak (getrusage) bounds the first touches too.
 * runner: long (it sleeps through its rounds, 3.5 s; started first)
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "init.h"
#include "os.h"
#include "purge.h"
#include "refault_set.h"

#define ROUNDS	4
#define NMAP	256
#define MAPSZ	(3u << 20)

static volatile int stop;
static void *maps[NMAP];
static unsigned nmaps;

static void *ticker(void *arg)
{
	unsigned n = 0;

	(void)arg;
	while (!stop) {
		ct_decay_tick();
		refault_tick();
		if (++n % 5 == 0 && nmaps < NMAP) {
			char *p = malloc(MAPSZ);

			if (!p)
				tap_bail("malloc(%u) failed", MAPSZ);
			p[MAPSZ / 2] = 1;
			maps[nmaps++] = p;
		}
		tst_sleep_ms(10);
	}
	return NULL;
}

int main(void)
{
	static struct refault_rounds rr = { .rounds = ROUNDS };
	struct hak_purge_stats ps;
	size_t mapped0;
	unsigned delay, i, busy;
	pthread_t tk, wk;

	delay = refault_delay(1, 0);
	tap_plan(2);
	rr.gap = 3 * delay + 50;
	rr.delay = delay;
	mapped0 = __hak_os_mapped();
	if (pthread_create(&tk, NULL, ticker, NULL) || pthread_create(&wk, NULL, refault_worker, &rr))
		tap_bail("pthread_create");
	pthread_join(wk, NULL);
	stop = 1;
	pthread_join(tk, NULL);
	__hak_purge_stats(&ps);
	for (i = 0; i < ROUNDS; i++)
		tap_diag("round %u: %ld minor faults (working set %zu pages), busy delay %zu ms, "
			 "longest ticker gap %u ms", i, rr.faults[i], REFAULT_PAGES, rr.busy_ms[i],
			 rr.tick_gap[i]);
	tap_ok(nmaps * (size_t)MAPSZ > 4 * REFAULT_PAGES * 4096,
	       "the ticker mapped %u blocks of %u KiB (mapped %zu -> %zu KiB)", nmaps,
	       MAPSZ >> 10, mapped0 >> 10, __hak_os_mapped() >> 10);
	for (i = 1, busy = 0; i < ROUNDS; i++)
		busy += refault_busy(&rr, (int)i);
	if (!busy)
		tap_skip("the ticker slept past the delay in every wait: the process was idle");
	else
		tap_ok(ps.learned_ms > delay,
		       "busy delay learned: %zu ms (configured %u, %zu up, %zu down)",
		       ps.learned_ms, delay, ps.learn_up, ps.learn_down);
	for (i = 0; i < nmaps; i++)
		free(maps[i]);
	tap_finish();
}
