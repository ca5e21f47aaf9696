// SPDX-License-Identifier: MIT
/*
 * carve_start: a class's first refill in a heap asks for about a 4 KiB
 * page of blocks, the next for the rest of one refill's worth (lib/heap.c,
 * refill_young). A first refill of half the bin carved and linked 16 KiB
 * of each class of 128 B and more, four pages made resident where a
 * starting program used a block or two: sed faulted 217 pages against
 * glibc's 128, bin_fill a quarter of them (Documentation/benchmarks.md,
 * "Process start").
 *
 * In a fresh thread (a new heap), after a first small malloc, one malloc
 * of each class below 4 KiB may fault at most 2 pages a class (its slab's
 * first page, a page more where the blocks cross one, the slab's
 * metadata): 97 faults on main, 25 with refill_young. Then the
 * same class keeps working past its young refills (blocks written, all
 * freed).
 */
#include <pthread.h>
#include <string.h>
#include "class_faults.h"

static const size_t class_sz[] = {
	32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
	448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560,
	3072, 3584,
};
#define NCLS	(sizeof(class_sz) / sizeof(class_sz[0]))
#define NMANY	2000

static long faults;
static int many_ok;

static void *run(void *arg)
{
	static void *many[NMANY];
	unsigned i;

	/* 16 B under the class size: the class itself with or without a header */
	faults = class_faults(class_sz, NCLS, 16);
	/* past the young refills: distinct blocks, all writable */
	many_ok = 1;
	for (i = 0; i < NMANY; i++) {
		if (!(many[i] = malloc(240)))
			tap_bail("malloc(240) failed");
		memset(many[i], (int)(i & 0xff), 240);
	}
	for (i = 0; i < NMANY; i++)
		if (((unsigned char *)many[i])[239] != (i & 0xff))
			many_ok = 0;
	for (i = 0; i < NMANY; i++)
		free(many[i]);
	return arg;
}

int main(void)
{
	pthread_t t;

	tap_plan(2);
	if (pthread_create(&t, NULL, run, NULL) || pthread_join(t, NULL))
		tap_bail("pthread_create");
	tap_ok(faults <= 2 * (long)NCLS,
	       "one block of each of %zu classes below 4 KiB: %ld page faults (at most %zu)",
	       NCLS, faults, 2 * NCLS);
	tap_ok(many_ok, "%d blocks of one class through its young refills hold their bytes",
	       NMANY);
	tap_finish();
}
