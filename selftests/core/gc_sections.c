// SPDX-License-Identifier: MIT
/*
 * gc_sections: a program linked with libhakmem.a and -Wl,--gc-sections
 * (gc_sections-ldlibs) still runs the library's load-time resolvers.
 *
 * On x86_64 the fixed page map (lib/alloc.c) is made by the resolver of an
 * IRELATIVE relocation whose only anchor is a pointer in data that
 * nothing refers to (so was the registry's read-only mapping, made at the
 * first registration since it left .bss). "used"
 * kept it from the compiler but not from the linker: with --gc-sections
 * the anchors went, the resolvers never ran, and the first free read the
 * fixed map at an unmapped address (SIGSEGV). The anchors are "retain" now.
 *
 * Checked before anything allocates (a forked child allocates): the map's
 * signature page is there, and the registry is no part of the image; then
 * the child's malloc and free of small, mid and large blocks return.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "core_test.h"
#include "superslab.h"

/* the linker's bounds of the executable's image (GNU ld, lld) */
extern char __executable_start[], _end[];

static int child(void)
{
	static const size_t sizes[] = { 16, 100, 3000, 40000, 200000, 4 << 20 };
	void *volatile p;

	for (unsigned r = 0; r < 100; r++)
		for (unsigned i = 0; i < ARRAY_SIZE_CT(sizes); i++) {
			p = malloc(sizes[i]);
			if (!p)
				return 2;
			memset(p, 0x5a, 16);
			free(p);
		}
	return 0;
}

int main(void)
{
	int st = 0;
	pid_t pid;

	tap_plan(3);
#ifdef HAK_PM_FIXED
	tap_ok(__hak_pm_fixed != 0, "the page map's resolver ran (state %d)", __hak_pm_fixed);
#else
	tap_skip("no fixed page map in this build");
#endif
	tap_ok(!__hak_ssreg.lim ||
	       (uintptr_t)__hak_ssreg.map >= (uintptr_t)_end ||
	       (uintptr_t)__hak_ssreg.map + HAK_SSMAP_SIZE <= (uintptr_t)__executable_start,
	       "the registry is not in the program's image (none yet, or a mapping of its own: %p)",
	       (void *)__hak_ssreg.map);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork failed");
	if (!pid)
		_exit(child());
	if (waitpid(pid, &st, 0) != pid)
		tap_bail("waitpid failed");
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "malloc and free of small, mid and large blocks return (%s %d)",
	       WIFSIGNALED(st) ? "signal" : "exit",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	tap_finish();
}
