// SPDX-License-Identifier: MIT
/*
 * busy_tasks: what one reading of the other threads' busy time costs
 * (lib/os.c, __hak_os_busy_others; the background purge thread makes one
 * at each of its passes while learning is on, every 62-250 ms in an idle
 * program). Each other thread's /proc/self/task/N/schedstat is three
 * system calls; past HAK_BUSY_TASKS_MAX (64) other threads the reading
 * takes the CPU-time clocks instead, so 10,000 idle threads no longer
 * cost a large part of a CPU (rv33: Documentation/reliability.md).
 *
 * Linked with --wrap=syscall: the library's raw openat calls of a
 * schedstat file are counted.
 *   1. 4 idle threads: a reading from schedstat, one open each (and the
 *      listing's);
 *   2. 300 idle threads: at most 64 schedstat opens, and a figure (the CPU
 *      clocks); main opened all 300;
 *   3. back at 4 threads: schedstat again (the source was not dropped for
 *      good), and errno kept throughout.
 * Skips where /proc/self/task/N/schedstat cannot be read.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "os.h"

#define MANY	300
#define FEW	4
#define BOUND	64

long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);

static unsigned long opens;	/* atomic: openat of a schedstat file */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

long __wrap_syscall(long nr, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_openat && a[1] && strstr((const char *)a[1], "schedstat"))
		__atomic_fetch_add(&opens, 1, __ATOMIC_RELAXED);
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop;

static void *idler(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stop)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void start(pthread_t *t, unsigned n)
{
	pthread_attr_t at;
	unsigned i;

	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 << 10);
	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], &at, idler, NULL))
			tap_bail("pthread_create (%u)", i);
	pthread_attr_destroy(&at);
}

static void finish(pthread_t *t, unsigned n)
{
	unsigned i;

	pthread_mutex_lock(&mu);
	stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	stop = 0;
}

/* The process's other tasks now. */
static unsigned long others(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned long n = 0;

	if (!d)
		tap_bail("opendir /proc/self/task");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/*
 * One reading: its source, the schedstat opens it made, its time in us;
 * errno must come back as it was.
 */
static int reading(unsigned long *n, double *us, bool *err_kept)
{
	uint64_t ns = 0, t0;
	int src;

	__atomic_store_n(&opens, 0, __ATOMIC_RELAXED);
	errno = 4321;
	t0 = now_ns();
	src = __hak_os_busy_others(&ns);
	*us = (double)(now_ns() - t0) / 1e3;
	*err_kept = errno == 4321;
	*n = __atomic_load_n(&opens, __ATOMIC_RELAXED);
	return src;
}

int main(void)
{
	static pthread_t t[MANY];
	unsigned long n, want;
	double us;
	bool kept;
	int src;
	char path[64];

	free(malloc(1));
	snprintf(path, sizeof(path), "/proc/self/task/%ld/schedstat", (long)syscall(SYS_gettid));
	if (access(path, R_OK))
		tap_skip_all("%s: %s", path, strerror(errno));
	tap_plan(3);

	start(t, FEW);
	want = others();
	src = reading(&n, &us, &kept);
	tap_ok(src == HAK_OS_BUSY_SCHED && n == want && kept,
	       "%lu other threads: source %d (schedstat %d), %lu schedstat opens, %.0f us, "
	       "errno %s", want, src, HAK_OS_BUSY_SCHED, n, us, kept ? "kept" : "changed");
	finish(t, FEW);

	start(t, MANY);
	want = others();
	src = reading(&n, &us, &kept);
	tap_ok(src != HAK_OS_BUSY_NONE && n <= BOUND && kept,
	       "%lu other threads: source %d, %lu schedstat opens (at most %u), %.0f us, errno %s",
	       want, src, n, BOUND, us, kept ? "kept" : "changed");
	finish(t, MANY);

	start(t, FEW);
	want = others();
	src = reading(&n, &us, &kept);
	tap_ok(src == HAK_OS_BUSY_SCHED && n == want && kept,
	       "%lu other threads again: source %d, %lu schedstat opens", want, src, n);
	finish(t, FEW);
	tap_finish();
}
