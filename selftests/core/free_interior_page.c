// SPDX-License-Identifier: MIT
/*
 * free_interior_page: free of a pointer a multiple of 4 KiB inside a block
 * of a class whose stride has a power-of-two factor above 4 KiB (8, 16,
 * 24 and 32 KiB) ends in abort() with one line naming that pointer, as
 * every other interior pointer of a power-of-two class does
 * (Documentation/bad-input.md). Before rv36 the boundary mask stopped at
 * 4 KiB: free(p + 4096) of an 8 KiB block went into the cache as a block
 * and was handed out again overlapping p. The mask is exact because every
 * block of those classes is aligned to its stride's power of two (up to
 * 32 KiB; a superslab's first slab starts that far in, lib/superslab.h):
 * checked on 300 blocks of each class. A clean twin frees the block.
 *
 * Skipped with the hardened box, whose slab guards need the blocks of
 * classes from 10 KiB to end at the guard (the mask stays at 4 KiB: not
 * caught there, as documented), and with the header box for the
 * alignment (its check word catches the interior pointer anyway).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "tap.h"
#include "child.h"
#include "tcache.h"

static const size_t sizes[] = { 8192, 16384, 24576, 32768 };
static uintptr_t *shared;

struct job {
	size_t n, off;
	int bad;
};

static void run_job(void *arg)
{
	const struct job *j = arg;
	char *p = malloc(j->n);

	if (!p)
		_exit(3);
	memset(p, 0x5a, j->n);
	*shared = (uintptr_t)(p + j->off);
	free(j->bad ? p + j->off : p);
	_exit(0);
}

int main(void)
{
	static void *v[300];
	struct child_result r;
	unsigned s, i;

	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	if (IS_ENABLED(CONFIG_HAK_HARDENED))
		tap_skip_all("the hardened box keeps the 4 KiB mask (slab guards)");
	tap_plan(4 * ARRAY_SIZE(sizes));
	for (s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t n = sizes[s], g = n & -n, bad = 0;
		const size_t offs[2] = { 4096, n - 4096 };

		for (i = 0; i < ARRAY_SIZE(v); i++) {
			v[i] = malloc(n);
			if (!v[i])
				tap_bail("malloc(%zu): %s", n, strerror(errno));
			if (!HAK_HDR_SIZE && (uintptr_t)v[i] % g)
				bad++;
		}
		for (i = 0; i < ARRAY_SIZE(v); i++)
			free(v[i]);
		tap_ok(!bad, "%zu B: %u blocks aligned to %zu (%zu not)", n, i, g, bad);
		for (i = 0; i < 2; i++) {
			struct job j = { n, offs[i], 1 };
			char addr[32];
			int ok;

			child_run(run_job, &j, &r);
			ok = child_reported(&r, (void *)*shared, addr);
			tap_ok(ok, "%zu B: free(p + %zu) aborts with one line naming %s", n, offs[i], addr);
			if (!ok)
				tap_diag("status %#x, stderr: %s", r.status, r.err);
		}
		{
			struct job j = { n, 0, 0 };

			child_run(run_job, &j, &r);
			tap_ok(child_exited_ok(&r) && !r.err[0], "%zu B: clean twin runs", n);
		}
	}
	tap_finish();
}
