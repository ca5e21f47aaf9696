/* SPDX-License-Identifier: MIT */
/*
 * Run a scenario in a child process and capture how it ended: its exit
 * status and everything it wrote to stderr. For tests of code that must
 * abort() (fail-fast checks) or that may crash (a proof by page fault).
 */
#ifndef HAK_SELFTEST_CHILD_H
#define HAK_SELFTEST_CHILD_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

struct child_result {
	int status;		/* from waitpid */
	char err[4096];		/* the child's stderr, NUL-terminated */
};

/* Run fn(arg) in a child; its stderr is captured into r->err. */
static inline void child_run(void (*fn)(void *), void *arg, struct child_result *r)
{
	int fds[2];
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) < 0) {
		r->status = -1;
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], r->err + got, sizeof(r->err) - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	if (pid < 0 || waitpid(pid, &r->status, 0) < 0)
		r->status = -1;
}

static inline int child_aborted(const struct child_result *r)
{
	return r->status != -1 && WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGABRT;
}

static inline int child_exited_ok(const struct child_result *r)
{
	return r->status != -1 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* Number of lines in s. */
static inline int child_err_lines(const struct child_result *r)
{
	int lines = 0;
	const char *s;

	for (s = r->err; *s; s++)
		lines += *s == '\n';
	return lines;
}

#endif /* HAK_SELFTEST_CHILD_H */
