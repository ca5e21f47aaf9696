// SPDX-License-Identifier: MIT
/*
 * errno_churn: a success never changes errno, over a long random mix of
 * calls in every size range.
 *
 * 512 slots, each op picks one and replaces its block: malloc, realloc,
 * calloc, posix_memalign (16 B to 8 KiB alignment) or free, of sizes from
 * 0 to 1 KiB (half the ops), 64 KiB, 1 MiB, 16 MiB and 32-48 MiB (1 in
 * 100); malloc_trim every 5000 ops. errno is EDOM before each op and must
 * still be EDOM after it when the op succeeded (a failure is allowed only
 * as NULL + ENOMEM and is counted, not expected: nothing limits memory).
 * One test point per function.
 *
 * The large sizes are where the cache of freed mappings first tries to
 * grow a shorter cached block in place (lib/large.c grow_shorter): a
 * refused mremap (ENOMEM) or a refused fixed mapping below it (EEXIST)
 * was left in errno when the block was then mapped fresh.
 * Also built against the C library's malloc; it passes there too.
 */
#include "core_test.h"

#define SENTINEL_ERRNO	EDOM

enum { OP_MALLOC, OP_REALLOC, OP_CALLOC, OP_MEMALIGN, OP_FREE, OP_TRIM, NOP };

static const char *const op_name[NOP] = {
	"malloc", "realloc", "calloc", "posix_memalign", "free", "malloc_trim",
};

/* Through volatile pointers: gcc may assume its builtins keep errno. */
static void *(*volatile const v_malloc)(size_t) = malloc;
static void *(*volatile const v_calloc)(size_t, size_t) = calloc;
static void *(*volatile const v_realloc)(void *, size_t) = realloc;
static int (*volatile const v_pm)(void **, size_t, size_t) = posix_memalign;
static void (*volatile const v_free)(void *) = free;
static int (*volatile const v_trim)(size_t) = malloc_trim;

#define NSLOT	512

static void *slot[NSLOT];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t rnd_size(void)
{
	unsigned r = (unsigned)(rnd() % 100);

	if (r < 50)
		return rnd() % 1024;
	if (r < 75)
		return rnd() % 65536;
	if (r < 90)
		return rnd() % (1 << 20);
	if (r < 99)
		return rnd() % (16 << 20);
	return ((size_t)32 << 20) + rnd() % (16 << 20);
}

/* Touch the first page and the last byte, so that the pages are in use. */
static void touch(void *p, size_t n)
{
	if (p && n) {
		memset(p, 0x5a, n < 4096 ? n : 4096);
		((volatile char *)p)[n - 1] = 1;
	}
}

int main(void)
{
	long ops = ct_quick() ? 10000 : 50000;
	long bad[NOP] = { 0 }, runs[NOP] = { 0 }, enomem = 0;

	tap_plan(NOP);
	for (long i = 0; i < ops; i++) {
		unsigned k = (unsigned)(rnd() % NSLOT), op = (unsigned)(rnd() % 8);
		size_t n = rnd_size();
		void *p = NULL;
		int ok = 1, w;

		if (i % 5000 == 4999)
			op = 8;
		/* the free of the old block first: only the new call is watched */
		if (op != 3 && op != 4 && op != 7 && op < 8) {
			v_free(slot[k]);
			slot[k] = NULL;
		}
		errno = SENTINEL_ERRNO;
		switch (op) {
		case 0: case 1: case 2:
			w = OP_MALLOC;
			p = v_malloc(n);
			ok = p != NULL;
			break;
		case 3: case 4:
			w = OP_REALLOC;
			p = v_realloc(slot[k], n);
			ok = p != NULL || n == 0;
			if (ok)
				slot[k] = NULL;
			break;
		case 5:
			w = OP_CALLOC;
			p = v_calloc(1, n);
			ok = p != NULL;
			break;
		case 6:
			w = OP_MEMALIGN;
			ok = v_pm(&p, (size_t)16 << (rnd() % 10), n) == 0;
			break;
		case 7:
			w = OP_FREE;
			v_free(slot[k]);
			slot[k] = NULL;
			break;
		default:
			w = OP_TRIM;
			v_trim(0);
			break;
		}
		runs[w]++;
		if (!ok) {
			if (errno != ENOMEM && bad[w]++ < 3)
				tap_diag("op %ld: %s(%zu) failed with errno %d", i, op_name[w], n,
					 errno);
			enomem++;
			continue;
		}
		if (errno != SENTINEL_ERRNO && bad[w]++ < 3)
			tap_diag("op %ld: %s(%zu) succeeded with errno %d", i, op_name[w], n, errno);
		if (p) {
			touch(p, n);
			slot[k] = p;
		}
	}
	for (unsigned k = 0; k < NSLOT; k++)
		v_free(slot[k]);
	if (enomem)
		tap_diag("%ld calls failed with ENOMEM", enomem);
	for (int w = 0; w < NOP; w++)
		tap_ok(!bad[w], "%ld calls of %s: errno kept by every success (%ld changed it)",
		       runs[w], op_name[w], bad[w]);
	tap_finish();
}
