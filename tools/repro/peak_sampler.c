// SPDX-License-Identifier: MIT
/*
 * peak_sampler: where a program's resident memory is at its peak, by layer.
 * Preloaded after an allocator, a thread reads /proc/self/statm every 10 ms
 * and, each time the resident set is 1 MiB over its highest so far, appends
 * the allocator's malloc_info() (hakmem's: every layer's resident, in-use
 * and dirty bytes; glibc's: its arenas) to PEAK_DIR/peak.PID.xml, with the
 * time and the resident set in a comment before it. The last record of the
 * largest file is the peak. A diagnostic only: the thread makes the program
 * multi-threaded, which some allocator rules look at.
 *
 *   cc -O2 -shared -fPIC -o peak_sampler.so tools/repro/peak_sampler.c -lpthread
 *   PEAK_ON=1 PEAK_DIR=/tmp/pk LD_PRELOAD="build/d/libhakmem.so ./peak_sampler.so" prog
 *
 * Used on R's examples (Documentation/design.md, "Peak RSS of real programs
 * against glibc"). Without PEAK_ON it does nothing.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long rss_kib(void)
{
	long size, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void *sampler(void *arg)
{
	const char *dir = getenv("PEAK_DIR");
	struct timespec t0;
	char path[512];
	long max = 0, r;
	FILE *f;

	(void)arg;
	snprintf(path, sizeof(path), "%s/peak.%d.xml", dir ? dir : "/tmp", (int)getpid());
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = rss_kib();
		if (r > max + 1024) {
			max = r;
			f = fopen(path, "a");
			if (f) {
				fprintf(f, "<!-- t=%.0f ms rss=%ld kB -->\n", ms_since(&t0), r);
				malloc_info(0, f);
				fclose(f);
			}
		}
		usleep(10000);
	}
	return NULL;
}

__attribute__((constructor)) static void peak_sampler_start(void)
{
	pthread_attr_t a;
	pthread_t t;

	if (!getenv("PEAK_ON"))
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_create(&t, &a, sampler, NULL);
	pthread_attr_destroy(&a);
}
