// SPDX-License-Identifier: MIT
/*
 * aligned_mark: no live block carries the free mark because an aligned
 * block was freed before it, and a free that carries the mark all the same
 * (a live block holding that value: the owner confirms it) does not crash
 * while the freeing thread holds a run of that class.
 *
 * The free of an aligned block cut inside its slot (the header's delta
 * above 0) goes through the class-less bin, whose push writes the free
 * mark into the block's second word: inside the slot's data. It stayed
 * there, and the next block cut at the same offset (memalign's program
 * need not write it) or the block realloc copied it into was live with
 * the mark, so its free was taken for a possible double free. The owner's
 * confirmation then walked this thread's run of that class one block past
 * its count, into the tail's unlinked first word (program data): SEGV, or
 * the hardened box's "corrupted free-list link" abort (the reviewer's
 * 8-thread stress program, /work/notes/rev9b-t/stress.c, on every run).
 *
 * 1. Aligned blocks of alignments 32..256 and sizes 1..40 are taken, freed
 *    and taken again (the bins are LIFO: the same slots, the same cuts):
 *    no block cut inside its slot may hold the mark, nor the block a
 *    realloc of it moves to.
 * 2. A thread holds a run of the main thread's 64-byte block (its first
 *    word 0xa5 bytes, as the program left it) and frees a live 64-byte
 *    block of its own that holds the mark's value: the free confirms it
 *    and returns; the block is served again.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <hakmem/hakmem.h>
#include "tap.h"
#include "size_class.h"
#include "superslab.h"
#include "boxes/header_classidx/header.h"

#define BATCH	32

static unsigned char *victim;	/* the main thread's block, freed by the thread */
static int run_ok;

static void *run_thread(void *arg)
{
	uintptr_t *y;

	(void)arg;
	hak_free(hak_malloc(64));	/* a heap of its own */
	hak_free(victim);		/* another heap's, owner busy: into a run */
	y = hak_malloc(64);
	if (!y)
		return NULL;
	memset(y, 0x5a, 64);
	y[1] = __hak_free_key();	/* a live block holding the mark's value */
	hak_free(y);			/* confirmed by the owner (this thread) */
	y = hak_malloc(64);
	run_ok = y != NULL;
	hak_free(y);
	return NULL;
}

int main(void)
{
	static const size_t sizes[] = { 1, 8, 24, 40 };
	uintptr_t key;
	unsigned k, s, cut_in = 0, marked = 0, moved_marked = 0, nulls = 0;
	size_t align;
	pthread_t t;
	void *v[BATCH];

	tap_plan(3);
	hak_free(hak_malloc(1));	/* the free mark is set at the first superslab */
	key = __hak_free_key();

	for (align = 32; align <= 256; align *= 2) {
		for (s = 0; s < ARRAY_SIZE(sizes); s++) {
			for (k = 0; k < BATCH; k++) {
				v[k] = hak_memalign(align, sizes[s]);
				if (v[k])
					memset(v[k], 0x11, sizes[s]);
			}
			for (k = 0; k < BATCH; k++)
				hak_free(v[k]);
			for (k = 0; k < BATCH; k++) {
				uintptr_t *p = hak_memalign(align, sizes[s]);
				void *q;

				if (!p) {
					nulls++;
					continue;
				}
				if (hak_hdr_class(p) != HAK_HDR_ALIGNED || hak_hdr_of(p)->delta == 0) {
					hak_free(p);
					continue;
				}
				cut_in++;
				/* not written since taken: what the slot held */
				if (p[1] == key)
					marked++;
				q = hak_realloc(p, 2000);	/* moves: copies the mark word */
				if (!q) {
					nulls++;
					hak_free(p);
					continue;
				}
				if (((uintptr_t *)q)[1] == key)
					moved_marked++;
				hak_free(q);
			}
		}
	}
	tap_ok(cut_in > 0 && !nulls, "%u aligned blocks cut inside their slot (%u NULL)",
	       cut_in, nulls);
	tap_ok(!marked && !moved_marked,
	       "none holds the free mark when taken again (%u did), nor its realloc copy (%u did)",
	       marked, moved_marked);

	victim = hak_malloc(64);
	if (!victim)
		tap_bail("malloc failed");
	memset(victim, 0xa5, 64);
	if (pthread_create(&t, NULL, run_thread, NULL) || pthread_join(t, NULL))
		tap_bail("pthread_create failed");
	tap_ok(run_ok, "a live block holding the mark's value frees while a run of its class "
	       "is held (the run's tail not followed)");
	tap_finish();
}
