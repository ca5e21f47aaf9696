// SPDX-License-Identifier: MIT
/*
 * grow_limit: realloc growth when the grow area cannot be reserved.
 *
 * A thread's first large growth reserves a grow area of 32 MiB of address
 * space (lib/grow.c, area_claim); under an RLIMIT_AS with less room than
 * that the reserve fails, and from then on blocks grow the usual large
 * way (never run by a test before). In a child whose limit leaves 24 MiB:
 * a block grown from 300 KiB to 8 MiB in 40 steps keeps its data at every
 * step and never fails, and after the limit is raised again growth still
 * works (areas stay off, as documented).
 * Also built against the C library's malloc; it passes there too.
 */
#include "core_test.h"

#define KIB	((size_t)1 << 10)
#define MIB	((size_t)1 << 20)

static int holds(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 4093)
		if (p[i] != (unsigned char)(i % 251 + 1))
			return 0;
	return 1;
}

static void fill(unsigned char *p, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		p[i] = (unsigned char)(i % 251 + 1);
}

/* 0 ok; 1 realloc failed; 2 data lost; 9 setup */
static int grow(size_t start, size_t end, unsigned steps)
{
	unsigned char *p = malloc(start), *q;
	size_t n = start;

	if (!p)
		return 1;
	fill(p, 0, n);
	for (unsigned k = 1; k <= steps; k++) {
		size_t m = start + (end - start) * k / steps;

		q = realloc(p, m);
		if (!q) {
			free(p);
			return 1;
		}
		p = q;
		if (!holds(p, n)) {
			free(p);
			return 2;
		}
		fill(p, n, m);
		n = m;
	}
	free(p);
	return 0;
}

static int child(void)
{
	struct rlimit rl, was;
	int r;

	if (getrlimit(RLIMIT_AS, &was) || ct_cap_as(&was, 24 * MIB, 0))
		return 9;
	r = grow(300 * KIB, 8 * MIB, 40);
	if (r)
		return r;
	rl = was;
	if (setrlimit(RLIMIT_AS, &rl))
		return 9;
	r = grow(300 * KIB, 16 * MIB, 20);
	return r ? r + 10 : 0;
}

int main(void)
{
	int st;
	pid_t pid;

	tap_plan(1);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(child());
	if (waitpid(pid, &st, 0) != pid)
		tap_bail("waitpid: %s", strerror(errno));
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "RLIMIT_AS with 24 MiB of room (no grow area): 300 KiB grown to 8 MiB in 40 "
	       "reallocs, data kept; limit raised, grown to 16 MiB (%s %d)",
	       WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	tap_finish();
}
