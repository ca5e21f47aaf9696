// SPDX-License-Identifier: MIT
/*
 * report-wait: how long a large malloc/free waits while another thread
 * asks for a report (malloc_info) over many live large blocks.
 *
 *   usage: report-wait live_blocks block_kib pair_kib seconds [reports]
 *
 * The main thread keeps live_blocks blocks of block_kib KiB (one byte
 * written in each); a worker thread mallocs a pair_kib KiB block, writes
 * its first byte and frees it, timing each pair, for the given seconds;
 * with reports 1 (the default) a monitoring thread calls malloc_info(0,
 * /dev/null) in a loop meanwhile, 0 runs the worker alone. Prints the
 * pairs' p50, p99, p99.9, p99.99 and max in microseconds, how many took
 * 200 us or more and their sum (slow, slow_ms: the time the worker stood,
 * which a loaded machine's preemptions add to; compare with reports 0),
 * of them those of 0.5 to 20 ms (stall, stall_ms, stall_max_us: a lock
 * held across system calls, not a real-time throttle's 50 ms under chrt),
 * and the reports' count and mean and max milliseconds per call. A report
 * that holds a layer's lock across its system calls shows as the stalls:
 * about one per report, as long as a shard's share of the report. Run it
 * under chrt -f 1 (the preemptions of a loaded machine are gone; the
 * real-time throttle's 50 ms a second stays, in max_us).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"

static size_t pair_bytes;
static double secs;
static volatile int stop;
static double *lat;		/* microseconds per pair */
static size_t nlat, caplat;

static double mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *worker(void *arg)
{
	double end = mono_us() + secs * 1e6, t0, t1;

	(void)arg;
	while ((t0 = mono_us()) < end && nlat < caplat) {
		volatile char *p = malloc(pair_bytes);

		if (!p)
			die("malloc");
		p[0] = 1;
		free((void *)p);
		t1 = mono_us();
		lat[nlat++] = t1 - t0;
	}
	stop = 1;
	return NULL;
}

static unsigned long reports;
static double report_ms, report_max;

static void *monitor(void *arg)
{
	FILE *f = fopen("/dev/null", "w");
	/*
	 * A deadline too: under chrt -f, beside another real-time program
	 * on the cores, the worker may not run again to say stop.
	 */
	double t0, t, end = mono_us() + secs * 1e6 + 1e6;

	(void)arg;
	if (!f)
		die("/dev/null");
	while (!stop && mono_us() < end) {
		t0 = mono_us();
		malloc_info(0, f);
		t = (mono_us() - t0) / 1e3;
		report_ms += t;
		if (t > report_max)
			report_max = t;
		reports++;
	}
	fclose(f);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t live, block, i, slow = 0, stall = 0;
	double slow_ms = 0, stall_ms = 0, stall_max = 0;
	int with_reports = 1;
	pthread_t w, m;
	char **blocks;

	if (argc < 5) {
		fprintf(stderr, "usage: %s live_blocks block_kib pair_kib seconds [reports]\n",
			argv[0]);
		return 2;
	}
	live = (size_t)arg_long(argv[1], "live_blocks");
	block = (size_t)arg_long(argv[2], "block_kib") << 10;
	pair_bytes = (size_t)arg_long(argv[3], "pair_kib") << 10;
	secs = atof(argv[4]);
	if (argc > 5)
		with_reports = (int)arg_long(argv[5], "reports");
	blocks = xmalloc(sizeof(*blocks) * (live ? live : 1));
	for (i = 0; i < live; i++) {
		blocks[i] = xmalloc(block);
		blocks[i][0] = 1;
	}
	caplat = 20000000;
	lat = xmalloc(sizeof(*lat) * caplat);
	if (with_reports && pthread_create(&m, NULL, monitor, NULL))
		die("pthread_create");
	if (pthread_create(&w, NULL, worker, NULL))
		die("pthread_create");
	pthread_join(w, NULL);
	if (with_reports)
		pthread_join(m, NULL);
	for (i = 0; i < nlat; i++)
		if (lat[i] >= 200) {
			slow++;
			slow_ms += lat[i] / 1e3;
			if (lat[i] >= 500 && lat[i] < 20000) {
				stall++;
				stall_ms += lat[i] / 1e3;
				if (lat[i] > stall_max)
					stall_max = lat[i];
			}
		}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("pairs %zu p50_us %.2f p99_us %.2f p999_us %.2f p9999_us %.1f max_us %.1f "
	       "slow %zu slow_ms %.1f stall %zu stall_ms %.1f stall_max_us %.0f reports %lu report_ms %.2f report_max_ms %.2f\n",
	       nlat, lat[nlat / 2], lat[nlat * 99 / 100], lat[nlat * 999 / 1000],
	       lat[nlat * 9999 / 10000], lat[nlat - 1], slow, slow_ms, stall, stall_ms, stall_max, reports,
	       reports ? report_ms / reports : 0.0, report_max);
	for (i = 0; i < live; i++)
		free(blocks[i]);
	free(blocks);
	free(lat);
	return 0;
}
