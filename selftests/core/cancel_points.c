// SPDX-License-Identifier: MIT
/*
 * cancel_points: malloc and free are not cancellation points, so a thread
 * with a cancel pending must come out of them normally, as it does from
 * glibc's. Inside them hakmem made system calls through libc wrappers that
 * are cancellation points:
 *  - close() of the pidfd after a batched purge (lib/os.c purge_batched),
 *    run by a heap's page scan with the heap's scan lock held: the thread
 *    was unwound with the lock held;
 *  - open/read/close of /proc/meminfo (lib/limit.c __hak_mem_available),
 *    BigCache's memory sample at one large free in 256, and of the cgroup
 *    files at the first malloc.
 * Found while running glibc's tst-malloc-stats-cancellation (Documentation/
 * reliability.md, "Fourth run"). Each check runs in a thread that cancels
 * itself (deferred: only pending) and then calls the internal function;
 * the thread must return, not be cancelled. The batched purge needs a
 * kernel whose process_madvise takes MADV_DONTNEED (6.13); elsewhere that
 * check passes without reaching the close.
 *
 * Found by rv25 (Documentation/reliability.md, "Many-thread paths
 * reviewed"), checked end to end through malloc and free:
 *  - nanosleep() in the wait of a lock take held back for a plain fork's
 *    turn (init.c __hak_fork_gate): a thread's first malloc, with a cancel
 *    pending and the turn raised, was unwound out of malloc;
 *  - write() of the one-line report of a double free (init.c
 *    __hak_report): a thread with a cancel pending was unwound there,
 *    before abort(), and the process went on with the bad free unreported
 *    to its exit status.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "core_test.h"
#include "lock.h"
#include "os.h"
#include "purge.h"

#define RANGES	8

static char *area;

static void *purge_flush(void *arg)
{
	struct hak_purge_batch b;

	(void)arg;
	pthread_cancel(pthread_self());
	b.n = 0;
	b.done = 0;
	for (int i = 0; i < RANGES; i++)
		__hak_os_purge_add(&b, area + (size_t)i * 2 * HAK_OS_PAGE, HAK_OS_PAGE);
	return (void *)__hak_os_purge_flush(&b);
}

static void *mem_available(void *arg)
{
	size_t avail = 0, total = 0;

	(void)arg;
	pthread_cancel(pthread_self());
	return (void *)(uintptr_t)__hak_mem_available(&avail, &total);
}

static void *cgroup_limit(void *arg)
{
	(void)arg;
	pthread_cancel(pthread_self());
	(void)__hak_cgroup_limit();
	return NULL;
}

static volatile int gate_go;

/* Waits (no cancellation point) until the turn is raised, then mallocs. */
static void *malloc_gated(void *arg)
{
	void *p;

	(void)arg;
	pthread_cancel(pthread_self());
	while (!gate_go)
		sched_yield();
	p = malloc(100);	/* the thread's first: its attach takes a lock */
	free(p);
	return p;
}

static void *double_free(void *arg)
{
	void *p = malloc(32);

	(void)arg;
	free(p);
	pthread_cancel(pthread_self());
	free(ct_launder(p));
	return NULL;
}

/* In a child: the double free above, in a thread; 0 if that thread came back. */
static void double_free_child(void)
{
	pthread_t t;
	int fd = open("/dev/null", O_WRONLY);

	if (fd >= 0)
		dup2(fd, STDERR_FILENO);
	alarm(30);
	if (pthread_create(&t, NULL, double_free, NULL) || pthread_join(t, NULL))
		_exit(2);
	_exit(0);
}

static void *run(void *(*fn)(void *))
{
	pthread_t t;
	void *rv;

	if (pthread_create(&t, NULL, fn, NULL) || pthread_join(t, &rv))
		tap_bail("pthread_create/join failed");
	return rv;
}

int main(void)
{
	size_t len = 2 * RANGES * HAK_OS_PAGE;
	void *rv;

	tap_plan(6);
	area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		tap_bail("mmap failed");
	memset(area, 1, len);

	rv = run(purge_flush);
	tap_ok(rv != PTHREAD_CANCELED && (size_t)rv == RANGES * HAK_OS_PAGE,
	       "a batched purge with a cancel pending returns (%s)",
	       rv == PTHREAD_CANCELED ? "cancelled" : "returned");
	tap_ok(area[0] == 0 && area[2 * HAK_OS_PAGE] == 0 && area[HAK_OS_PAGE] == 1,
	       "and purged exactly its ranges");
	rv = run(mem_available);
	tap_ok(rv != PTHREAD_CANCELED, "reading /proc/meminfo with a cancel pending returns");
	rv = run(cgroup_limit);
	tap_ok(rv != PTHREAD_CANCELED, "reading the cgroup limit with a cancel pending returns");

	{
		pthread_t t;
		int st;

		if (pthread_create(&t, NULL, malloc_gated, NULL))
			tap_bail("pthread_create failed");
		__atomic_store_n(&__hak_fork_turn, (uint64_t)(uint32_t)getpid() << 32 | 1,
				 __ATOMIC_RELEASE);
		gate_go = 1;
		nanosleep(&(struct timespec){ 0, 30 * 1000 * 1000 }, NULL);
		__atomic_store_n(&__hak_fork_turn, (uint64_t)0, __ATOMIC_RELEASE);
		if (pthread_join(t, &rv))
			tap_bail("pthread_join failed");
		tap_ok(rv != PTHREAD_CANCELED && rv,
		       "malloc with a cancel pending, held back for a fork's turn, returns (%s)",
		       rv == PTHREAD_CANCELED ? "cancelled" : "returned");

		st = ct_scenario_child(double_free_child);
		tap_ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		       "a double free by a thread with a cancel pending aborts (%s %d%s)",
		       WIFSIGNALED(st) ? "signal" : "exit",
		       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), ct_hung(st));
	}
	munmap(area, len);
	tap_finish();
}
