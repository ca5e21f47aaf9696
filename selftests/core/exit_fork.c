// SPDX-License-Identifier: MIT
/*
 * exit_fork: exit() while other threads fork.
 *
 * exit() runs the destructors of every object, and glibc's __cxa_finalize
 * for an object unregisters the fork handlers that object registered with
 * pthread_atfork() (which passes the caller's __dso_handle). glibc's fork
 * drops its handler-list lock while it runs each handler, so exit() could
 * take hakmem's handlers off the list between another thread's prepare
 * (every allocator lock and the stream-list lock taken) and its parent
 * handler: the parent and child handlers never ran, the locks stayed held,
 * exit() waited for the stream-list lock in _IO_cleanup and the child for
 * the allocator's, for good (14 runs in 20 hung; glibc's malloc 0 in 20).
 * Found by an exit-while-forking stress (branch fk16). The handlers are now
 * registered with no object (__register_atfork(..., NULL)), which nothing
 * unregisters.
 *
 * Each run is a process of its own (this program again, "run" argument):
 * four threads fork back to back (children reaped by SIGCHLD = SIG_IGN;
 * each child allocates and _exit()s), and the main thread calls exit()
 * after 20 ms. A run that has not ended within 10 s hangs: its process
 * group is killed and the test fails. argv[1]: runs (default 30, 10 with
 * HAKMEM_SELFTEST_QUICK=1).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "core_test.h"

static void *forker(void *arg)
{
	(void)arg;
	for (;;) {
		void *volatile p;
		pid_t pid = fork();

		if (pid == 0) {
			p = malloc(100);
			free(p);
			_exit(0);
		}
		p = malloc(3000);
		free(p);
	}
	return NULL;
}

static void one_run(void)
{
	struct timespec ts = { 0, 20000000 };
	pthread_t t;

	signal(SIGCHLD, SIG_IGN);
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t, NULL, forker, NULL))
			_exit(3);
	nanosleep(&ts, NULL);
	exit(0);
}

int main(int argc, char **argv)
{
	int runs = ct_quick() ? 10 : 30, hung = 0, failed = 0;

	if (argc > 1 && !strcmp(argv[1], "run"))
		one_run();
	if (argc > 1)
		runs = atoi(argv[1]);
	tap_plan(1);
	for (int r = 0; r < runs; r++) {
		pid_t pid = fork();
		int st = 0, k;

		if (pid < 0)
			tap_bail("fork: %s", strerror(errno));
		if (pid == 0) {
			setpgid(0, 0);	/* its children too, for the kill below */
			execl("/proc/self/exe", argv[0], "run", (char *)NULL);
			_exit(127);
		}
		setpgid(pid, pid);
		for (k = 0; k < 1000; k++) {
			struct timespec ts = { 0, 10000000 };

			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			nanosleep(&ts, NULL);
		}
		if (k == 1000) {
			hung++;
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failed++;
			tap_diag("run %d: status 0x%x", r, (unsigned)st);
		}
		kill(-pid, SIGKILL);	/* a child left behind */
	}
	tap_ok(!hung && !failed, "%d runs of exit() while 4 threads fork: %d hung, %d failed",
	       runs, hung, failed);
	tap_finish();
}
