/* SPDX-License-Identifier: MIT */
/*
 * Sleep by the library's clock as well as the wall's. hakmem's decay
 * reads CLOCK_MONOTONIC_COARSE, which a loaded VM can update late (a
 * fresh-clone CI once saw it move 28 ms over a 50 ms sleep), so a test
 * that sleeps past a delay and then expects a pass to act waits here
 * until that clock has moved as far. The wait is bounded (10 s more):
 * past it the test goes on and its own check reports what it finds.
 */
#ifndef HAK_SELFTEST_COARSE_SLEEP_H
#define HAK_SELFTEST_COARSE_SLEEP_H

#include <errno.h>
#include <time.h>
#include <unistd.h>

static inline unsigned long tst_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (unsigned long)ts.tv_sec * 1000 + (unsigned long)ts.tv_nsec / 1000000;
}

static inline void tst_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	unsigned long t0 = tst_coarse_ms();
	int i, saved = errno;

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	for (i = 0; tst_coarse_ms() - t0 < ms && i < 10000; i++)
		usleep(1000);
	errno = saved;
}

#endif
