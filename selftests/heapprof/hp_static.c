// SPDX-License-Identifier: MIT
/*
 * hp_static: a program linked with -static (this one, without
 * -Wl,--eh-frame-hdr) has no .eh_frame_hdr, which the profiler's DWARF
 * walk needs: its stacks read [unknown]. The profiler says so, once, at
 * its first sample. Before (rv27) the profile was all [unknown] and
 * nothing said why.
 *
 * The child runs this program again with HAKMEM_PROF=1 and a sample for
 * every byte; the profile goes to a directory of its own, removed after.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "tap.h"

static int child_main(void)
{
	unsigned i;

	for (i = 0; i < 100; i++) {
		void *volatile p = malloc(64 + i);

		free(p);
	}
	return 0;
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
	char dir[] = "/tmp/hp_static.XXXXXX", out[64];
	int fds[2], status = -1, lines = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;
	char *s;

	(void)argc;
	if (getenv("HP_STATIC_CHILD"))
		return child_main();
	tap_plan(2);
	if (!mkdtemp(dir) || pipe(fds) < 0)
		tap_bail("no directory or pipe");
	snprintf(out, sizeof(out), "%s/prof", dir);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		setenv("HP_STATIC_CHILD", "1", 1);
		setenv("HAKMEM_PROF", "1", 1);
		setenv("HAKMEM_PROF_SAMPLE", "1", 1);
		setenv("HAKMEM_PROF_OUT", out, 1);
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
	       "a -static program profiles and exits (status 0x%x)", status);
	tap_ok(lines == 1 && strstr(err, ".eh_frame_hdr"),
	       "one line says its frames will read [unknown] (%d lines)", lines);
	if (*err)
		tap_diag("%.*s", (int)strcspn(err, "\n"), err);
	remove_files(dir);
	rmdir(dir);
	tap_finish();
}
