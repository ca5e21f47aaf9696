// SPDX-License-Identifier: MIT
/*
 * report_unlocked: a report (malloc_info) asks the kernel which pages of
 * each large block are resident without holding the locks that the other
 * threads' large mallocs and frees take (issue 11, item 6). Before, each
 * large shard's lock was held across one system call per block (~5 ms a
 * shard at 50,000 blocks), and BigCache's across one per cached block: a
 * monitoring thread's reports stalled every large malloc and free.
 *
 * Linked with --wrap=ioctl and --wrap=mincore, which stand in for the
 * moment of the system call, with no timing to guess: armed, the report's
 * first call over a block the test names (PAGEMAP_SCAN's range, or
 * mincore's, holds it) asks a helper thread to take the lock that guards
 * that block, and waits for it (up to WAIT_MS, so a lock held across the
 * call fails the test and does not hang it):
 *   1. a live large block: the helper frees it (its shard's lock);
 *   2. a block BigCache holds: the helper mallocs and frees a block of
 *      its size (BigCache's lock). Skipped when BigCache is off.
 * hakmem only (the C library's malloc_info makes no such calls).
 */
#include <pthread.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <time.h>
#include "core_test.h"

#define MIB		(1UL << 20)
#define NLIVE		64
#define LIVE_LEN	MIB
#define CACHED_LEN	(4 * MIB)
#define WAIT_MS		3000

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
int __real_mincore(void *p, size_t len, unsigned char *vec);
int __wrap_mincore(void *p, size_t len, unsigned char *vec);

/* PAGEMAP_SCAN's argument, as far as the range (linux/fs.h, Linux 6.7) */
struct scan_head {
	uint64_t size, flags, start, end;
};

#define PAGEMAP_SCAN_NR	_IOWR('f', 16, struct { uint64_t w[12]; })

enum job { JOB_NONE, JOB_FREE, JOB_CYCLE, JOB_QUIT };

static volatile int armed;		/* the case's target is set */
static char *volatile target;		/* the block the report must reach */
static volatile int pending;		/* the case's job, given at the call */
static volatile int job, job_done;	/* to the helper and back */
static volatile int seen, waited_ok;
static pid_t main_tid;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Inside the report's system call over [start, end): hand the helper its
 * job and wait for it, the report's own locks (if any) still held.
 */
static void at_call(uintptr_t start, uintptr_t end)
{
	uintptr_t t = (uintptr_t)target;
	uint64_t until;

	if (!armed || gettid() != main_tid || t < start || t >= end)
		return;
	armed = 0;
	seen = 1;
	__atomic_store_n(&job_done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&job, pending, __ATOMIC_RELEASE);
	until = now_ms() + WAIT_MS;
	while (!__atomic_load_n(&job_done, __ATOMIC_ACQUIRE) && now_ms() < until)
		sched_yield();
	waited_ok = __atomic_load_n(&job_done, __ATOMIC_ACQUIRE);
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == (unsigned long)PAGEMAP_SCAN_NR) {
		const struct scan_head *h = arg;

		at_call((uintptr_t)h->start, (uintptr_t)h->end);
	}
	return __real_ioctl(fd, req, arg);
}

int __wrap_mincore(void *p, size_t len, unsigned char *vec)
{
	at_call((uintptr_t)p, (uintptr_t)p + len);
	return __real_mincore(p, len, vec);
}

static char *volatile helper_block;	/* JOB_FREE frees it */

static void *helper(void *arg)
{
	int j;

	(void)arg;
	for (;;) {
		j = __atomic_load_n(&job, __ATOMIC_ACQUIRE);
		if (j == JOB_QUIT)
			return NULL;
		if (j == JOB_NONE) {
			sched_yield();
			continue;
		}
		if (j == JOB_FREE) {
			free(helper_block);
		} else {
			char *q = malloc(ct_opaque(CACHED_LEN));

			if (q)
				q[0] = 1;
			free(q);
		}
		__atomic_store_n(&job, JOB_NONE, __ATOMIC_RELAXED);
		__atomic_store_n(&job_done, 1, __ATOMIC_RELEASE);
	}
}

/* One case: arm for target with the helper's job, report, check. */
static void run_case(char *t, enum job which, const char *what)
{
	FILE *f = fopen("/dev/null", "w");

	if (!f)
		tap_bail("/dev/null");
	seen = waited_ok = 0;
	target = t;
	pending = which;
	armed = 1;
	malloc_info(0, f);
	armed = 0;
	fclose(f);
	if (!seen) {
		tap_skip("%s: the report made no kernel call over it", what);
		return;
	}
	if (!waited_ok) {
		/* the lock was held: let the report's end free the helper */
		while (!__atomic_load_n(&job_done, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	tap_ok(waited_ok, "%s: another thread's %s ran while the report asked the kernel",
	       what, which == JOB_CYCLE ? "malloc and free" : "free");
}

int main(void)
{
	static char *live[NLIVE];
	pthread_t th;
	uintptr_t at;
	char *c;
	unsigned i;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's reports only");
	tap_plan(2);
	main_tid = gettid();
	for (i = 0; i < NLIVE; i++) {
		live[i] = malloc(ct_opaque(LIVE_LEN));
		if (!live[i])
			tap_bail("malloc");
		memset(live[i], 1, 4096);
	}
	if (pthread_create(&th, NULL, helper, NULL))
		tap_bail("pthread_create");

	helper_block = live[NLIVE / 2];
	run_case(live[NLIVE / 2], JOB_FREE, "a live large block");
	live[NLIVE / 2] = NULL;

	c = malloc(ct_opaque(CACHED_LEN));
	if (!c)
		tap_bail("malloc");
	memset(c, 1, 4096);
	at = ct_opaque((uintptr_t)c);	/* only its address is used from here */
	free(c);			/* BigCache keeps it (when it is on) */
	run_case((char *)at, JOB_CYCLE, "a block BigCache holds");

	__atomic_store_n(&job, JOB_QUIT, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	for (i = 0; i < NLIVE; i++)
		free(live[i]);
	tap_finish();
}
