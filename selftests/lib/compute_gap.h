/* SPDX-License-Identifier: MIT */
/*
 * A gap with no allocator call: computing or idle? (lib/purge.c, the idle
 * rule; bc_compute and bgp_compute run this, without and with the
 * background purge thread.) One thread takes a set of 4 MiB blocks
 * (BigCache's), writes them, frees them and computes for a gap longer than
 * the configured delay (and BigCache's two-delay active window) without
 * calling the allocator at all, then takes the set again, round after
 * round. The gap is not idleness: the passes after it must be busy ones,
 * watched by the refault feedback, so the learned delay grows past the gap
 * and the later re-takes fault (almost) nothing. Before the rule (ic32)
 * every pass after such a gap was an idle one at the configured delay and
 * every re-take faulted the whole set in again. Then:
 * - computing past the learned delay: the set still goes (busy passes at
 *   the learned delay, which is bounded);
 * - the same gap spent sleeping: the first pass after it (the next call's,
 *   or the background thread's with no call) gives the set back at the
 *   configured delay, whatever was learned.
 * Run with HAKMEM_PURGE_DELAY_MS=100 (it re-executes itself). The spin
 * is on a CPU or waiting for one: on a loaded machine it reads as busy all
 * the same (the point of the rule).
 */
#ifndef HAK_SELFTEST_COMPUTE_GAP_H
#define HAK_SELFTEST_COMPUTE_GAP_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include "minflt.h"
#include "tap.h"
#include "coarse_sleep.h"
#include "init.h"
#include "purge.h"

#define CG_NBLK		4
#define CG_BLK		(4u << 20)
#define CG_PAGES	(CG_NBLK * (long)CG_BLK / 4096)
#define CG_ROUNDS	8

/* BigCache purges at each put on a machine short of memory: not here. */
void __hak_bigcache_force_pressure(int tight) __attribute__((weak));

/* Compute for ms (by the library's clock too) without any allocator call. */
static void cg_compute(unsigned ms)
{
	unsigned long t0 = tst_coarse_ms();
	volatile unsigned long x = 1;

	while (tst_coarse_ms() - t0 < ms)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
}

static long cg_take(char **set, int round)
{
	long f0 = thread_minflt();

	for (int i = 0; i < CG_NBLK; i++) {
		set[i] = malloc(CG_BLK);
		if (!set[i])
			tap_bail("malloc(%u) failed", CG_BLK);
		memset(set[i], round + i + 1, CG_BLK);
	}
	return thread_minflt() - f0;
}

static void cg_free(char **set)
{
	for (int i = 0; i < CG_NBLK; i++)
		free(set[i]);
}

/* The set's resident pages (freed: mincore on what stays mapped). */
static long cg_resident(char **set)
{
	static unsigned char vec[CG_BLK / 4096];
	long n = 0;

	for (int i = 0; i < CG_NBLK; i++) {
		if (mincore(set[i], CG_BLK, vec))
			continue;	/* unmapped: nothing resident */
		for (size_t j = 0; j < sizeof(vec); j++)
			n += vec[j] & 1;
	}
	return n;
}

/* Poll (no allocator call) until the set is under 1/8 resident; ms waited. */
static unsigned cg_wait_gone(char **set, unsigned most)
{
	unsigned waited;

	for (waited = 0; waited < most; waited += 10) {
		if (cg_resident(set) < CG_PAGES / 8)
			break;
		usleep(10 * 1000);
	}
	return waited;
}

