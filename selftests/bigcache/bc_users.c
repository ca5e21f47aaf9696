// SPDX-License-Identifier: MIT
/*
 * BigCache: the default bound is per thread that churns large blocks (up to
 * four), counted over the current and the last one-second window; a bound
 * set with HAKMEM_BIGCACHE_MAX is the process's and does not scale.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "bc_test.h"

static size_t big;	/* a request the large path serves */

/* One large malloc + free: the calling thread counts as a user. */
static void churn(void)
{
	void *p = bc_launder(malloc(big));

	memset(p, 1, 64);
	free(p);
}

static void *worker(void *arg)
{
	(void)arg;
	churn();
	return NULL;
}

/* n threads that each churn once, then one churn here (the bound is updated at a put). */
static size_t bound_after(int n)
{
	pthread_t t[8];
	int i;

	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, worker, NULL))
			tap_bail("pthread_create");
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	churn();
	return bc_stats().max_bytes;
}

int main(void)
{
	const size_t def = HAK_BIGCACHE_DEFAULT_MAX;
	size_t m;

	if (getenv("HAKMEM_BIGCACHE_MAX"))
		tap_skip_all("HAKMEM_BIGCACHE_MAX is set: the default bound is not in use");
	tap_plan(5);
	big = bc_page_up(bc_large_min()) * 4;

	churn();
	m = bc_stats().max_bytes;
	tap_ok(m == def, "one thread: the default bound (%zu MiB)", m >> 20);

	m = bound_after(2);
	tap_ok(m >= 2 * def && m <= 3 * def,
	       "three threads in one or two windows: 2..3x the default (%zu MiB)", m >> 20);

	m = bound_after(8);
	tap_ok(m == 4 * def, "nine threads: at most 4x the default (%zu MiB)", m >> 20);

	/* two windows with only this thread: back to one stock */
	usleep(1100 * 1000);
	churn();
	usleep(1100 * 1000);
	churn();
	m = bc_stats().max_bytes;
	tap_ok(m == def, "two quiet windows later: the default bound again (%zu MiB)", m >> 20);

	bc_set_max(def / 2);
	m = bound_after(3);
	tap_ok(m == def / 2, "a bound that was set does not scale (%zu MiB)", m >> 20);
	tap_finish();
}
