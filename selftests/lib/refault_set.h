/* SPDX-License-Identifier: MIT */
/*
 * A request's working set for the refault-feedback tests (lib/purge.c,
 * learn()): REFAULT_NMID L2.5 pool blocks of REFAULT_MIDSZ bytes and a
 * buffer grown by realloc to REFAULT_GROWSZ (a grow-area slot), each
 * written in full. refault_set_take() returns the minor faults the calling
 * thread took while building it (getrusage RUSAGE_THREAD);
 * refault_set_free() gives it all back. refault_worker() is a thread that
 * takes and frees a set, then sleeps gap ms, rounds times, noting each
 * round's faults and the busy passes' delay at its take; refault_check()
 * prints them and asks that the first re-take faulted the set in again and
 * the last three rounds far less (two TAP checks).
 *
 * The tests keep the process busy with a ticker thread that calls the
 * allocator now and then, and calls refault_tick() after each call. On a
 * crowded machine the ticker can sleep past a whole purge delay: for the
 * allocator the process was idle then, and a pass rightly purged the set
 * at the configured delay. The worker notes the longest gap between ticks
 * in each round's wait, and refault_check() judges only the rounds whose
 * wait was busy (a ticker gap under the delay).
 */
#ifndef HAK_SELFTEST_REFAULT_SET_H
#define HAK_SELFTEST_REFAULT_SET_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "minflt.h"
#include "tap.h"
#include "coarse_sleep.h"
#include "init.h"
#include "purge.h"

#define REFAULT_NMID	24
#define REFAULT_MIDSZ	(160u << 10)
#define REFAULT_GROWSZ	(1u << 20)
#define REFAULT_PAGES	((REFAULT_NMID * (size_t)REFAULT_MIDSZ + REFAULT_GROWSZ) / 4096)

struct refault_set {
	char *mid[REFAULT_NMID];
	char *grow;
};

static inline long refault_set_take(struct refault_set *s, int round)
{
	long f0 = thread_minflt();
	size_t len;
	int i;

	for (i = 0; i < REFAULT_NMID; i++) {
		s->mid[i] = malloc(REFAULT_MIDSZ);
		if (!s->mid[i])
			tap_bail("malloc(%u) failed", REFAULT_MIDSZ);
		memset(s->mid[i], round + i, REFAULT_MIDSZ);
	}
	s->grow = NULL;
	for (len = 16u << 10; len <= REFAULT_GROWSZ; len *= 2) {
		char *g = realloc(s->grow, len);

		if (!g)
			tap_bail("realloc(%zu) failed", len);
		s->grow = g;
		memset(s->grow, round, len);
	}
	return thread_minflt() - f0;
}

static inline void refault_set_free(struct refault_set *s)
{
	int i;

	for (i = 0; i < REFAULT_NMID; i++)
		free(s->mid[i]);
	free(s->grow);
}

/*
 * The configured purge delay (the options are read at the first call), or
 * the whole test skipped where there is nothing to learn: no delay, one
 * under min_ms or past 1 s, a cap at most cap_mult delays, or no L2.5
 * pool (its blocks take the large path, given back at free).
 */
static inline unsigned refault_delay(unsigned cap_mult, unsigned min_ms)
{
	unsigned delay;

	free(malloc(1));
	delay = (unsigned)__hak_opt.purge_delay_ms;
	if (!delay || __hak_opt.purge_delay_max_ms <= (size_t)cap_mult * delay || delay > 1000 ||
	    delay < min_ms)
		tap_skip_all("purge delay %u ms, cap %zu ms: no learning to test", delay,
			     __hak_opt.purge_delay_max_ms);
	if (!IS_ENABLED(CONFIG_HAK_L25_POOL))
		tap_skip_all("no L2.5 pool: the set is given back at free, no purge to learn from");
	return delay;
}

#define REFAULT_MAX_ROUNDS	16

