/* SPDX-License-Identifier: MIT */
/*
 * Minor page faults so far, of the calling thread (RUSAGE_THREAD: what a
 * test's own allocations touched, not a ticker's or the purge thread's)
 * or of the whole process. The one copy of what six tests wrote for
 * themselves.
 */
#ifndef HAK_SELFTEST_MINFLT_H
#define HAK_SELFTEST_MINFLT_H

#include <sys/resource.h>
#include "tap.h"

static inline long minflt_of(int who)
{
	struct rusage ru;

	if (getrusage(who, &ru))
		tap_bail("getrusage");
	return ru.ru_minflt;
}

static inline long thread_minflt(void)
{
	return minflt_of(RUSAGE_THREAD);
}

static inline long process_minflt(void)
{
	return minflt_of(RUSAGE_SELF);
}

#endif
