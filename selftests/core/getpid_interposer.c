// SPDX-License-Identifier: MIT
/*
 * A getpid interposer in the process (libfaketime's FAKETIME_FAKEPID,
 * preloaded next to hakmem, answers one id in the parent and in every
 * child): the library asks the kernel (lib/os.c, __hak_os_getpid), since
 * its fork bookkeeping (lib/init.c: the urgent-fork counts and the fork
 * turn, kept per process id) and the interposed prlimit's "is this pid
 * ours" test tell processes apart by it.
 *
 * This program defines getpid (it links libhakmem.a, so the library's
 * calls would bind to it, as a preloaded one's would) answering 4242 and
 * counting the calls, then lowers its own RLIMIT_AS by the kernel's id
 * through prlimit (the interposed one asks whether the id is the
 * process's) and forks from a thread while others allocate.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "core_test.h"

static unsigned long calls;	/* atomic: calls of this getpid */
static volatile int stop;

pid_t getpid(void)
{
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	return 4242;
}

static void *churn(void *arg)
{
	(void)arg;
	while (!stop)
		free(malloc(64 + (size_t)(rand() % 5000)));
	return NULL;
}

int main(void)
{
	pid_t self = (pid_t)syscall(SYS_getpid), pid;
	struct rlimit rl;
	pthread_t t[2];
	int st, ok = 1;

	tap_plan(2);
	free(malloc(100));
	if (prlimit(self, RLIMIT_AS, NULL, &rl))
		tap_bail("prlimit");
	rl.rlim_cur = rl.rlim_max;	/* the same limit, set by id */
	if (prlimit(self, RLIMIT_AS, &rl, NULL))
		tap_bail("prlimit set");
	for (unsigned i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	for (unsigned i = 0; i < 8; i++) {
		pid = fork();
		if (pid == 0) {
			free(malloc(300));
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			ok = 0;
	}
	stop = 1;
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	tap_ok(ok, "8 forks beside allocating threads, each child allocates and exits 0");
	tap_ok(!__atomic_load_n(&calls, __ATOMIC_RELAXED),
	       "the library never called the program's getpid (%lu calls)",
	       __atomic_load_n(&calls, __ATOMIC_RELAXED));
	tap_finish();
}