struct refault_rounds {
	unsigned gap;			/* ms between a round's free and the next take */
	int rounds;			/* at most REFAULT_MAX_ROUNDS */
	unsigned delay;			/* the configured purge delay, ms */
	long faults[REFAULT_MAX_ROUNDS];
	size_t busy_ms[REFAULT_MAX_ROUNDS];	/* hak_purge_stats' learned_ms at the take */
	unsigned tick_gap[REFAULT_MAX_ROUNDS];	/* longest ticker gap in the wait before */
};

static unsigned long refault_tick_last;	/* atomic: tst_coarse_ms() at the last tick */
static unsigned refault_tick_max;	/* atomic: longest gap since the worker's reset */

/* The ticker, after each allocator call. */
static inline void refault_tick(void)
{
	unsigned long now = tst_coarse_ms();
	unsigned long last = __atomic_exchange_n(&refault_tick_last, now, __ATOMIC_RELAXED);
	unsigned g = last ? (unsigned)(now - last) : 0;
	unsigned cur = __atomic_load_n(&refault_tick_max, __ATOMIC_RELAXED);

	while (g > cur && !__atomic_compare_exchange_n(&refault_tick_max, &cur, g, false,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* The longest ticker gap since the last call, counting the one still open. */
static inline unsigned refault_tick_reset(void)
{
	unsigned long last = __atomic_load_n(&refault_tick_last, __ATOMIC_RELAXED);
	unsigned g = __atomic_exchange_n(&refault_tick_max, 0, __ATOMIC_RELAXED);
	unsigned open = last ? (unsigned)(tst_coarse_ms() - last) : 0;

	return g > open ? g : open;
}

static inline void *refault_worker(void *arg)
{
	struct refault_rounds *rr = arg;
	struct refault_set set;
	int r;

	if (rr->rounds > REFAULT_MAX_ROUNDS)
		tap_bail("%d rounds, at most %d", rr->rounds, REFAULT_MAX_ROUNDS);
	for (r = 0; r < rr->rounds; r++) {
		struct hak_purge_stats ps;

		rr->tick_gap[r] = r ? refault_tick_reset() : 0;
		rr->faults[r] = refault_set_take(&set, r);
		__hak_purge_stats(&ps);
		rr->busy_ms[r] = ps.learned_ms;
		refault_set_free(&set);
		(void)refault_tick_reset();
		tst_sleep_ms(rr->gap);
	}
	return NULL;
}

/*
 * Was the wait before round r busy: no ticker gap near the delay? (An
 * eighth of it short: the tick is noted just after the allocator's stamp,
 * and the coarse clock moves in steps of a few ms.)
 */
static inline bool refault_busy(const struct refault_rounds *rr, int r)
{
	return rr->tick_gap[r] + rr->delay / 8 < rr->delay;
}

static inline void refault_check(const struct refault_rounds *rr)
{
	long late = 0;
	int r, n = 0;

	for (r = 0; r < rr->rounds; r++)
		tap_diag("round %d: %ld minor faults (working set %zu pages), busy delay %zu ms, "
			 "longest ticker gap %u ms%s", r, rr->faults[r], REFAULT_PAGES,
			 rr->busy_ms[r], rr->tick_gap[r],
			 r && !refault_busy(rr, r) ? " (idle for the allocator: not judged)" : "");
	for (r = rr->rounds - 1; r >= 2 && n < 3; r--) {
		if (refault_busy(rr, r)) {
			late += rr->faults[r];
			n++;
		}
	}
	tap_ok(rr->faults[1] >= (long)REFAULT_PAGES / 2,
	       "the first re-take after %u ms faults the set in again (%ld faults)", rr->gap,
	       rr->faults[1]);
	if (n < 2) {
		tap_skip("the ticker slept past the delay in all but %d of the late rounds", n);
		return;
	}
	late /= n;
	tap_ok(late <= rr->faults[1] / 4,
	       "after learning the re-takes fault far less (%ld a round over the last %d busy "
	       "rounds, first %ld)", late, n, rr->faults[1]);
}

#endif
