// SPDX-License-Identifier: MIT
/*
 * gc_sections: a program linked with libhakmem.a and -Wl,--gc-sections
 * (gc_sections-ldlibs) still runs the library's load-time resolvers.
 *
 * On x86_64 the fixed page map (lib/alloc.c) and the registry's read-only
 * mapping (lib/superslab.c) are made by resolvers of IRELATIVE relocations
 * whose only anchor is a pointer in data that nothing refers to. "used"
 * kept it from the compiler but not from the linker: with --gc-sections
 * the anchors went, the resolvers never ran, and the first free read the
 * fixed map at an unmapped address (SIGSEGV). The anchors are "retain" now.
 *
 * Checked before anything allocates (a forked child allocates): the map's
 * signature page is there, and the registry is already read-only; then
 * the child's malloc and free of small, mid and large blocks return.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core_test.h"
#include "superslab.h"

static char maps[1 << 16];

/* The permissions of the mapping holding a, read without malloc ("" if none). */
static const char *perms_of(uintptr_t a)
{
	static char perms[5];
	long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY);
	long n, got = 0;
	char *s;

	perms[0] = '\0';
	if (fd < 0)
		return perms;
	while (got < (long)sizeof(maps) - 1 &&
	       (n = syscall(SYS_read, fd, maps + got, sizeof(maps) - 1 - got)) > 0)
		got += n;
	syscall(SYS_close, fd);
	maps[got] = '\0';
	for (s = maps; *s; ) {
		unsigned long lo, hi;
		char p[5];

		if (sscanf(s, "%lx-%lx %4s", &lo, &hi, p) == 3 && a >= lo && a < hi) {
			memcpy(perms, p, sizeof(p));
			break;
		}
		s = strchr(s, '\n');
		if (!s)
			break;
		s++;
	}
	return perms;
}

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
	const char *reg = perms_of((uintptr_t)__hak_ssmap);
	int st = 0;
	pid_t pid;

	tap_plan(3);
#ifdef HAK_PM_FIXED
	tap_ok(__hak_pm_fixed != 0, "the page map's resolver ran (state %d)", __hak_pm_fixed);
#else
	tap_skip("no fixed page map in this build");
#endif
#if defined(ARCH_PM_FIXED) && !defined(__SANITIZE_THREAD__)
	tap_ok(!strcmp(reg, "r--p"), "the registry is read-only before the first allocation (%s)",
	       reg);
#else
	tap_skip("the registry is made read-only at the first registration here (%s)", reg);
#endif
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
