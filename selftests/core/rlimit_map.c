// SPDX-License-Identifier: MIT
/*
 * rlimit_map: under an RLIMIT_AS or RLIMIT_DATA below 64 GiB the program keeps
 * its limit for its own blocks.
 *
 * The page map (lib/superslab.h) is 4 GiB of address space reserved
 * writable with MAP_NORESERVE: it costs no memory, but counts in VmSize
 * (RLIMIT_AS) and VmData (RLIMIT_DATA). Reserved under such a limit, it
 * took 4 GiB of it: with `ulimit -v 4300000` (or `ulimit -d`) a Python
 * program's 700 MB bytearray failed that glibc served. The fixed map is
 * reserved while the library is relocated, so each case runs in a fresh
 * process: this program runs itself again (/proc/self/exe) with the limit
 * set, and the child allocates 2 GiB under a 5 GiB limit (about 2.2 GiB
 * of address space with glibc, 6.2 GiB with the map). Only the block's
 * first and last pages are touched. Also built against the C library's
 * malloc; it passes there too.
 */
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

#define LIMIT	(5UL << 30)
#define BLOCK	(2UL << 30)

static void *(*volatile const v_malloc)(size_t) = malloc;

/* The child: the limit is already set; exit 0 when the block is served. */
static int child(void)
{
	char *p = v_malloc(BLOCK);

	if (!p) {
		printf("# malloc(2 GiB) failed, errno %d, VmSize %ld KiB\n", errno,
		       proc_status_kib("VmSize"));
		return 1;
	}
	p[0] = 1;
	p[BLOCK - 1] = 2;
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { int res; const char *name; } lims[] = {
		{ RLIMIT_AS, "RLIMIT_AS" }, { RLIMIT_DATA, "RLIMIT_DATA" },
	};

	if (argc == 2 && !strcmp(argv[1], "--child"))
		return child();
	tap_plan(ARRAY_SIZE_CT(lims));
	for (size_t i = 0; i < ARRAY_SIZE_CT(lims); i++) {
		int st = 0, rc;
		pid_t pid;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			struct rlimit rl;

			if (getrlimit(lims[i].res, &rl))
				_exit(3);
			if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < LIMIT)
				_exit(4);
			rl.rlim_cur = LIMIT;
			if (setrlimit(lims[i].res, &rl))
				_exit(3);
			execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
			_exit(3);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			tap_bail("fork/waitpid failed");
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (rc == 4) {
			tap_skip("%s: hard limit under 5 GiB", lims[i].name);
			continue;
		}
		tap_ok(rc == 0, "%s at 5 GiB: a 2 GiB block is served%s", lims[i].name,
		       rc == 3 ? " (setrlimit/exec failed)" : rc < 0 ? " (killed)" : "");
	}
	tap_finish();
}
