// SPDX-License-Identifier: MIT
/*
 * bgp_nothread: HAKMEM_BACKGROUND_PURGE=1 in a process that cannot make
 * the purge thread (pthread_create refused: RLIMIT_NPROC, a sandbox that
 * refuses clone, no memory for a stack) says so with one line on stderr,
 * once, and the program goes on: its allocations work, the statistics say
 * no thread runs. Before (rv27) nothing was said: the operator asked for
 * a purge thread and silently had none.
 *
 * pthread_create is wrapped (-Wl,--wrap=pthread_create) to fail with
 * EAGAIN in the child, which runs this program again with the option set
 * (read at the first malloc).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	if (getenv("BGP_NOTHREAD_CHILD"))
		return EAGAIN;
	return __real_pthread_create(t, a, fn, arg);
}

static int child_main(void)
{
	struct hak_bgpurge_stats st;
	unsigned i;

	for (i = 0; i < 2000; i++) {
		void *volatile p = malloc(1 + (i * 4099) % (3 << 20));

		if (!p)
			return 2;
		free(p);
	}
	usleep(30000);	/* a purge tick is due again */
	for (i = 0; i < 200; i++) {
		void *volatile p = malloc(1 << 20);

		free(p);
	}
	hak_bgpurge_stats(&st);
	return st.running || st.starts ? 3 : 0;
}

int main(int argc, char **argv)
{
	char *env[] = { "BGP_NOTHREAD_CHILD", "1", "HAKMEM_BACKGROUND_PURGE", "1",
			"HAKMEM_PURGE_DELAY_MS", "10", NULL };
	struct child_result r;
	int lines;

	(void)argc;
	if (getenv("BGP_NOTHREAD_CHILD"))
		return child_main();
	tap_plan(2);
	child_exec(NULL, argv, env, NULL, &r);
	lines = child_err_lines(&r);
	tap_ok(child_exited_ok(&r),
	       "allocations work without the thread, and no thread is counted (status 0x%x)", r.status);
	tap_ok(lines == 1 && strstr(r.err, "HAKMEM_BACKGROUND_PURGE") && strstr(r.err, "no purge thread"),
	       "one line says there is no purge thread (%d lines)", lines);
	if (*r.err)
		tap_diag("%.*s", (int)strcspn(r.err, "\n"), r.err);
	tap_finish();
}
