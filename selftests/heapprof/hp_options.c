// SPDX-License-Identifier: MIT
/*
 * hp_options: the heap profiler's options give a clear answer to values
 * it cannot use, with one line on stderr, never a hang or a silent
 * fallback.
 *
 *  1. HAKMEM_PROF_SIGNAL=11 (SIGSEGV), then a NULL store: the program
 *     dies of SIGSEGV, as without the option. Before (rv27) the handler
 *     (it only sets a flag) returned to the faulting store, which faulted
 *     again, for good: the program spun at 100% CPU instead of dying.
 *  2. The same with 8 (SIGFPE) and an integer division by zero.
 *  3. HAKMEM_PROF_OUT of 5,000 bytes: one line says it is ignored, and the
 *     exit profile has the default name. Before, the default was taken
 *     without a word (the profile was not where the operator looked).
 *
 * Each case runs this program again (with HAKMEM_PROF=1, read at the
 * first malloc) in a directory of its own, which it removes after; a
 * child that is still running after 20 s is killed and the case fails.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tap.h"

static volatile int zero;

static int child_main(const char *mode)
{
	void *volatile p = malloc(100);
	volatile int *np = NULL;

	__asm__ __volatile__("" : "+r"(np));	/* not known to be NULL */

	free(p);
	if (!strcmp(mode, "segv"))
		*np = 1;
	else if (!strcmp(mode, "fpe"))
		zero = 100 / zero;
	return 0;
}

/* Run mode in a child with env[] added; its status and stderr. */
static int run(const char *mode, char *const env[], char *err, size_t len)
{
	int fds[2], status = -1;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	fflush(stdout);
	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char *argv[] = { "hp_options", (char *)mode, NULL };
		unsigned i;

		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		setenv("HAKMEM_PROF", "1", 1);
		for (i = 0; env[i]; i += 2)
			setenv(env[i], env[i + 1], 1);
		alarm(20);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < len && (n = read(fds[0], err + got, len - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = 0;
	close(fds[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return status;
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Files in the current directory whose name starts with prefix. */
static int count_files(const char *prefix)
{
	DIR *d = opendir(".");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

static void clean_dir(void)
{
	DIR *d = opendir(".");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlink(e->d_name);
	closedir(d);
}

int main(int argc, char **argv)
{
	static char err[8192], longout[5001];
	char dir[] = "/tmp/hp_options.XXXXXX";
	char *segv[] = { "HAKMEM_PROF_SIGNAL", "11", NULL };
	char *fpe[] = { "HAKMEM_PROF_SIGNAL", "8", NULL };
	char *out[] = { "HAKMEM_PROF_OUT", longout, NULL };
	int st;

	if (argc > 1)
		return child_main(argv[1]);
	tap_plan(3);
	if (!mkdtemp(dir) || chdir(dir) < 0)
		tap_bail("no directory of its own");
	memset(longout, 'x', sizeof(longout) - 1);

	st = run("segv", segv, err, sizeof(err));
	tap_ok(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && lines(err) == 1 &&
	       strstr(err, "HAKMEM_PROF_SIGNAL=11"),
	       "HAKMEM_PROF_SIGNAL=11: ignored with one line, a NULL store dies of SIGSEGV");
	tap_diag("status 0x%x, stderr: %.*s", st, (int)strcspn(err, "\n"), err);
	clean_dir();

	st = run("fpe", fpe, err, sizeof(err));
	tap_ok(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGFPE && lines(err) == 1 &&
	       strstr(err, "HAKMEM_PROF_SIGNAL=8"),
	       "HAKMEM_PROF_SIGNAL=8: ignored with one line, a division by zero dies of SIGFPE");
	tap_diag("status 0x%x, stderr: %.*s", st, (int)strcspn(err, "\n"), err);
	clean_dir();

	st = run("out", out, err, sizeof(err));
	tap_ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && lines(err) == 1 &&
	       strstr(err, "HAKMEM_PROF_OUT") && count_files("hakmem-prof.") == 1,
	       "HAKMEM_PROF_OUT of 5,000 bytes: ignored with one line, the default name used");
	tap_diag("status 0x%x, %d default-named files, stderr: %.*s", st,
		 count_files("hakmem-prof."), (int)strcspn(err, "\n"), err);
	clean_dir();

	if (chdir("/") == 0)
		rmdir(dir);
	tap_finish();
}
