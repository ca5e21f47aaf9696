// SPDX-License-Identifier: MIT
/*
 * rlimit_space: under an RLIMIT_AS below 64 GiB hakmem holds little
 * address space beyond what the program's blocks use.
 *
 * ml34: python3 churning a dict with four threads needed `ulimit -v` of
 * 318 MiB under hakmem where glibc needed 177. Two reserves came out of
 * the limit whole: the superslab stock (its second refill maps 32
 * superslabs, 64 MiB, for a process that may need one more) and a
 * 32 MiB grow area per thread whose block realloc grows past 256 KiB.
 * Under such a limit the stock now grows 1, 2, 4 superslabs (as under
 * vm.overcommit_memory=2) and no grow areas are made.
 *
 * A child runs with RLIMIT_AS at 2 GiB (the limit is read at the refill
 * and the claim, so it is set before exec): two threads take three
 * superslabs' worth of small blocks each and grow a block by realloc
 * from 300 KB to 3 MiB; its VmData (the private writable mappings, which
 * both reserves are) (the blocks, two 8 MiB thread stacks, the stock) must stay under 80 MiB (main: 166 MiB).
 */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "core_test.h"
#include "proc.h"

#define NSMALL	(3 * 2 * 1024 * 1024 / 256)

static void *worker(void *arg)
{
	static void *keep[2][NSMALL];
	void **k = keep[(long)arg];
	char *p = malloc(300000);

	for (int i = 0; i < NSMALL; i++)
		k[i] = malloc(256);
	for (size_t n = 400000; p && n <= (3UL << 20); n += 100000) {
		char *q = realloc(p, n);

		if (!q)
			break;
		p = q;
		p[n - 1] = 1;
	}
	free(p);
	return NULL;
}

static int child(void)
{
	pthread_t t[2];
	long data;

	for (long i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return 3;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	data = proc_status_kib("VmData");
	printf("# under RLIMIT_AS 2 GiB: VmData %ld KiB, VmSize %ld KiB\n", data,
	       proc_status_kib("VmSize"));
	return data >= 0 && data < 80 * 1024 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct rlimit rl = { 2UL << 30, 2UL << 30 };
	int status = -1;
	pid_t p;

	if (argc > 1 && !strcmp(argv[1], "child"))
		return child();
	tap_plan(1);
	fflush(stdout);
	p = fork();
	if (p == 0) {
		char *args[] = { argv[0], "child", NULL };

		if (setrlimit(RLIMIT_AS, &rl))
			_exit(4);
		execv("/proc/self/exe", args);
		_exit(5);
	}
	if (p > 0)
		waitpid(p, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) >= 3)
		tap_skip_all("the child could not run (%d)", WEXITSTATUS(status));
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "RLIMIT_AS 2 GiB: no 64 MiB superslab stock, no grow areas (status 0x%x)",
	       status);
	tap_finish();
}
