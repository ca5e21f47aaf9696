/* SPDX-License-Identifier: MIT */
/*
 * A test that moves hakmem's coarse clock: this header defines
 * __hak_clock_hook (lib/os.h; include it in one file only), which answers
 * for the kernel in the library's clock reads and adds clock_off_ms to
 * every CLOCK_MONOTONIC_COARSE reading. (The library never reads the
 * program's clock_gettime, which an interposer such as libfaketime may
 * answer for: selftests/core/clock_interposer.) hakmem's decay
 * reads that clock, so a test can age caches by hours or days at once,
 * and the ages its passes see do not depend on the machine's load.
 */
#ifndef HAK_SELFTEST_CLOCK_OFFSET_H
#define HAK_SELFTEST_CLOCK_OFFSET_H

#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static volatile long long clock_off_ms;	/* added to the coarse clock */

int __hak_clock_hook(clockid_t id, struct timespec *ts);

int __hak_clock_hook(clockid_t id, struct timespec *ts)
{
	long r = syscall(SYS_clock_gettime, id, ts);
	long long off = clock_off_ms, ns;

	if (!r && id == CLOCK_MONOTONIC_COARSE && off) {
		ns = ts->tv_nsec + (off % 1000) * 1000000LL;
		ts->tv_sec += off / 1000 + ns / 1000000000LL;
		ts->tv_nsec = ns % 1000000000LL;
	}
	return (int)r;
}

#endif
