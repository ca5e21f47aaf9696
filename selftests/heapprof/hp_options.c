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
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"

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

static struct child_result r;

/* A child that spins at a fault is ended by this (an alarm lives on across exec). */
static void deadline(void)
{
	alarm(20);
}

/* Run mode again, with env set, in the directory made. */
static void run(const char *mode, char *const env[])
{
	char *argv[] = { "hp_options", (char *)mode, NULL };

	child_exec(NULL, argv, env, deadline, &r);
}

static void diag(void)
{
	tap_diag("status 0x%x, %d default-named files, stderr: %.*s", r.status,
		 dir_count(".", "hakmem-prof."), (int)strcspn(r.err, "\n"), r.err);
}

/* A child that dies of sig, after one line on stderr that names want. */
static bool died_of(int sig, const char *want)
{
	return r.status != -1 && WIFSIGNALED(r.status) && WTERMSIG(r.status) == sig &&
	       child_err_lines(&r) == 1 && strstr(r.err, want);
}

int main(int argc, char **argv)
{
	static char longout[5001];
	char dir[] = "/tmp/hp_options.XXXXXX", cwd[64];
	char *segv[] = { "HAKMEM_PROF", "1", "HAKMEM_PROF_SIGNAL", "11", NULL };
	char *fpe[] = { "HAKMEM_PROF", "1", "HAKMEM_PROF_SIGNAL", "8", NULL };
	char *out[] = { "HAKMEM_PROF", "1", "HAKMEM_PROF_OUT", longout, NULL };

	if (argc > 1)
		return child_main(argv[1]);
	tap_plan(3);
	if (!mkdtemp(dir) || chdir(dir) < 0)
		tap_bail("no directory of its own");
	memset(longout, 'x', sizeof(longout) - 1);

	run("segv", segv);
	tap_ok(died_of(SIGSEGV, "HAKMEM_PROF_SIGNAL=11"),
	       "HAKMEM_PROF_SIGNAL=11: ignored with one line, a NULL store dies of SIGSEGV");
	diag();
	run("fpe", fpe);
	tap_ok(died_of(SIGFPE, "HAKMEM_PROF_SIGNAL=8"),
	       "HAKMEM_PROF_SIGNAL=8: ignored with one line, a division by zero dies of SIGFPE");
	diag();
	run("out", out);
	tap_ok(child_exited_ok(&r) && child_err_lines(&r) == 1 && strstr(r.err, "HAKMEM_PROF_OUT") &&
	       dir_count(".", "hakmem-prof.") == 1,
	       "HAKMEM_PROF_OUT of 5,000 bytes: ignored with one line, the default name used");
	diag();
	snprintf(cwd, sizeof(cwd), "%s", dir);
	if (chdir("/") == 0)
		dir_remove(cwd);
	tap_finish();
}
