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
 */
#include <pthread.h>
#include <sys/mman.h>

#include "core_test.h"
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

	tap_plan(4);
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
	munmap(area, len);
	tap_finish();
}
