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
 */
#ifndef HAK_SELFTEST_REFAULT_SET_H
#define HAK_SELFTEST_REFAULT_SET_H

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "tap.h"
#include "coarse_sleep.h"
#include "purge.h"

#define REFAULT_NMID	24
#define REFAULT_MIDSZ	(160u << 10)
#define REFAULT_GROWSZ	(1u << 20)
#define REFAULT_PAGES	((REFAULT_NMID * (size_t)REFAULT_MIDSZ + REFAULT_GROWSZ) / 4096)

struct refault_set {
	char *mid[REFAULT_NMID];
	char *grow;
};

static inline long refault_thread_minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

static inline long refault_set_take(struct refault_set *s, int round)
{
	long f0 = refault_thread_minflt();
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
	return refault_thread_minflt() - f0;
}

static inline void refault_set_free(struct refault_set *s)
{
	int i;

	for (i = 0; i < REFAULT_NMID; i++)
		free(s->mid[i]);
	free(s->grow);
}

struct refault_rounds {
	unsigned gap;			/* ms between a round's free and the next take */
	int rounds;
	long *faults;			/* [rounds] */
	size_t *busy_ms;		/* [rounds]: hak_purge_stats' learned_ms */
};

static inline void *refault_worker(void *arg)
{
	struct refault_rounds *rr = arg;
	struct refault_set set;
	int r;

	for (r = 0; r < rr->rounds; r++) {
		struct hak_purge_stats ps;

		rr->faults[r] = refault_set_take(&set, r);
		__hak_purge_stats(&ps);
		rr->busy_ms[r] = ps.learned_ms;
		refault_set_free(&set);
		tst_sleep_ms(rr->gap);
	}
	return NULL;
}

static inline void refault_check(const struct refault_rounds *rr)
{
	long late = 0;
	int r;

	for (r = 0; r < rr->rounds; r++)
		tap_diag("round %d: %ld minor faults (working set %zu pages), busy delay %zu ms",
			 r, rr->faults[r], REFAULT_PAGES, rr->busy_ms[r]);
	for (r = rr->rounds - 3; r < rr->rounds; r++)
		late += rr->faults[r];
	late /= 3;
	tap_ok(rr->faults[1] >= (long)REFAULT_PAGES / 2,
	       "the first re-take after %u ms faults the set in again (%ld faults)", rr->gap,
	       rr->faults[1]);
	tap_ok(late <= rr->faults[1] / 4,
	       "after learning the re-takes fault far less (%ld a round, first %ld)", late,
	       rr->faults[1]);
}

#endif
