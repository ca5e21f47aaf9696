// SPDX-License-Identifier: MIT
/*
 * fork_exit_paths: forks from the places a process or thread winds down,
 * while other threads allocate: an atexit handler (inside exit(), which
 * runs it with glibc's exit-function lock dropped), a thread-specific
 * data destructor (after hakmem's own may have detached the thread's
 * heap: destructors run in no fixed order), and daemon() (a fork, then
 * setsid, in a child of a multi-threaded process). Each fork's child
 * allocates across the small, mid and large paths and exits 0.
 *
 * Read and tried for fk21's residuals; nothing hung or failed on main
 * (def, perf, hard): kept as a guard. Each case runs in a child of its
 * own under an alarm. Passes with glibc's malloc too.
 */
#include <pthread.h>
#include "core_test.h"

#define HANG_S		20
#define KEYED		8

static void *volatile keep;
static volatile int stop;

/* the small, mid and large paths, then exit 0 */
static void child_allocates(void)
{
	for (int i = 0; i < 512; i++) {
		keep = malloc((size_t)i * 128 + 1);
		if (!keep)
			_exit(2);
		free(keep);
	}
	keep = malloc(3u << 20);
	if (!keep)
		_exit(2);
	free(keep);
	_exit(0);
}

static void *allocator(void *arg)
{
	(void)arg;
	while (!stop) {
		void *p = malloc(3u << 20), *q = malloc(200);

		keep = p;
		free(p);
		free(q);
	}
	return NULL;
}

static void start_allocators(void)
{
	pthread_t t;

	for (int i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, allocator, NULL))
			_exit(5);
}

/* What each scenario saw, in a page shared with the test. */
static struct result {
	int atexit_ok, keyed_ok, daemon_ok;
} *res;

static void at_exit_fork(void)
{
	res->atexit_ok = ct_fork_run(child_allocates, NULL);
}

static void scenario_atexit(void)
{
	alarm(HANG_S);
	start_allocators();
	if (atexit(at_exit_fork))
		_exit(5);
	usleep(20000);
	exit(0);
}

static pthread_key_t key;

static void key_fork(void *v)
{
	(void)v;
	if (ct_fork_run(child_allocates, NULL))
		__atomic_add_fetch(&res->keyed_ok, 1, __ATOMIC_RELAXED);
}

static void *keyed(void *arg)
{
	(void)arg;
	keep = malloc(50);
	free(keep);
	pthread_setspecific(key, (void *)1);
	return NULL;
}

static void scenario_key(void)
{
	alarm(HANG_S);
	if (pthread_key_create(&key, key_fork))
		_exit(5);
	start_allocators();
	for (int i = 0; i < KEYED; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, keyed, NULL) || pthread_join(t, NULL))
			_exit(5);
	}
	stop = 1;
	_exit(0);
}

static void scenario_daemon(void)
{
	pid_t pid;
	int st;

	alarm(HANG_S);
	/* daemon() forks and its parent _exit()s: a middle process, with threads */
	pid = fork();
	if (pid == 0) {
		res->daemon_ok = -1;
		start_allocators();
		usleep(10000);
		if (daemon(1, 1))
			_exit(3);
		alarm(HANG_S);		/* not inherited across fork */
		/* the daemon: tell the test, then allocate */
		res->daemon_ok = ct_fork_run(child_allocates, NULL) ? 1 : 0;
		child_allocates();
	}
	if (pid < 0)
		_exit(5);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* the daemon is not our child: wait for its word */
	for (int i = 0; i < HANG_S * 100 && res->daemon_ok <= 0; i++)
		usleep(10000);
	_exit(0);
}

int main(void)
{
	int st;

	tap_plan(3);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario_atexit);
	tap_ok(res->atexit_ok && WIFEXITED(st) && !WEXITSTATUS(st),
	       "a fork in an atexit handler, two threads allocating: its child allocated "
	       "(status 0x%x%s)", (unsigned)st, ct_hung(st));
	st = ct_scenario_child(scenario_key);
	tap_ok(res->keyed_ok == KEYED && WIFEXITED(st) && !WEXITSTATUS(st),
	       "forks in %d threads' key destructors: %d children allocated (status 0x%x%s)",
	       KEYED, res->keyed_ok, (unsigned)st, ct_hung(st));
	st = ct_scenario_child(scenario_daemon);
	tap_ok(res->daemon_ok == 1 && WIFEXITED(st) && !WEXITSTATUS(st),
	       "daemon() in a multi-threaded process: the daemon forked and allocated "
	       "(status 0x%x%s)", (unsigned)st, ct_hung(st));
	tap_finish();
}
