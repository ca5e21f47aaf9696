// SPDX-License-Identifier: MIT
/*
 * fork_signal_mt: fork() from a signal handler that interrupted the
 * allocator, in a process with a second thread.
 *
 * fork_signal covers the single-threaded process, where the fork handlers
 * take no lock. With a second thread they do, and the interrupted frame
 * may hold one of them: prepare waited for its own thread, for good (the
 * process hung in __hak_grow_fork_prepare, the main thread's frames below
 * the handler inside slot_pick with the area's lock held). glibc's malloc
 * hangs the same way (its fork takes its arena locks), and POSIX no longer
 * lists fork() as async-signal-safe; hakmem takes every lock but the ones
 * its own thread holds, which the interrupted frame releases in parent and
 * child alike (lib/lock.h, hak_lock_fork_take).
 *
 * The main thread spends most of its time inside the allocator's locks
 * (mallinfo2 walks the heaps, the large registry and the grow areas under
 * their locks; malloc_trim purges under them; large blocks and realloc
 * growth take the registry, the cache and the grow areas) while another thread signals it every 50 us;
 * the handler forks, the child _exit()s, the handler waits for it.
 *
 * Proves that N handler forks (argv[1], default 1000, 300 with
 * HAKMEM_SELFTEST_QUICK=1) all complete with every child exiting 0 and
 * that the process allocates afterwards. A hang (no fork completed for
 * 20 s) is reported and fails. hakmem only: glibc's malloc hangs here.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "core_test.h"

static volatile long handled, bad_child, fork_failed;
static volatile int done;
static pthread_t main_thread;

static void on_usr1(int sig)
{
	int saved = errno;

	(void)sig;
	ct_fork_reap(&bad_child, &fork_failed);
	__atomic_add_fetch(&handled, 1, __ATOMIC_RELEASE);
	errno = saved;
}

/* Signals the main thread every 50 us; a hang is no fork for 20 s. */
static void *sender(void *arg)
{
	long seen = -1;
	time_t since = time(NULL);

	(void)arg;
	while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, 50000 };
		long now = __atomic_load_n(&handled, __ATOMIC_ACQUIRE);

		if (now != seen) {
			seen = now;
			since = time(NULL);
		} else if (time(NULL) - since >= 20) {
			static const char msg[] = "not ok 1 # hang: no handler fork for 20 s\n";

			if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
				_exit(2);
			_exit(1);
		}
		pthread_kill(main_thread, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : ct_quick() ? 300 : 1000;
	void *keep[16] = { 0 };
	unsigned long rounds = 0;
	sigset_t usr1;
	pthread_t t;
	unsigned x = 1;

	tap_plan(3);
	if (!CT_HAKMEM)
		tap_skip_all("glibc's malloc hangs here (its fork takes its arena locks)");
	ct_handle(SIGUSR1, on_usr1);
	main_thread = pthread_self();
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);	/* the sender never takes it */
	if (pthread_create(&t, NULL, sender, NULL))
		tap_bail("pthread_create failed");
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	while (__atomic_load_n(&handled, __ATOMIC_ACQUIRE) < iters) {
		ct_fork_churn_step(keep, &x);
		rounds++;
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	tap_ok(1, "%ld handler forks returned, %lu rounds (no hang)", handled, rounds);
	tap_ok(!bad_child && !fork_failed, "every child exited 0 (%ld bad, %ld failed forks)",
	       bad_child, fork_failed);
	for (unsigned k = 0; k < 16; k++)
		free(keep[k]);
	{
		void *p = malloc(3u << 20), *q = malloc(64);

		tap_ok(p && q, "the process allocates after the forks");
		free(p);
		free(q);
	}
	tap_finish();
}
