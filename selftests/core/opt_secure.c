// SPDX-License-Identifier: MIT
/*
 * opt_secure: a set-user-ID program takes no HAKMEM_* variable from its
 * caller's environment, and says so, one line for each.
 *
 * Before (rv27) it took them all: run by nobody, a set-user-ID-root
 * program with HAKMEM_PROF=1 HAKMEM_PROF_OUT=<path> created and truncated
 * <path>.<pid>.pb.gz as root, and HAKMEM_MEMORY_LIMIT with
 * HAKMEM_MEMORY_LIMIT_HARD=1 failed its allocations at the caller's will.
 *
 * Needs root (it makes a set-user-ID-root copy of itself in a directory
 * of its own and runs it as nobody, 65534) and a file system that honours
 * set-user-ID bits: skipped otherwise (the copy reports AT_SECURE).
 */
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "core_test.h"
#include "init.h"

#define NOBODY	65534

/* The set-user-ID copy: exit 3 without AT_SECURE, 2 if a malloc failed. */
static int child_main(void)
{
	void *volatile p;

	if (!getauxval(AT_SECURE))
		return 3;
	p = malloc(4 << 20);	/* past the 1 MiB hard limit asked for */
	if (!p)
		return 2;
	memset(p, 1, 4 << 20);
	free(p);
	return __hak_opt.prof || __hak_opt.memory_limit_hard || __hak_opt.stats ? 4 : 0;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	ssize_t n;
	int rc = in >= 0 && out >= 0 ? 0 : -1;

	while (!rc && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		rc = -1;
	return rc;
}

static int count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

static void remove_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[400];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
}

int main(int argc, char **argv)
{
	static char err[4096];
	char dir[] = "/tmp/opt_secure.XXXXXX", exe[64], out[96];
	int fds[2], status = -1, lines = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;
	char *s;

	if (argc > 1 && !strcmp(argv[1], "child"))
		return child_main();
	tap_plan(3);
	if (geteuid() != 0)
		tap_skip_all("needs root, to make a set-user-ID-root program");
	if (!mkdtemp(dir) || chmod(dir, 0755) < 0)
		tap_bail("no directory of its own");
	snprintf(exe, sizeof(exe), "%s/suid", dir);
	snprintf(out, sizeof(out), "%s/prof", dir);
	if (copy_file("/proc/self/exe", exe) < 0 || chmod(exe, 04755) < 0)
		tap_bail("cannot copy itself");
	if (pipe(fds) < 0)
		tap_bail("pipe");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *av[] = { exe, "child", NULL };

		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		setenv("HAKMEM_PROF", "1", 1);
		setenv("HAKMEM_PROF_OUT", out, 1);
		setenv("HAKMEM_MEMORY_LIMIT", "1m", 1);
		setenv("HAKMEM_MEMORY_LIMIT_HARD", "1", 1);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(126);
		execv(exe, av);
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
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 3) {
		tap_skip("the copy did not run set-user-ID (a nosuid file system?)");
		tap_skip("the copy did not run set-user-ID");
		tap_skip("the copy did not run set-user-ID");
	} else {
		tap_ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "run by nobody, the program took no option: its 4 MiB malloc past the "
		       "1 MiB hard limit worked (status 0x%x)", status);
		tap_ok(count_prefix(dir, "prof") == 0, "no profile written as root at the caller's path");
		/* HAKMEM_PROF_OUT is the profiler's own, never read with it off */
		tap_ok(lines == 3 && strstr(err, "ignoring HAKMEM_PROF in a set-user-ID") &&
		       strstr(err, "ignoring HAKMEM_MEMORY_LIMIT in a set-user-ID") &&
		       strstr(err, "ignoring HAKMEM_MEMORY_LIMIT_HARD in a set-user-ID"),
		       "one line for each of the 3 table variables set (%d lines)", lines);
		if (*err)
			tap_diag("%.*s", (int)strcspn(err, "\n"), err);
	}
	remove_files(dir);
	rmdir(dir);
	tap_finish();
}
