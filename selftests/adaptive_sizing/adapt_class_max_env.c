// SPDX-License-Identifier: MIT
/*
 * HAKMEM_ADAPTIVE_CLASS_MAX's values that are not a plain size (rv21): a
 * child runs with HAKMEM_TCACHE_BYTES=1m (the core starts the 1,280 B
 * class at 256 blocks, the 16 KiB class at about 60) and the value under test,
 * and prints the capacities a new thread starts those two classes and the
 * 256 B class at. A value the options table refuses (negative, garbage, a
 * unit it does not know, past its 1 GiB bound, an overflow, empty) is
 * reported once ("ignoring ...") and leaves the classes as with the
 * variable unset; 0 is unset; 1 byte puts the classes of 512 B and more
 * at the 16-block floor; 1g is above every class's 2,048 blocks; 64K (a
 * capital unit) is 64 KiB. The 256 B class is never bounded.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "adapt_test.h"

#define ENV	"HAKMEM_ADAPTIVE_CLASS_MAX"

static const size_t sizes[3] = { 1200, 16000, 250 };

static void *start_caps(void *arg)
{
	uint32_t *cap = arg;
	unsigned i;

	hak_free(hak_malloc(16));	/* attach */
	for (i = 0; i < 3; i++)
		cap[i] = __hak_tcache_cap_set(__hak_class_of(sizes[i]));
	return NULL;
}

/* The child's capacities and whether it said it ignored val (NULL: unset). */
static int run_child(char **argv, const char *val, uint32_t *cap, int *ignored)
{
	char out[2048], *s;
	size_t got = 0;
	ssize_t n;
	int fds[2], status;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		char *av[] = { argv[0], (char *)"caps", NULL };

		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		setenv("HAKMEM_TCACHE_BYTES", "1m", 1);
		if (val)
			setenv(ENV, val, 1);
		else
			unsetenv(ENV);
		alarm(20);
		execv("/proc/self/exe", av);
		_exit(9);
	}
	close(fds[1]);
	while (got < sizeof(out) - 1 && (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	*ignored = strstr(out, "ignoring " ENV) != NULL;
	s = strstr(out, "caps ");
	if (!s || sscanf(s, "caps %u %u %u", &cap[0], &cap[1], &cap[2]) != 3)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *val;
		int ignored;
		uint32_t big, huge;	/* expected start caps; 0: as unset */
	} cases[] = {
		{ "0", 0, 0, 0 },
		{ "-1", 1, 0, 0 },
		{ "abc", 1, 0, 0 },
		{ "64kb", 1, 0, 0 },
		{ " 64k", 1, 0, 0 },
		{ "", 1, 0, 0 },
		{ "2g", 1, 0, 0 },
		{ "99999999999999999999999", 1, 0, 0 },
		{ "1", 0, AT_CAP_MIN, AT_CAP_MIN },
		{ "1g", 0, 0, 0 },
		{ "64K", 0, 1, AT_CAP_MIN },	/* big: 64 KiB of its blocks */
	};
	uint32_t unset[3], cap[3];
	size_t big_stride = at_stride(__hak_class_of(sizes[0]));
	unsigned i;
	int ign;

	if (argc > 1 && !strcmp(argv[1], "caps")) {
		at_run(start_caps, cap);
		printf("caps %u %u %u\n", cap[0], cap[1], cap[2]);
		return 0;
	}
	tap_plan(1 + ARRAY_SIZE(cases));
	if (run_child(argv, NULL, unset, &ign))
		tap_bail("the child without the variable");
	tap_ok(unset[0] > (64u << 10) / big_stride && !ign && unset[2] > AT_CAP_MIN,
	       "unset: the classes start at %u, %u and %u blocks", unset[0], unset[1], unset[2]);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t big = cases[i].big == 1 ? (uint32_t)((64u << 10) / big_stride) :
			       cases[i].big ? cases[i].big : unset[0];
		uint32_t huge = cases[i].huge ? cases[i].huge : unset[1];
		int rc = run_child(argv, cases[i].val, cap, &ign);

		tap_ok(!rc && ign == cases[i].ignored && cap[0] == big && cap[1] == huge &&
		       cap[2] == unset[2],
		       "%s='%s': %s, starts at %u, %u, %u blocks (want %u, %u, %u)", ENV,
		       cases[i].val, ign ? "ignored" : "taken", cap[0], cap[1], cap[2], big, huge,
		       unset[2]);
	}
	tap_finish();
}
