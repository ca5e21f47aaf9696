// SPDX-License-Identifier: MIT
/*
 * fi_commit: a registration whose mprotect fails ends in NULL + ENOMEM.
 *
 * The page map and the registry are read-only until a writer needs a
 * granule of them (lib/superslab.c, "Commit charge"): its first
 * superslab or L2.5 region there makes the granule writable with an
 * mprotect, which under vm.overcommit_memory=2 is charged and may be
 * refused at the commit limit. Such a refusal must fail the allocation
 * that needed it (NULL with errno ENOMEM), never crash by writing to a
 * read-only page and never hand out a block whose free would not be
 * found. The fault-injection site HAK_OS_PROTECT plays the kernel's
 * refusal.
 *
 * Each case runs in a fresh process (this program again, by exec), where
 * no granule is writable yet: the site fails at every call from the
 * skip-th on, the allocation must be NULL + ENOMEM with at least one
 * fault injected; then the site works again, and the same allocation
 * succeeds, its block is written, freed, and a few thousand more small
 * and mid blocks live and die.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hakmem/hakmem.h>

#include "../lib/tap.h"
#include "os.h"
#include "size_class.h"

#define ALL	(~0UL)

static void *(*volatile const v_malloc)(size_t) = hak_malloc;

/* The child: exit 0 when the case holds, else a code (printed). */
static int child(size_t n, unsigned long skip)
{
	static void *keep[4000];
	unsigned long f;
	int err;
	void *p;

	hak_test_os_fail(HAK_OS_PROTECT, skip, ALL);
	errno = 0;
	p = v_malloc(n);
	err = errno;
	hak_test_os_fail(HAK_OS_PROTECT, 0, 0);
	f = hak_test_os_failed(HAK_OS_PROTECT);
	if (!f)
		return p ? 10 : 11;	/* no mprotect was needed: not this case */
	if (p || err != ENOMEM) {
		printf("# malloc(%zu): %p, errno %d, %lu faults\n", n, p, err, f);
		return 2;
	}
	p = v_malloc(n);
	if (!p)
		return 3;
	memset(p, 0x5a, n);
	hak_free(p);
	for (unsigned i = 0; i < 4000; i++) {
		keep[i] = v_malloc(i % 4 ? 16 + i % 2000 : 40000 + i);
		if (!keep[i])
			return 4;
		memset(keep[i], (int)i, 16);
	}
	for (unsigned i = 0; i < 4000; i++)
		hak_free(keep[i]);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { size_t n; unsigned long skip; const char *what; } cases[] = {
		{ 64, 0, "small block, every mprotect refused" },
		{ 64, 1, "small block, the second mprotect on refused" },
		{ 100000, 0, "mid block, every mprotect refused" },
		{ 8 << 20, 0, "large block (no registration): no mprotect" },
	};

	if (argc == 4 && !strcmp(argv[1], "--child"))
		return child(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));

	hak_test_os_fail(HAK_OS_PROTECT, 0, 1);
	hak_test_os_fail(HAK_OS_PROTECT, 0, 0);
	tap_plan((sizeof(cases) / sizeof(cases[0])));
	for (size_t i = 0; i < (sizeof(cases) / sizeof(cases[0])); i++) {
		char nb[32], sb[32];
		int st = 0, rc;
		pid_t pid;

		snprintf(nb, sizeof(nb), "%zu", cases[i].n);
		snprintf(sb, sizeof(sb), "%lu", cases[i].skip);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			execl("/proc/self/exe", argv[0], "--child", nb, sb, (char *)NULL);
			_exit(9);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			tap_bail("fork/waitpid failed");
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
		if (cases[i].n >= (8 << 20)) {
			/* a large block has no registry byte: never an mprotect */
			tap_ok(rc == 10, "%s (child: %d)", cases[i].what, rc);
			continue;
		}
		if (cases[i].n > HAK_SMALL_MAX && !IS_ENABLED(CONFIG_HAK_L25_POOL)) {
			/* without the L2.5 pool a mid block is a large one */
			tap_ok(rc == 10, "%s: a large block without the L2.5 pool, no mprotect "
			       "(child: %d)", cases[i].what, rc);
			continue;
		}
		if (rc)
			tap_diag("child exit %d (negative: killed by that signal)", rc);
		tap_ok(rc == 0, "%s: NULL + ENOMEM, then served", cases[i].what);
	}
	tap_finish();
}
