// SPDX-License-Identifier: MIT
/*
 * rlimit_late: a program that lowers RLIMIT_AS after it has allocated
 * (Python's resource.setrlimit) keeps the limit for itself.
 *
 * hakmem's page map (lib/superslab.h) is 4 GiB of address space reserved
 * at the first superslab: once it exists, a limit of a few hundred MiB
 * left the program nothing, and its next thread or mapping failed. Now
 * the map is given up when the soft limit goes under 64 GiB: at once
 * through the interposed setrlimit, or at hakmem's next refused mapping
 * when the limit came another way (here the raw system call). Each case
 * runs in a child forked after the parent allocated (so it has the map),
 * with the limit at the program's own address space (VmSize, less the
 * map's 4 GiB when VmSize holds them) plus 256 MiB:
 *  1. setrlimit, then 8 threads with 256 KiB stacks start at once and
 *     allocate 4 KiB blocks until ENOMEM;
 *  2. the prlimit64 system call, then malloc(4 KiB) until ENOMEM gets at
 *     least 128 MiB (without the map given up: only what the superslab
 *     stock held, at most 62 MiB);
 *  3. setrlimit while 4 threads malloc, fill, check and free blocks of
 *     16 B to 1 KiB (the free fast path racing the map going away): no
 *     crash, no block damaged, and then (hakmem) VmSize under the limit.
 * Also built against the C library's malloc; it passes there too.
 */
#include <pthread.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "core_test.h"

#define ROOM		(256UL << 20)
#define NTHREADS	8
#define STACK		(256UL << 10)
#define MAP_KIB		(4UL << 20)	/* hakmem's page map, in KiB */

static void *(*volatile const v_malloc)(size_t) = malloc;
static rlim_t limit;

/* Allocate n-byte blocks until NULL (chained through their first word), free them. */
static size_t fill_all(size_t n, int *err)
{
	void *head = NULL, *p;
	size_t got = 0;

	for (;;) {
		errno = 0;
		p = v_malloc(n);
		if (!p)
			break;
		*(void **)p = head;
		head = p;
		got++;
	}
	*err = errno;
	while (head) {
		p = *(void **)head;
		free(head);
		head = p;
	}
	return got;
}

static int set_limit(bool raw)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl))
		return -1;
	rl.rlim_cur = limit;
	if (raw)
		return (int)syscall(SYS_prlimit64, 0, RLIMIT_AS, &rl, NULL);
	return setrlimit(RLIMIT_AS, &rl);
}

static void *thread_fill(void *arg)
{
	int err;

	fill_all(4096, &err);
	*(int *)arg = err;
	return NULL;
}

/* 1: 0 ok; 1 VmSize over the limit; 2 pthread_create; 3 not ENOMEM. */
static int case_threads(void)
{
	pthread_t t[NTHREADS];
	int err[NTHREADS];
	pthread_attr_t attr;
	long vm;

	if (set_limit(false))
		return 9;
	vm = proc_status_kib("VmSize");
	if (vm < 0 || (rlim_t)vm << 10 > limit)
		return 1;
	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, STACK))
		return 9;
	for (int i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], &attr, thread_fill, &err[i]))
			return 2;
	for (int i = 0; i < NTHREADS; i++)
		if (pthread_join(t[i], NULL) || err[i] != ENOMEM)
			return 3;
	return 0;
}

/* 2: 0 ok; 3 not ENOMEM; 4 too little served. */
static int case_raw(void)
{
	int err;
	size_t got;

	if (set_limit(true))
		return 9;
	got = fill_all(4096, &err) * 4096;
	printf("# raw prlimit64: %zu MiB served in 4 KiB blocks\n", got >> 20);
	if (err != ENOMEM)
		return 3;
	return got >= ROOM / 2 ? 0 : 4;
}

static volatile int stop;

/* Random sizes 16..1024, a window of 64 blocks, each checked before its free. */
static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
	void *win[64] = { 0 };
	size_t len[64] = { 0 };
	long bad = 0;

	while (!stop) {
		for (int i = 0; i < 64; i++) {
			if (win[i]) {
				bad += ct_check(win[i], len[i]) != len[i];
				free(win[i]);
			}
			seed = seed * 1103515245u + 12345u;
			len[i] = 16 + (seed >> 8) % 1009;
			win[i] = v_malloc(len[i]);
			if (win[i])
				ct_fill(win[i], len[i]);
		}
	}
	for (int i = 0; i < 64; i++) {
		if (win[i])
			bad += ct_check(win[i], len[i]) != len[i];
		free(win[i]);
	}
	return (void *)bad;
}

/* 3: 0 ok; 5 a block damaged; 1 VmSize over the limit. */
static int case_race(void)
{
	const struct timespec ms100 = { 0, 100 * 1000 * 1000 };
	pthread_t t[4];
	long bad = 0, vm;

	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)))
			return 9;
	nanosleep(&ms100, NULL);
	if (set_limit(false))
		return 9;
	nanosleep(&ms100, NULL);
	nanosleep(&ms100, NULL);
	stop = 1;
	for (int i = 0; i < 4; i++) {
		void *r;

		if (pthread_join(t[i], &r))
			return 9;
		bad += (long)r;
	}
	if (bad)
		return 5;
	/* not glibc's: its threads' arenas, 64 MiB each, were reserved before */
	vm = proc_status_kib("VmSize");
	return !CT_HAKMEM || (vm >= 0 && (rlim_t)vm << 10 <= limit) ? 0 : 1;
}

int main(void)
{
	static const struct { int (*fn)(void); const char *what; } cases[] = {
		{ case_threads, "setrlimit, then 8 threads (256 KiB stacks) start and get 4 KiB "
				"blocks until ENOMEM" },
		{ case_raw, "the prlimit64 system call, then malloc(4 KiB) gets half the room "
			    "before ENOMEM" },
		{ case_race, "setrlimit while 4 threads malloc and free: no block damaged, "
			     "VmSize under the limit" },
	};
	struct rlimit rl;
	void *keep[64];
	long vm;

	/* allocate first: the page map exists before the limit */
	for (int i = 0; i < 64; i++)
		keep[i] = v_malloc((size_t)16 << (i % 13));
	vm = proc_status_kib("VmSize");
	if (vm <= 0)
		tap_skip_all("no VmSize in /proc/self/status");
	if ((unsigned long)vm > MAP_KIB)
		vm -= MAP_KIB;	/* the map's 4 GiB are not the program's */
	limit = ((rlim_t)vm << 10) + ROOM;
	if (getrlimit(RLIMIT_AS, &rl) || (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < limit))
		tap_skip_all("cannot set RLIMIT_AS to %lu MiB", (unsigned long)(limit >> 20));
	tap_plan(ARRAY_SIZE_CT(cases));
	for (size_t i = 0; i < ARRAY_SIZE_CT(cases); i++) {
		int st = 0, rc;
		pid_t pid;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			rc = cases[i].fn();
			fflush(stdout);
			_exit(rc);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			tap_bail("fork/waitpid failed");
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		tap_ok(rc == 0, "limit %lu MiB: %s (%s %d)", (unsigned long)(limit >> 20),
		       cases[i].what, rc < 0 ? "signal" : "code", rc < 0 ? WTERMSIG(st) : rc);
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	tap_finish();
}