static int compute_gap_main(char **argv, bool bg)
{
	static long faults[CG_ROUNDS];
	static size_t busy_ms[CG_ROUNDS];
	struct hak_purge_stats ps;
	char *set[CG_NBLK];
	unsigned delay, gap, spin, waited;
	long res;
	int r, kept = 0;

	if (!getenv("HAKMEM_PURGE_DELAY_MS") || (bg && !getenv("HAKMEM_BACKGROUND_PURGE"))) {
		setenv("HAKMEM_PURGE_DELAY_MS", "100", 0);
		if (bg)
			setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	free(malloc(1));		/* the options are read at the first call */
	delay = (unsigned)__hak_opt.purge_delay_ms;
	if (!delay || delay > 1000 || delay < 20 || __hak_opt.purge_delay_max_ms < 16 * delay)
		tap_skip_all("purge delay %u ms, cap %zu ms: no learning to test", delay,
			     __hak_opt.purge_delay_max_ms);
	if (!IS_ENABLED(CONFIG_HAK_BIGCACHE) || __hak_opt.bigcache_max < 2 * CG_NBLK * CG_BLK)
		tap_skip_all("4 MiB blocks are not cached here");
	tap_plan(5);
	if (IS_ENABLED(CONFIG_HAK_BIGCACHE))	/* weak: no box, no symbol (skipped above) */
		__hak_bigcache_force_pressure(0);

	gap = 3 * delay + 50;		/* past the delay and the active window */
	for (r = 0; r < CG_ROUNDS; r++) {
		faults[r] = cg_take(set, r);
		__hak_purge_stats(&ps);
		busy_ms[r] = ps.learned_ms;
		cg_free(set);
		cg_compute(gap);
	}
	for (r = 0; r < CG_ROUNDS; r++)
		tap_diag("round %d: %ld minor faults (set %ld pages), busy delay %zu ms", r,
			 faults[r], CG_PAGES, busy_ms[r]);
	/* two of the last three: a loaded machine may stretch one gap */
	for (r = CG_ROUNDS - 3; r < CG_ROUNDS; r++)
		kept += faults[r] <= CG_PAGES / 8;
	tap_ok(faults[1] >= CG_PAGES / 2,
	       "the first re-take after computing %u ms faults the set in again (%ld faults)",
	       gap, faults[1]);
	tap_ok(kept >= 2,
	       "computing is not idleness: the delay is learned and %d of the last 3 re-takes "
	       "fault under 1/8 of the set (%ld, %ld, %ld)", kept, faults[CG_ROUNDS - 3],
	       faults[CG_ROUNDS - 2], faults[CG_ROUNDS - 1]);

	/* Sleeping through the same gap: the configured delay. */
	(void)cg_take(set, CG_ROUNDS + 1);
	cg_free(set);
	__hak_purge_stats(&ps);
	tst_sleep_ms(gap);
	if (!bg)
		__hak_purge_tick();	/* the first pass after the idle spell */
	waited = cg_wait_gone(set, bg ? 4000 : 0);
	res = cg_resident(set);
	tap_ok(ps.learned_ms > delay, "busy delay learned: %zu ms (configured %u)",
	       ps.learned_ms, delay);
	/* computing, the set stayed for the gap (BigCache's active window,
	 * two learned delays, and the learned delay itself) */
	tap_ok(res < CG_PAGES / 8 && gap + waited < 2 * ps.learned_ms,
	       "sleeping %u ms instead: the set goes at the configured delay (%ld of %ld "
	       "pages resident after %u ms more)", gap, res, CG_PAGES, waited);

	/* Computing past the learned delay: the set still goes. */
	(void)cg_take(set, CG_ROUNDS);
	cg_free(set);
	__hak_purge_stats(&ps);
	spin = 2 * (unsigned)ps.learned_ms + 8 * delay + 100;
	cg_compute(spin);
	if (!bg)
		__hak_purge_tick();	/* the next slow path's pass */
	waited = cg_wait_gone(set, bg ? 4000 : 0);
	res = cg_resident(set);
	tap_ok(res < CG_PAGES / 8,
	       "computing %u ms (busy delay %zu ms): the set goes all the same "
	       "(%ld of %ld pages resident, %u ms more)", spin, ps.learned_ms, res, CG_PAGES,
	       waited);
	tap_finish();
}

#endif
