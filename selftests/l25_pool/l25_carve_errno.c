// SPDX-License-Identifier: MIT
/*
 * l25_carve_errno: a malloc served by a fresh L2.5 region keeps errno
 * when the pool's mapping of several regions at once is refused and the
 * single region it then maps is not.
 *
 * In a child whose address space is limited (RLIMIT_AS) to what it uses
 * plus 3 MiB, after 20 regions were made: the next mapping asks for 2
 * regions (16 without the limit; 2 at most under one since rv35), 4 MiB,
 * which is refused, then for one, which is not: every malloc up to the
 * one that made that region keeps errno (EDOM, set before each call).
 * Before the fix the first such malloc returned its block with errno
 * ENOMEM from the refused mmap. (Until rv35 the limit left 12 MiB and
 * the refused mapping was of 16 regions; with 2 at most, 12 MiB let it
 * through and the test passed with the errno restore taken out.)
 */
#include <sys/resource.h>
#include <sys/wait.h>
#include "l25_test.h"

#define NBLK	4096

static void *blk[NBLK];

static size_t vm_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	size_t pages = 0;

	if (f) {
		if (fscanf(f, "%zu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* 0: errno kept; 1: a success changed it; 2: the setup failed */
static int child(void)
{
	struct hak_l25_stats st0, st1;
	struct rlimit rl;
	unsigned made = 0;
	size_t n = 0;

	hak_l25_stats(&st0);
	while (n < NBLK) {
		blk[n] = malloc(40000);
		if (!blk[n++])
			return 2;
		hak_l25_stats(&st1);
		if (st1.region_maps - st0.region_maps >= 20 && !st1.reserved_bytes)
			break;
	}
	/*
	 * Twice: the first limit (under 64 GiB) makes hakmem give its page
	 * map's 4 GiB back (lib/superslab.h, __hak_pm_fit_limit).
	 */
	for (int i = 0; i < 2; i++) {
		rl.rlim_cur = rl.rlim_max = vm_bytes() + ((size_t)3 << 20);
		if (setrlimit(RLIMIT_AS, &rl))
			return 2;
	}
	while (n < NBLK && !made) {
		hak_l25_stats(&st0);
		errno = EDOM;
		blk[n] = malloc(40000);
		if (!blk[n])
			return 2;
		if (errno != EDOM) {
			printf("# malloc %zu: block %p, errno %d\n", n, blk[n], errno);
			fflush(stdout);
			return 1;
		}
		hak_l25_stats(&st1);
		made += st1.region_maps != st0.region_maps;
		n++;
	}
	return made ? 0 : 2;
}

int main(void)
{
	int status = 0;
	pid_t pid;

	tap_plan(1);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(child());
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) == 2)
		tap_bail("the child could not run the test (status %#x)", status);
	tap_ok(WEXITSTATUS(status) == 0,
	       "a malloc whose 2-region mapping is refused and single region is not keeps errno");
	tap_finish();
	return 0;
}
