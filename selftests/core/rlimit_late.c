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
 *     crash, no block damaged, and then (hakmem) VmSize under the limit;
 *  4. prlimit on the id of a thread of ours (from that thread), which the
 *     kernel applies to the whole process: VmSize under the limit at once;
 *  5. prlimit on another process (a child): our limit and map stay;
 *  6. after the give-up: a refused setrlimit sets EINVAL, a prlimit that
 *     only reads changes nothing, a fork's child allocates, and with the
 *     limit raised again the process allocates, its map not taken again;
 *  7. setrlimit64 and prlimit64, the names a program built with
 *     _FILE_OFFSET_BITS=64 calls (interposed too): VmSize under the limit
 *     at once, as with setrlimit.
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

static void *thread_prlimit(void *arg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl))
		return NULL;
	rl.rlim_cur = limit;
	*(int *)arg = prlimit(gettid(), RLIMIT_AS, &rl, NULL);
	return NULL;
}

/*
 * 4: prlimit on a thread's id (not the process's) limits the process:
 * 0 ok; 1 VmSize over the limit (the map was kept).
 */
static int case_tid(void)
{
	pthread_t t;
	int r = -1;
	long vm;

	if (pthread_create(&t, NULL, thread_prlimit, &r) || pthread_join(t, NULL) || r)
		return 9;
	vm = proc_status_kib("VmSize");
	return vm >= 0 && (rlim_t)vm << 10 <= limit ? 0 : 1;
}

/*
 * 5: prlimit on another process limits that one only (ours keeps the
 * map, and its VmSize its 4 GiB): 0 ok; 6 ours changed; 7 the child's not.
 */
static int case_other(void)
{
	struct rlimit rl, mine, its;
	long before = proc_status_kib("VmSize"), after;
	int pfd[2], st, r;
	pid_t pid;
	char c;

	if (pipe(pfd) || getrlimit(RLIMIT_AS, &mine))
		return 9;
	pid = fork();
	if (pid < 0)
		return 9;
	if (pid == 0) {
		close(pfd[1]);
		(void)!read(pfd[0], &c, 1);	/* until the parent is done */
		_exit(0);
	}
	rl = mine;
	rl.rlim_cur = limit;
	r = prlimit(pid, RLIMIT_AS, &rl, NULL);
	if (!r)
		r = prlimit(pid, RLIMIT_AS, NULL, &its);
	after = proc_status_kib("VmSize");
	close(pfd[1]);
	waitpid(pid, &st, 0);
	if (r)
		return 9;
	if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur != mine.rlim_cur ||
	    (CT_HAKMEM && after < before - 1024))
		return 6;
	return its.rlim_cur == limit ? 0 : 7;
}

/* Allocate, fill, check and free 20,000 blocks of 16 B to 2 KiB: 0 ok. */
static int churn_once(void)
{
	static void *b[20000];
	int bad = 0;

	for (int i = 0; i < 20000; i++) {
		b[i] = v_malloc(16 + (size_t)(i % 2000));
		if (!b[i])
			return 1;
		ct_fill(b[i], 16 + (size_t)(i % 2000));
	}
	for (int i = 0; i < 20000; i++) {
		bad |= ct_check(b[i], 16 + (size_t)(i % 2000)) != 16 + (size_t)(i % 2000);
		free(b[i]);
	}
	return bad;
}

/*
 * 6: after the give-up: a failed setrlimit keeps errno, a prlimit that
 * only reads changes nothing, a fork's child allocates, and with the
 * limit raised again the process allocates (the map is not taken again):
 * 0 ok; 10 errno; 11 VmSize back over the limit; 12 the child; 13 churn.
 */
static int case_after(void)
{
	struct rlimit rl, bad;
	pid_t pid;
	int st;

	if (set_limit(false) || getrlimit(RLIMIT_AS, &rl))
		return 9;
	bad = rl;
	bad.rlim_cur = bad.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : bad.rlim_max + 1;
	bad.rlim_max = 1;
	errno = 0;
	if (setrlimit(RLIMIT_AS, &bad) != -1 || errno != EINVAL)
		return 10;
	if (prlimit(0, RLIMIT_AS, NULL, &bad) || bad.rlim_cur != rl.rlim_cur)
		return 10;
	pid = fork();
	if (pid < 0)
		return 9;
	if (pid == 0)
		_exit(churn_once() | churn_once());
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 12;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_AS, &rl))
		return 9;
	if (churn_once())
		return 13;
	/* not glibc's: its arenas come and go with the threads of case 3 */
	return !CT_HAKMEM || proc_status_kib("VmSize") << 10 <= (long)limit ? 0 : 11;
}

/*
 * 7: the 64-bit names (their own symbols, which glibc's headers pick
 * under _FILE_OFFSET_BITS=64): 0 ok; 1 VmSize over the limit after
 * setrlimit64; 14 after prlimit64 (each in its own child, the map once).
 */
static int lfs_one(bool pr)
{
	struct rlimit64 rl;
	long vm;

	if (getrlimit64(RLIMIT_AS, &rl))
		return 9;
	rl.rlim_cur = limit;
	if (pr ? prlimit64(0, RLIMIT_AS, &rl, NULL) : setrlimit64(RLIMIT_AS, &rl))
		return 9;
	vm = proc_status_kib("VmSize");
	return vm >= 0 && (rlim_t)vm << 10 <= limit ? 0 : pr ? 14 : 1;
}

static int case_lfs(void)
{
	pid_t pid;
	int st;

	pid = fork();
	if (pid < 0)
		return 9;
	if (pid == 0)
		_exit(lfs_one(false));
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 9;
	if (WEXITSTATUS(st))
		return WEXITSTATUS(st);
	return lfs_one(true);
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
		{ case_tid, "prlimit on a thread's id, from that thread: VmSize under the limit" },
		{ case_other, "prlimit on another process: ours keeps its limit and map" },
		{ case_after, "after the give-up: errno of a refused call, a fork's child, "
			      "the limit raised again" },
		{ case_lfs, "setrlimit64, and prlimit64: VmSize under the limit at once" },
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
