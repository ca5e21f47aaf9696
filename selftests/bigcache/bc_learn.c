// SPDX-License-Identifier: MIT
/*
 * BigCache follows the learned purge delay (lib/purge.c, learn(); the
 * box's pass_delay()). A thread takes a set of large blocks, writes them,
 * frees them and comes back to them after a gap longer than the configured
 * delay (and its two-delay active window) but far shorter than the cap,
 * round after round, while another thread keeps the process busy (a small
 * churn every 10 ms: tcache refills, no large block, so BigCache sees only
 * the set's takes). With the configured delay the cache purges the set in
 * every gap and each re-take faults it all in again; once the core has
 * learned a longer delay from those refaults, BigCache keeps the set and
 * the re-takes fault (almost) nothing. Then the process goes idle: the
 * first pass after a spell with no allocator call, shorter than the
 * learned delay, uses the configured one and BigCache gives the set back.
 *
 * Runs itself again with HAKMEM_PURGE_DELAY_MS=150 when the variable is
 * not set (a shorter test). The set is 4 x 4 MiB: a refault counts only
 * within four delays of the purge, and 8 x 4 MiB faulted in at the machine's
 * worst (page faults at 20-60 us under load 20) did not fit in four 100 ms
 * delays. runner: long (it sleeps through its rounds, about 5 s; started
 * first)
 */
#include <pthread.h>
#include "minflt.h"
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"
#include "purge.h"

#define MIB		(1UL << 20)
#define NBLK		4
#define BLK		(4 * MIB)
#define ROUNDS		7
#define SET_PAGES	(NBLK * BLK / BC_PAGE)
#define CHURN		8192	/* past any bin's capacity (2048): refills */

static volatile int stop;
static long faults[ROUNDS];
static size_t busy_ms[ROUNDS];

/*
 * A slow path without a large block: more small blocks than the thread
 * cache holds (2,048 of 1 KiB fit in a grown bin: with perf_defconfig's
 * sizing that churn never refilled, and no pass ran). The ticker's, then
 * once the main thread's after the ticker is joined: one array serves both.
 */
static void *churn_blk[CHURN];

static void churn(void)
{
	void **p = churn_blk;
	int i;

	for (i = 0; i < CHURN; i++) {
		p[i] = malloc(1024);
		if (!p[i])
			tap_bail("malloc(1024) failed");
	}
	for (i = 0; i < CHURN; i++)
		free(p[i]);
}

static void *ticker(void *arg)
{
	(void)arg;
	while (!stop) {
		churn();
		tst_sleep_ms(10);
	}
	return NULL;
}

/* Take the set, write every page; the calling thread's minor faults. */
static long set_take(char **set, int round)
{
	long f0 = thread_minflt();
	int i;

	for (i = 0; i < NBLK; i++) {
		set[i] = bc_launder(malloc(BLK));
		if (!set[i])
			tap_bail("malloc(%lu) failed", BLK);
		memset(set[i], round + i + 1, BLK);
	}
	return thread_minflt() - f0;
}

static void set_free(char **set)
{
	int i;

	for (i = 0; i < NBLK; i++)
		free(set[i]);
}

int main(int argc, char **argv)
{
	struct hak_bigcache_stats st0, st1;
	struct hak_purge_stats ps;
	char *set[NBLK];
	unsigned delay, gap;
	int r, kept = 0;
	pthread_t tk;

	if (!getenv("HAKMEM_PURGE_DELAY_MS")) {
		setenv("HAKMEM_PURGE_DELAY_MS", "150", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	(void)argc;
	free(malloc(1));		/* the options are read at the first call */
	delay = (unsigned)__hak_opt.purge_delay_ms;
	if (!delay || delay > 1000 || __hak_opt.purge_delay_max_ms < 16 * delay)
		tap_skip_all("purge delay %u ms, cap %zu ms: no learning to test", delay,
			     __hak_opt.purge_delay_max_ms);
	if (bc_large_min() > BLK || __hak_opt.bigcache_max < 2 * NBLK * BLK)
		tap_skip_all("4 MiB blocks are not cached here");
	tap_plan(4);
	__hak_bigcache_force_pressure(0);	/* a full machine purges at each put */

	/* past the configured delay and its active window (two delays) */
	gap = 3 * delay + 50;
	if (pthread_create(&tk, NULL, ticker, NULL))
		tap_bail("pthread_create");
	/*
	 * The signal is process-wide: the ticker's first touches of its heap
	 * and the purge of bc_large_min()'s probe would teach a delay before
	 * the set is ever purged. Let the ticker warm up, then trim: that
	 * drops the cache and any open window, and none opens for four delays.
	 */
	tst_sleep_ms(5 * delay);
	malloc_trim(0);
	for (r = 0; r < ROUNDS; r++) {
		faults[r] = set_take(set, r);
		__hak_purge_stats(&ps);
		busy_ms[r] = ps.learned_ms;
		set_free(set);
		tst_sleep_ms(gap);
	}
	for (r = 0; r < ROUNDS; r++)
		tap_diag("round %d: %ld minor faults (set %lu pages), busy delay %zu ms", r,
			 faults[r], SET_PAGES, busy_ms[r]);
	/*
	 * Two of the last three: on a loaded machine a round's gap may
	 * stretch past the learned delay (the delay doubles again then).
	 */
	for (r = ROUNDS - 3; r < ROUNDS; r++)
		kept += faults[r] <= (long)SET_PAGES / 8;
	/*
	 * Unless a delay was learned before the set was ever purged: on a
	 * loaded machine the ticker can wait for a CPU past a delay in the
	 * warm-up, and since ic32 that gap is a busy one (the ticker was
	 * runnable), whose purge of its churn's pages the churn faults back.
	 */
	tap_ok(faults[1] >= (long)SET_PAGES / 2 || busy_ms[0] > delay,
	       "the first re-take after %u ms faults the set in again (%ld faults; busy delay "
	       "at the first take %zu ms)", gap, faults[1], busy_ms[0]);
	tap_ok(kept >= 2,
	       "once the delay is learned BigCache keeps the set: %d of the last 3 re-takes "
	       "fault under 1/8 of it (%ld, %ld, %ld; first %ld)", kept, faults[ROUNDS - 3],
	       faults[ROUNDS - 2], faults[ROUNDS - 1], faults[1]);

	/* Idle: the set cached, then no allocator call in any thread. */
	stop = 1;
	pthread_join(tk, NULL);
	(void)set_take(set, ROUNDS);
	set_free(set);
	__hak_purge_stats(&ps);
	st0 = bc_stats();
	tap_ok(ps.learn_up && st0.resident_bytes >= NBLK * BLK,
	       "busy delay learned: %zu ms (configured %u, %zu up, %zu down), %lu KiB resident "
	       "in the cache", ps.learned_ms, delay, ps.learn_up, ps.learn_down,
	       st0.resident_bytes >> 10);
	/* the gap the busy process kept the set across */
	tst_sleep_ms(gap);
	churn();			/* the first pass after the idle spell */
	st1 = bc_stats();
	tap_ok(st1.resident_bytes < BLK,
	       "idle for %u ms: the pass at the configured delay gives the set back: "
	       "%lu -> %lu KiB resident", gap, st0.resident_bytes >> 10,
	       st1.resident_bytes >> 10);
	tap_finish();
}
