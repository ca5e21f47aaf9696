/* SPDX-License-Identifier: MIT */
/*
 * A request's working set for the refault-feedback tests (lib/purge.c,
 * learn()): REFAULT_NMID L2.5 pool blocks of REFAULT_MIDSZ bytes and a
 * buffer grown by realloc to REFAULT_GROWSZ (a grow-area slot), each
 * written in full. refault_set_take() returns the minor faults the calling
 * thread took while building it (getrusage RUSAGE_THREAD);
 * refault_set_free() gives it all back.
 */
#ifndef HAK_SELFTEST_REFAULT_SET_H
#define HAK_SELFTEST_REFAULT_SET_H

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "tap.h"

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

#endif
