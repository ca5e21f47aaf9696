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
#include <grp.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include "core_test.h"
#include "child.h"
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

/* In the child, before the exec: become nobody. */
static void become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		_exit(126);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/opt_secure.XXXXXX", exe[64], out[96];
	char *av[] = { exe, "child", NULL };
	char *env[] = { "HAKMEM_PROF", "1", "HAKMEM_PROF_OUT", out, "HAKMEM_MEMORY_LIMIT", "1m",
			"HAKMEM_MEMORY_LIMIT_HARD", "1", NULL };
	struct child_result r;
	int lines;

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
	child_exec(exe, av, env, become_nobody, &r);
	lines = child_err_lines(&r);
	if (r.status != -1 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3) {
		tap_skip("the copy did not run set-user-ID (a nosuid file system?)");
		tap_skip("the copy did not run set-user-ID");
		tap_skip("the copy did not run set-user-ID");
	} else {
		tap_ok(child_exited_ok(&r),
		       "run by nobody, the program took no option: its 4 MiB malloc past the "
		       "1 MiB hard limit worked (status 0x%x)", r.status);
		tap_ok(dir_count(dir, "prof") == 0, "no profile written as root at the caller's path");
		/* HAKMEM_PROF_OUT is the profiler's own, never read with it off */
		tap_ok(lines == 3 && strstr(r.err, "ignoring HAKMEM_PROF in a set-user-ID") &&
		       strstr(r.err, "ignoring HAKMEM_MEMORY_LIMIT in a set-user-ID") &&
		       strstr(r.err, "ignoring HAKMEM_MEMORY_LIMIT_HARD in a set-user-ID"),
		       "one line for each of the 3 table variables set (%d lines)", lines);
		if (*r.err)
			tap_diag("%.*s", (int)strcspn(r.err, "\n"), r.err);
	}
	dir_remove(dir);
	tap_finish();
}
