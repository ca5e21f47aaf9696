// SPDX-License-Identifier: MIT
/*
 * vg_target: the program memcheck.sh runs under valgrind.
 *
 *   vg_target          clean workload (TAP): small, mid and large blocks,
 *                      calloc, realloc across every kind, the aligned
 *                      family, usable size, trim, and two threads freeing
 *                      each other's blocks; everything freed;
 *   vg_target leak     a planted leak, then the clean workload: a 100-byte
 *                      block (leak_small) and a 1200 KiB block (leak_large,
 *                      a large block: above the L2.5 pool's range)
 *                      whose only pointers are dropped;
 *   vg_target uaf      a block is freed and then read (use_after_free),
 *                      then the clean workload.
 * Built statically with the box on; memcheck.sh also builds it plainly and
 * runs it with libhakmem.so preloaded.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tap.h"

/* Keeps pointers away from the compiler's misuse analysis. */
static void *volatile stash;

#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static int fill_check(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
	for (i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7))
			return 0;
	return 1;
}

#define NPASS	2000
static void *passed[NPASS];

static void *other_thread(void *arg)
{
	unsigned i, ok = 1;

	(void)arg;
	/* free the main thread's blocks (remote frees), allocate our own */
	for (i = 0; i < NPASS; i += 2)
		free(passed[i]);
	for (i = 0; i < NPASS; i += 2) {
		passed[i] = malloc(16 + i % 300);
		ok &= passed[i] != NULL;
		memset(passed[i], 0x5a, 16 + i % 300);
	}
	return (void *)(uintptr_t)ok;
}

static void clean(void)
{
	static const size_t sizes[] = { 1, 16, 24, 100, 1000, 4000, 32768,
					40000, 100000, 700000, 3 << 20 };
	unsigned char *p[NSIZES];
	unsigned i, ok;
	pthread_t t;
	void *r, *q;
	char *s;

	ok = 1;
	for (i = 0; i < NSIZES; i++) {
		p[i] = malloc(sizes[i]);
		ok &= p[i] && fill_check(p[i], sizes[i], i);
	}
	for (i = 0; i < NSIZES; i++)
		free(p[i]);
	tap_ok(ok, "malloc/free of small, mid and large blocks, every byte written and read");

	ok = 1;
	for (i = 0; i < NSIZES; i++) {
		unsigned char *c = calloc(1, sizes[i]);
		size_t j;

		for (j = 0; c && j < sizes[i]; j += 61)
			ok &= c[j] == 0;
		ok &= c != NULL;
		free(c);
	}
	tap_ok(ok, "calloc reads as zero (no uninitialised reads reported)");

	/* realloc: grow and shrink across small, mid and large, contents kept */
	s = NULL;
	ok = 1;
	for (i = 1; i <= 40; i++) {
		size_t n = (size_t)i * i * 600;

		s = realloc(s, n);
		ok &= s != NULL;
		if (!s)
			break;
		s[0] = 'h';
		s[n - 1] = 'k';
	}
	for (; s && i > 3; i -= 3) {
		s = realloc(s, (size_t)i * 50);
		ok &= s && s[0] == 'h';
	}
	free(s);
	tap_ok(ok, "realloc up to 960 KB and back down keeps the contents");

	ok = 1;
	if (posix_memalign(&r, 64, 200) == 0) {
		memset(r, 1, 200);
		free(r);
	} else {
		ok = 0;
	}
	q = aligned_alloc(4096, 5000);
	ok &= q != NULL;
	if (q)
		memset(q, 2, 5000);
	free(q);
	q = memalign(256, 100);
	ok &= q && malloc_usable_size(q) >= 100;
	if (q)
		memset(q, 3, malloc_usable_size(q));
	free(q);
	q = valloc(10);
	ok &= q != NULL;
	free(q);
	tap_ok(ok, "posix_memalign, aligned_alloc, memalign (usable size written), valloc");

	for (i = 0; i < NPASS; i++) {
		passed[i] = malloc(8 + i % 500);
		if (passed[i])
			memset(passed[i], 0x11, 8 + i % 500);
	}
	ok = pthread_create(&t, NULL, other_thread, NULL) == 0;
	if (ok) {
		void *ret;

		pthread_join(t, &ret);
		ok = ret != NULL;
	}
	for (i = 0; i < NPASS; i++)
		free(passed[i]);
	malloc_trim(0);
	tap_ok(ok, "2000 blocks freed by another thread (remote frees), trim");
}

/* Out of line, and run first, so no register still holds a pointer at exit. */
__attribute__((noinline)) static void leak(void)
{
	char *small = malloc(100);
	char *large = malloc(1200 << 10);

	if (small)
		strcpy(small, "leak_small");
	if (large)
		strcpy(large, "leak_large");
	stash = small;
	stash = large;
	stash = NULL;
}

/* Run first: the block is the first of a fresh slab, freed once. */
__attribute__((noinline)) static void use_after_free(void)
{
	char *p = malloc(200);

	if (!p)
		return;
	p[0] = 'x';
	stash = p;
	free(stash);
	p = stash;
	stash = (void *)(uintptr_t)p[0];	/* the invalid read */
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "clean";

	tap_plan(6);
	if (!strcmp(mode, "leak"))
		leak();
	else if (!strcmp(mode, "uaf"))
		use_after_free();
	tap_ok(1, "scenario \"%s\" ran", mode);
	clean();
	tap_finish();
}
