// SPDX-License-Identifier: MIT
/*
 * HAKMEM_ADAPTIVE_CLASS_MAX (the box's byte ceiling per class), in one
 * fresh thread: the program re-executes itself with the variable at 64k,
 * then grows three classes by rounds of HOT_N blocks allocated and freed
 * (each round refills and overflows, so the box doubles the class's
 * capacity as far as it may):
 *   the 1,280 B class stops at 64 KiB of blocks (51), where it would reach
 *   2,048 without the ceiling;
 *   the 16 KiB class stays at the 16-block floor, above the ceiling;
 *   the 256 B class, under the classes the ceiling bounds (512 B), still
 *   reaches 2,048 blocks.
 * The capacities are read after every round; the worker records, the main
 * thread prints the TAP lines after the join. Then a child runs with
 * HAKMEM_TCACHE_BYTES=1m too, where the core's starting capacities (256
 * blocks of 1,280 B, 64 of 16 KiB) are past the ceiling: a new thread
 * starts those classes at 51 and 16 blocks.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "adapt_test.h"

#define CEIL_ENV	"HAKMEM_ADAPTIVE_CLASS_MAX"
#define CEIL_BYTES	(64u << 10)
#define HOT_N		1500
#define ROUNDS		12

struct grown {
	size_t size;		/* requested size */
	uint32_t most;		/* the highest capacity seen */
	uint32_t last;		/* the capacity after the last round */
};

static struct grown g[] = { { 1200, 0, 0 }, { 16000, 0, 0 }, { 250, 0, 0 } };
static void *blk[HOT_N];

static void grow_class(struct grown *x)
{
	unsigned c = __hak_class_of(x->size), r, i;

	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < HOT_N; i++)
			blk[i] = hak_malloc(x->size);
		for (i = 0; i < HOT_N; i++)
			hak_free(blk[i]);
		x->last = __hak_tcache_cap_set(c);
		if (x->last > x->most)
			x->most = x->last;
	}
}

static void *worker(void *arg)
{
	unsigned i;

	(void)arg;
	hak_free(hak_malloc(16));	/* attach (class 0) */
	for (i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		grow_class(&g[i]);
	return NULL;
}

/* The child's thread: 0 if it starts both classes at the ceiling. */
static void *start_caps(void *arg)
{
	uint32_t big, huge;

	hak_free(hak_malloc(16));	/* attach (class 0) */
	big = __hak_tcache_cap_set(__hak_class_of(g[0].size));
	huge = __hak_tcache_cap_set(__hak_class_of(g[1].size));
	*(int *)arg = big == CEIL_BYTES / at_stride(__hak_class_of(g[0].size)) &&
		      huge == AT_CAP_MIN ? 0 : 1;
	return NULL;
}

/* Run this program again as the child above; its exit status. */
static int start_child(char **argv)
{
	char *av[] = { argv[0], (char *)"start", NULL };
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		setenv("HAKMEM_TCACHE_BYTES", "1m", 1);
		alarm(20);
		execv("/proc/self/exe", av);
		_exit(9);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static size_t stride_of(size_t size)
{
	return at_stride(__hak_class_of(size));
}

int main(int argc, char **argv)
{
	size_t big = stride_of(g[0].size), huge = stride_of(g[1].size);
	size_t small = stride_of(g[2].size);
	uint32_t most = (uint32_t)(CEIL_BYTES / big);

	if (!getenv(CEIL_ENV)) {
		setenv(CEIL_ENV, "64k", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "start")) {
		int bad = 2;

		at_run(start_caps, &bad);
		return bad;
	}
	tap_plan(0);
	at_run(worker, NULL);

	tap_ok(g[0].most == most && g[0].last == most,
	       "%zu B class grows to %u blocks (64 KiB), no further: most %u, last %u",
	       big, most, g[0].most, g[0].last);
	tap_ok(g[0].most * big <= CEIL_BYTES, "its capacity holds %zu bytes, at most %u",
	       (size_t)g[0].most * big, CEIL_BYTES);
	tap_ok(g[1].most == AT_CAP_MIN, "%zu B class stays at the %u-block floor (most %u)",
	       huge, AT_CAP_MIN, g[1].most);
	tap_ok(g[2].last == AT_CAP_MAX, "%zu B class, under the ceiling's classes, grows to %u (%u)",
	       small, AT_CAP_MAX, g[2].last);
	tap_ok(start_child(argv) == 0,
	       "with HAKMEM_TCACHE_BYTES=1m a new thread starts them at %u and %u blocks", most,
	       AT_CAP_MIN);
	tap_finish();
}
