// SPDX-License-Identifier: MIT
/*
 * A fork child of a process with more threads than CPUs has one thread:
 * its budget is the whole again (lib/heap.c, __hak_heap_fork_child resets
 * the live-thread count), not the share of the parent's thread count for
 * the rest of its life, as it was before (found by review, 2026-12-03).
 */
#include <sys/wait.h>
#include "boxes/adaptive_sizing/adaptive.h"
#include "adapt_test.h"

#define MAX_THREADS	1028

static pthread_barrier_t all_live, forked;

static void *waiter(void *arg)
{
	void *p = hak_malloc(64);	/* attach a heap: a live thread */

	(void)arg;
	pthread_barrier_wait(&all_live);
	pthread_barrier_wait(&forked);
	hak_free(p);
	return NULL;
}

int main(void)
{
	static pthread_t tid[MAX_THREADS];
	unsigned n, i;
	size_t parent;
	int cpus, st = 0;
	pid_t pid;

	tap_plan(2);
	n = at_past_cores(&cpus, MAX_THREADS);
	hak_free(hak_malloc(64));	/* the main thread is live too */
	if (pthread_barrier_init(&all_live, NULL, n + 1) || pthread_barrier_init(&forked, NULL, n + 1))
		tap_bail("pthread_barrier_init failed");
	for (i = 0; i < n; i++)
		if (pthread_create(&tid[i], NULL, waiter, NULL))
			tap_bail("pthread_create failed");
	pthread_barrier_wait(&all_live);
	parent = hak_adapt_budget();
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork failed");
	if (!pid)
		_exit(hak_adapt_budget() == AT_BUDGET ? 0 : 1);
	if (waitpid(pid, &st, 0) != pid)
		tap_bail("waitpid failed");
	pthread_barrier_wait(&forked);
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	tap_ok(parent < AT_BUDGET, "parent with %u threads on %d CPUs: budget %zu of %zu",
	       n + 1, cpus, parent, AT_BUDGET);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "its fork child (one thread) has the whole budget again (status %d)", st);
	tap_finish();
}
