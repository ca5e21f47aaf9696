// SPDX-License-Identifier: MIT
/*
 * The purge thread sleeps by the kernel's clock, not through the
 * program's nanosleep, which an interposer answers for: libfaketime
 * multiplies every sleep by 100 at FAKETIME="+0 x0.01". This program
 * defines nanosleep that way (it links libhakmem.a, so the library's calls
 * would bind to it, as to a preloaded one). Before the fix the thread's
 * first quarter-delay nap (62 ms) lasted 6.2 s: no wake-up in the 3 s
 * below, and the large blocks freed before it stayed resident.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <hakmem/hakmem.h>
#include "../lib/tap.h"
#include "../lib/proc.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

#define RATE	100

static unsigned long calls;	/* atomic: calls of this nanosleep */

int nanosleep(const struct timespec *req, struct timespec *rem)
{
	unsigned long long ns = ((unsigned long long)req->tv_sec * 1000000000ull +
				 (unsigned long long)req->tv_nsec) * RATE;
	struct timespec t = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	long r;

	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &t, rem);
	if (r)
		return -1;
	return 0;
}

/* Sleep ms by the kernel, not through the nanosleep above. */
static void nap_ms(unsigned ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };

	syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &t, NULL);
}

int main(int argc, char **argv)
{
	enum { N = 16, SZ = 2 << 20 };
	struct hak_bgpurge_stats st;
	long before, after = 0;
	size_t w0;
	void *v[N];
	int i;

	(void)argc;
	if (!getenv("HAKMEM_BACKGROUND_PURGE")) {
		setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	tap_plan(3);
	for (i = 0; i < N; i++) {
		v[i] = malloc(SZ);
		if (!v[i])
			tap_bail("malloc failed");
		memset(v[i], 0x5a, SZ);
	}
	before = proc_status_kib("VmRSS");
	for (i = 0; i < N; i++)
		free(v[i]);
	/*
	 * No allocator call from here: only the thread can purge. Three naps
	 * (62, 124 and 248 ms, or fewer and shorter while it purges) within
	 * 3 s, for a loaded machine.
	 */
	hak_bgpurge_stats(&st);
	w0 = st.wakeups;
	for (i = 0; i < 30; i++) {
		nap_ms(100);
		hak_bgpurge_stats(&st);
		if (st.wakeups >= w0 + 3)
			break;
	}
	tap_ok(st.running && st.wakeups >= w0 + 3,
	       "the purge thread wakes at its own pace under a slowed nanosleep: %zu wake-ups in %d ms",
	       st.wakeups - w0, (i + 1) * 100);
	if (!IS_ENABLED(CONFIG_HAK_BIGCACHE)) {
		tap_skip("idle release needs BigCache (large blocks are unmapped at free)");
	} else {
		/* a loaded machine may run the thread late: up to 6 s in 0.1 s steps */
		for (i = 0; i < 60; i++) {
			after = proc_status_kib("VmRSS");
			if (after + (N * SZ >> 10) / 2 < before)
				break;
			nap_ms(100);
		}
		tap_ok(after + (N * SZ >> 10) / 2 < before,
		       "idle without allocator calls: RSS %ld -> %ld KiB", before, after);
	}
	tap_ok(!__atomic_load_n(&calls, __ATOMIC_RELAXED),
	       "the library never called the program's nanosleep (%lu calls)",
	       __atomic_load_n(&calls, __ATOMIC_RELAXED));
	tap_finish();
}
