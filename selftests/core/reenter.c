// SPDX-License-Identifier: MIT
/*
 * reenter: the allocator called again by a thread that holds one of its
 * locks, as a signal handler that calls malloc would (malloc is not
 * async-signal-safe). hakmem cannot go on (the lock's data is half
 * changed) and must not hang: it reports it, one line, and aborts
 * (lib/init.c, __hak_lock_wait). Never run by a test before.
 *
 * Linked with --wrap=pthread_mutex_trylock: the first lock mallinfo2
 * takes, the wrapper (as a handler that interrupted the frame just past
 * the lock) calls mallinfo2 again, in a child. Proves that the child
 * aborts with exactly one line "hakmem: the allocator was called again
 * while this thread holds one of its locks ...", within 10 s (no hang),
 * and that a child whose wrapper calls nothing exits 0.
 */
#include <pthread.h>

#include "core_test.h"
#include "../lib/child.h"

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static volatile int arm;	/* 1: call again at the next lock taken */

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

	if (arm && !r) {
		arm = 0;
		(void)mallinfo2();
	}
	return r;
}

static void scenario(void *again)
{
	void *volatile p = malloc(100);	/* the allocator set up first */

	free(p);
	alarm(10);
	arm = again != NULL;
	(void)mallinfo2();
	arm = 0;
}

int main(void)
{
	struct child_result r;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's report");
	tap_plan(2);
	child_run(scenario, (void *)1, &r);
	tap_ok(child_aborted(&r) && strstr(r.err, "hakmem: the allocator was called again "
					      "while this thread holds one of its locks") &&
	       child_err_lines(&r) == 1,
	       "mallinfo2 called again under its own first lock: one report, abort");
	if (!child_aborted(&r) || child_err_lines(&r) != 1)
		tap_diag("status %#x, stderr: %s", r.status, r.err);
	child_run(scenario, NULL, &r);
	tap_ok(child_exited_ok(&r) && !r.err[0], "the same without the second call: exit 0, "
	       "nothing on stderr");
	tap_finish();
}
