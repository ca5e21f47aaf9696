// SPDX-License-Identifier: MIT
/*
 * usable_interior: malloc_usable_size and realloc of a pointer inside a
 * small block, at an offset that the free fast path's boundary mask lets
 * through (the largest power of two dividing the block size: p + 16 in a
 * 48-byte block, p + 1024 in a 3,072-byte one), end in abort() with one
 * line naming that pointer, in every variant. Before, both answered as
 * for the block: the usable size was the whole class size (a program
 * writing that much from p + 16 wrote past the block) and a realloc that
 * fit returned the interior pointer as the block. A clean twin asks the
 * same of the block itself and exits normally.
 *
 * The same two calls on a small block already freed, in the thread's
 * cache or spilled from it to its slab's free list, end the same way (the
 * free mark, confirmed on those lists). Before (rv31) the default build
 * answered as for a live block: the usable size, and a realloc that fit
 * returned the freed block, which the cache handed out again to the next
 * malloc: two owners of one block.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "tap.h"
#include "child.h"
#include <hak/compiler.h>

/* Class sizes that are not powers of two (lib/size_class.c). */
static const size_t sizes[] = { 48, 80, 96, 112, 160, 320, 1280, 3072, 5120, 24576 };

static uintptr_t *shared;	/* the pointer asked about, for the parent */

struct job {
	size_t n;
	int realloc_it;
	int bad;
};

static void run_job(void *arg)
{
	const struct job *j = arg;
	char *p = malloc(j->n), *q;
	size_t g = j->n & -j->n;	/* the mask's granule */

	if (!p)
		_exit(3);
	memset(p, 0x5a, j->n);
	q = j->bad ? p + g : p;
	*shared = (uintptr_t)q;
	if (j->realloc_it) {
		/* fits in the block and wastes less than half: stays put */
		char *r = realloc(q, j->n / 2 + 8);

		if (r != q)
			_exit(4);
	} else if (malloc_usable_size(q) < j->n) {
		_exit(5);
	}
	free(p);
}

/* Small classes for the freed blocks: the smallest, powers of two, not. */
static const size_t freed_sizes[] = { 16, 48, 64, 4096, 24576 };

struct freed_job {
	size_t n;
	int realloc_it;
	int spill;	/* spilled from the cache to the slab's free list */
};

static void run_freed(void *arg)
{
	const struct freed_job *j = arg;
	unsigned i, k = 600, m = 31;
	void **v = NULL;
	char *p;

	if (j->spill) {
		/*
		 * p freed into a full bin, then the frees that fill it once
		 * more: the overflow among them spills the newest, p too.
		 */
		v = mmap(NULL, (k + m) * sizeof(void *), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (v == MAP_FAILED)
			_exit(3);
		for (i = 0; i < k + m; i++)
			v[i] = malloc(j->n);
	}
	p = malloc(j->n);
	if (!p)
		_exit(3);
	memset(p, 0x5a, j->n);
	*shared = (uintptr_t)p;
	if (j->spill)
		for (i = 0; i < k; i++)
			free(v[i]);
	free(p);
	if (j->spill)
		for (i = k; i < k + m; i++)
			free(v[i]);
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	if (j->realloc_it) {
		char *r = realloc(p, j->n / 2 + 8);

		_exit(r == p ? 6 : 7);
	}
	_exit(malloc_usable_size(p) ? 5 : 8);
}

int main(void)
{
	struct child_result r;
	unsigned i, k;

	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	tap_plan(4 * ARRAY_SIZE(sizes) + 4 * ARRAY_SIZE(freed_sizes));
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (k = 0; k < 2; k++) {
			struct job j = { sizes[i], (int)k, 1 };
			const char *what = k ? "realloc" : "malloc_usable_size";
			char addr[32];
			int ok;

			child_run(run_job, &j, &r);
			ok = child_reported(&r, (void *)*shared, addr);
			tap_ok(ok, "%s of p + %zu inside a %zu B block: abort, one line naming %s",
			       what, sizes[i] & -sizes[i], sizes[i], addr);
			if (!ok)
				tap_diag("status %#x, stderr: %s", r.status, r.err);

			j.bad = 0;
			child_run(run_job, &j, &r);
			tap_ok(child_exited_ok(&r) && !r.err[0], "%s of a %zu B block itself: clean",
			       what, sizes[i]);
			if (!child_exited_ok(&r) || r.err[0])
				tap_diag("status %#x, stderr: %s", r.status, r.err);
		}
	}
	for (i = 0; i < ARRAY_SIZE(freed_sizes); i++) {
		for (k = 0; k < 4; k++) {
			struct freed_job j = { freed_sizes[i], (int)(k & 1), (int)(k >> 1) };
			char addr[32];
			int ok;

			child_run(run_freed, &j, &r);
			ok = child_reported(&r, (void *)*shared, addr);
			tap_ok(ok, "%s of a freed %zu B block (%s): abort, one line naming %s",
			       j.realloc_it ? "realloc" : "malloc_usable_size", j.n,
			       j.spill ? "in its slab's free list" : "in the thread cache", addr);
			if (!ok)
				tap_diag("status %#x, stderr: %s", r.status, r.err);
		}
	}
	tap_finish();
}
