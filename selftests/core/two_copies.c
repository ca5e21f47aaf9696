// SPDX-License-Identifier: MIT
/*
 * two_copies: hakmem twice in one process, a program linked with
 * libhakmem.a run with LD_PRELOAD=libhakmem.so ($HAKMEM_LIB, set by the
 * selftest runner).
 *
 * The program's own copy serves its malloc (the executable comes first in
 * symbol lookup); the preloaded copy is relocated first and takes the
 * fixed page map's first page (lib/alloc.c, pm_fixed_resolve). The
 * program's copy then finds the page taken, by another hakmem (its
 * signature in the page before), and runs without a fixed map: every free
 * takes the slow path. Proves, in the preloaded child, that
 *  - (fixed-map builds) the program's copy saw the other's page: state 2;
 *  - 4 threads allocate, fill, check and free 10,000 blocks of 16 B to
 *    64 KiB each, their last blocks freed by another thread, and the child
 *    exits 0;
 *  - realloc, calloc and aligned blocks behave.
 */
#include <pthread.h>

#include "core_test.h"
#include "superslab.h"

#define NT	4
#define ROUNDS	10000
#define WIN	256

static void *shared_win[NT][WIN];
static size_t shared_len[NT][WIN];

static void *churn(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg, x = me * 2654435761u + 1;
	long bad = 0;

	for (unsigned r = 0; r < ROUNDS / WIN; r++) {
		for (unsigned i = 0; i < WIN; i++) {
			size_t n;

			x = x * 1103515245u + 12345u;
			n = 16 + (x >> 8) % (x & 15 ? 1024 : 65536);
			if (shared_win[me][i]) {
				bad += ct_check(shared_win[me][i], shared_len[me][i]) !=
				       shared_len[me][i];
				free(shared_win[me][i]);
			}
			shared_win[me][i] = malloc(n);
			if (!shared_win[me][i])
				return (void *)1L;
			shared_len[me][i] = n;
			ct_fill(shared_win[me][i], n);
		}
	}
	return (void *)bad;
}

static int child(void)
{
	pthread_t t[NT];
	long bad = 0;
	void *p, *q;

#ifdef HAK_PM_FIXED
	{
		void *volatile v = malloc(100);	/* the first superslab: pm_init */

		free(v);
		if (__hak_pm_fixed != 2)
			return 2;
	}
#endif
	for (unsigned i = 0; i < NT; i++)
		if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i))
			return 9;
	for (unsigned i = 0; i < NT; i++) {
		void *r;

		if (pthread_join(t[i], &r))
			return 9;
		bad += (long)r;
	}
	/* every thread's last window, freed by this one (remote frees) */
	for (unsigned i = 0; i < NT; i++)
		for (unsigned j = 0; j < WIN; j++) {
			bad += ct_check(shared_win[i][j], shared_len[i][j]) != shared_len[i][j];
			free(shared_win[i][j]);
		}
	if (bad)
		return 3;
	p = calloc(1000, 100);
	for (size_t i = 0; p && i < 100000; i++)
		if (((unsigned char *)p)[i])
			return 4;
	memset(p, 0x5a, 100000);
	q = realloc(p, 1 << 20);
	for (size_t i = 0; q && i < 100000; i++)
		if (((unsigned char *)q)[i] != 0x5a)
			return 4;
	if (!q)
		return 4;
	free(q);
	p = aligned_alloc(4096, 8192);
	if (!p || ((uintptr_t)p & 4095))
		return 5;
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *lib = getenv("HAKMEM_LIB");
	char self[4096];
	ssize_t n;
	pid_t pid;
	int st;

	if (argc == 2 && !strcmp(argv[1], "child"))
		return child();
	if (!CT_HAKMEM || !lib || access(lib, R_OK))
		tap_skip_all("no libhakmem.so (HAKMEM_LIB) to preload");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		tap_skip_all("no /proc/self/exe");
	self[n] = 0;
	tap_plan(1);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0) {
		setenv("LD_PRELOAD", lib, 1);
		execl(self, self, "child", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		tap_bail("waitpid: %s", strerror(errno));
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "preloaded libhakmem.so beside the linked copy: the linked copy runs without "
	       "the other's page map, 4 threads churn, calloc/realloc/aligned (%s %d)",
	       WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	tap_finish();
}
