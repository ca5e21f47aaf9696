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
#include <sys/wait.h>
#include "tap.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);

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
	static char err[4096];
	int fds[2], status = -1, lines = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;
	char *s;

	(void)argc;
	if (getenv("BGP_NOTHREAD_CHILD"))
		return child_main();
	tap_plan(2);
	if (pipe(fds) < 0)
		tap_bail("pipe");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		setenv("BGP_NOTHREAD_CHILD", "1", 1);
		setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
		setenv("HAKMEM_PURGE_DELAY_MS", "10", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < sizeof(err) && (n = read(fds[0], err + got, sizeof(err) - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		status = -1;
	for (s = err; *s; s++)
		lines += *s == '\n';
	tap_ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "allocations work without the thread, and no thread is counted (status 0x%x)", status);
	tap_ok(lines == 1 && strstr(err, "HAKMEM_BACKGROUND_PURGE") && strstr(err, "no purge thread"),
	       "one line says there is no purge thread (%d lines)", lines);
	if (*err)
		tap_diag("%.*s", (int)strcspn(err, "\n"), err);
	tap_finish();
}
