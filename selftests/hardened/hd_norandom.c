// SPDX-License-Identifier: MIT
/*
 * hd_norandom: the hardened box when getrandom() fails (very early boot, a
 * seccomp filter): the link secret and the carve order's seed come from
 * the clock, the pid and addresses (boxes/hardened/hardened.c, never run
 * by a test before). Linked with --wrap=__hak_os_getrandom (the box asks
 * the kernel through it, lib/os.c), which fails with ENOSYS and counts
 * its calls.
 *
 * The program runs itself twice; each child allocates (the first heap
 * attach sets the secret), prints the secret and the order of 16 new
 * 64-byte blocks of a fresh slab. Proves that getrandom was asked and
 * refused, that each secret is set (odd, never the "not set" 0), that the
 * two processes' secrets differ and their carve orders differ (the same
 * seed would repeat both), and that blocks still come out of address order.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/wait.h>
#include "tap.h"
#include "boxes/hardened/hardened.h"

#define NB	16

ssize_t __wrap___hak_os_getrandom(void *buf, size_t len);

static int refused;

ssize_t __wrap___hak_os_getrandom(void *buf, size_t len)
{
	(void)buf;
	(void)len;
	refused++;
	errno = ENOSYS;
	return -1;
}

/* The child: secret, then the rank of each of 16 new blocks by address. */
static int show(void)
{
	void *b[NB];
	unsigned i, j;

	b[0] = malloc(64);
	printf("%d %lx", refused, (unsigned long)__hak_hd_secret);
	/* 16 more from the rest of the slab (its first block went above) */
	for (i = 0; i < NB; i++)
		b[i] = malloc(64);
	for (i = 0; i < NB; i++) {
		unsigned rank = 0;

		for (j = 0; j < NB; j++)
			rank += (uintptr_t)b[j] < (uintptr_t)b[i];
		printf(" %u", rank);
	}
	printf("\n");
	return 0;
}

static int run(const char *self, char *out, size_t len)
{
	int fd[2], st;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	if (pipe(fd))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		execl(self, self, "show", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	while ((n = read(fd[0], out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fd[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096], a[512], b[512];
	unsigned long sa = 0, sb = 0;
	int ra = 0, rb = 0, inorder = 1;
	const char *oa, *ob;
	ssize_t n;

	if (argc == 2 && !strcmp(argv[1], "show"))
		return show();
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		tap_skip_all("no /proc/self/exe");
	self[n] = 0;
	tap_plan(3);
	if (run(self, a, sizeof(a)) || run(self, b, sizeof(b)) ||
	    sscanf(a, "%d %lx", &ra, &sa) != 2 || sscanf(b, "%d %lx", &rb, &sb) != 2)
		tap_bail("the children did not report (%s / %s)", a, b);
	tap_ok(ra > 0 && rb > 0 && (sa & 1) && (sb & 1),
	       "getrandom refused (%d, %d calls): secrets set anyway (%#lx, %#lx)",
	       ra, rb, sa, sb);
	oa = strchr(strchr(a, ' ') + 1, ' ');
	ob = strchr(strchr(b, ' ') + 1, ' ');
	tap_ok(sa != sb && oa && ob && strcmp(oa, ob),
	       "two processes: different secrets and different carve orders");
	for (unsigned i = 0; oa && i < NB; i++) {
		unsigned r;

		if (sscanf(oa, " %u", &r) != 1 || r != i)
			inorder = 0;
		oa = strchr(oa + 1, ' ');
	}
	tap_ok(!inorder, "new blocks still out of address order:%s", strchr(strchr(a, ' ') + 1, ' '));
	tap_finish();
}
