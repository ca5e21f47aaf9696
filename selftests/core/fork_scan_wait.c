// SPDX-License-Identifier: MIT
/*
 * fork_scan_wait: a handler fork whose frame holds the heap lock, while a
 * scan of other heaps waits for that lock.
 *
 * A fork's prepare waits for a scan of other heaps to end (lib/heap.c,
 * __hak_heap_fork_prepare). The decay pass's scan says it runs, then takes
 * the heap lock for the list's head: when the interrupted frame of a
 * handler fork holds that lock, the scan waits for the frame, the frame
 * for its handler, the handler for the fork, and the fork waited for the
 * scan for good. An urgent fork's waits are bounded now (lib/init.c,
 * FORK_WAIT_MAX_NS): it leaves the scan to its thread.
 *
 * Linked with --wrap=pthread_mutex_trylock, which stands in for the
 * signal: on the main thread, armed, the try-lock that takes the heap lock
 * inside mallinfo2 (found as the first lock a scan takes, by a first,
 * unarmed one) lets another thread start a scan (__hak_heap_purge_idle,
 * the decay pass's), waits until it sleeps on that lock, then forks (the
 * child _exit()s at once). The scenario runs in a child process; a hang
 * is ended by SIGALRM. hakmem only.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include "core_test.h"
#if CT_HAKMEM
#include "heap.h"
#include "os.h"

/* the decay pass's scan of other heaps, now */
static void scan(void)
{
	(void)__hak_heap_purge_idle(__hak_now_ms(), 1);
}
#else
static void scan(void)
{
}
#endif

#define HANG_S		20

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t main_tid, scan_tid;
static volatile int arm;	/* 1: record the first lock a scan takes; 2: fork at heap_mu */
static pthread_mutex_t *volatile heap_mu;
static int go_scan[2];
static volatile int forked = -1;	/* the handler fork's child exited 0 */

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);
	unsigned calm = 0;

	if (!arm || r || gettid() != main_tid)
		return r;
	if (arm == 1) {
		heap_mu = m;
		arm = 0;
	} else if (m == heap_mu) {
		/* as a handler that interrupted the frame just past the lock */
		arm = 0;
		if (write(go_scan[1], "x", 1) != 1)
			_exit(5);
		while (calm < 5) {
			calm = ct_in_futex(scan_tid) ? calm + 1 : 0;
			usleep(20000);
		}
		forked = ct_fork_exit0();
	}
	return r;
}

static void *scanner(void *arg)
{
	char c;

	(void)arg;
	free(malloc(16));	/* the thread's heap, before it scans */
	scan_tid = gettid();
	while (read(go_scan[0], &c, 1) < 0 && errno == EINTR)
		;
	scan();
	return NULL;
}

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int heap_found;
	int forked;
	int joined;
} *res;

static void scenario(void)
{
	pthread_t t;

	alarm(HANG_S);
	main_tid = gettid();
	free(malloc(16));
	arm = 1;
	scan();
	arm = 0;
	res->heap_found = heap_mu != NULL;
	if (!heap_mu || pipe(go_scan) || pthread_create(&t, NULL, scanner, NULL))
		_exit(5);
	while (!__atomic_load_n(&scan_tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	arm = 2;
	(void)mallinfo2();
	arm = 0;
	res->forked = forked;
	if (pthread_join(t, NULL))
		_exit(5);
	res->joined = 1;
	_exit(0);
}

int main(void)
{
	int st;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(2);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	if (!res->heap_found)
		tap_bail("a scan took no lock by try-lock (status 0x%x)", (unsigned)st);
	tap_ok(res->forked == 1,
	       "a handler fork completes while a scan of other heaps waits for its frame's lock "
	       "(status 0x%x%s)", (unsigned)st, ct_hung(st));
	tap_ok(res->joined && WIFEXITED(st) && !WEXITSTATUS(st), "the scan went on after it");
	tap_finish();
}
