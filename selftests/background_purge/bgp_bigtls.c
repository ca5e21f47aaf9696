// SPDX-License-Identifier: MIT
/*
 * bgp_bigtls: a program with 128 KiB of __thread data gets its purge
 * thread (HAKMEM_BACKGROUND_PURGE=1), silently.
 *
 * glibc carves the static TLS out of each new thread's stack and refuses
 * (EINVAL) a stack too small for it; the purge thread asked for 64 KiB,
 * so before (rv27) such a program had none, and nothing said so.
 *
 * The child runs this program again with the option set (read at the
 * first malloc) and reports what the statistics say.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "tap.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

static __thread char big_tls[128 << 10];

static int child_main(void)
{
	struct hak_bgpurge_stats st;
	unsigned i;

	big_tls[1] = 1;
	for (i = 0; i < 200; i++) {
		void *volatile p = malloc(1 << 20);

		free(p);
	}
	hak_bgpurge_stats(&st);
	return st.running && st.starts == 1 && big_tls[1] == 1 ? 0 : 3;
}

int main(int argc, char **argv)
{
	static char err[4096];
	int fds[2], status = -1;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	(void)argc;
	if (getenv("BGP_BIGTLS_CHILD"))
		return child_main();
	tap_plan(2);
	if (pipe(fds) < 0)
		tap_bail("pipe");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		setenv("BGP_BIGTLS_CHILD", "1", 1);
		setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < sizeof(err) && (n = read(fds[0], err + got, sizeof(err) - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		status = -1;
	tap_ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "128 KiB of __thread data: the purge thread runs, started once (status 0x%x)", status);
	tap_ok(!*err, "nothing on stderr");
	if (*err)
		tap_diag("%.*s", (int)strcspn(err, "\n"), err);
	tap_finish();
}
