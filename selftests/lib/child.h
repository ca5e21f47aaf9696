/* SPDX-License-Identifier: MIT */
/*
 * Run a scenario in a child process and capture how it ended: its exit
 * status and everything it wrote to stderr. For tests of code that must
 * abort() (fail-fast checks) or that may crash (a proof by page fault).
 */
#ifndef HAK_SELFTEST_CHILD_H
#define HAK_SELFTEST_CHILD_H

#include <dirent.h>
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

/* The parent's side: read the child's stderr into r->err, then wait for it. */
static inline void child_collect(int fd, pid_t pid, struct child_result *r)
{
	size_t got = 0;
	ssize_t n;

	while ((n = read(fd, r->err + got, sizeof(r->err) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (pid < 0 || waitpid(pid, &r->status, 0) < 0)
		r->status = -1;
}

/*
 * Fork with the child's stderr going into a pipe: 0 in the child, the
 * child's pid in the parent (*fd the pipe's read end), -2 if no pipe
 * (r->status -1).
 */
static inline pid_t child_fork(int *fd, struct child_result *r)
{
	int fds[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) < 0) {
		r->status = -1;
		return -2;
	}
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		return 0;
	}
	close(fds[1]);
	*fd = fds[0];
	return pid;
}

/* Run fn(arg) in a child; its stderr is captured into r->err. */
static inline void child_run(void (*fn)(void *), void *arg, struct child_result *r)
{
	int fd;
	pid_t pid = child_fork(&fd, r);

	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	if (pid != -2)
		child_collect(fd, pid, r);
}

/*
 * Run path (NULL: this program again) with argv, in a child whose stderr is
 * captured into r, with env's NAME, VALUE pairs (NULL-terminated) set and
 * pre() (may be NULL) called just before the exec: for options read at the
 * first malloc, which this process has made already.
 */
static inline void child_exec(const char *path, char *const argv[], char *const env[],
			      void (*pre)(void), struct child_result *r)
{
	int fd;
	pid_t pid = child_fork(&fd, r);

	if (pid == 0) {
		unsigned i;

		for (i = 0; env && env[i]; i += 2)
			setenv(env[i], env[i + 1], 1);
		if (pre)
			pre();
		execv(path ? path : "/proc/self/exe", argv);
		_exit(127);
	}
	if (pid != -2)
		child_collect(fd, pid, r);
}

/* Files in dir whose name starts with prefix ("" for all); -1 if unreadable. */
static inline int dir_count(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' && !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

/* Remove every file in dir (a test's own directory), then dir itself. */
static inline void dir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (d) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				unlink(path);
			}
		closedir(d);
	}
	rmdir(dir);
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

/*
 * Did the child abort with exactly one line, a "hakmem: " report naming
 * the address a? addr gets a as printed (%p), for the test's message.
 */
static inline int child_reported(const struct child_result *r, const void *a, char addr[32])
{
	const char *line = strstr(r->err, "hakmem: ");

	snprintf(addr, 32, "%p", a);
	return child_aborted(r) && line && strstr(line, addr) && child_err_lines(r) == 1;
}

#endif /* HAK_SELFTEST_CHILD_H */
