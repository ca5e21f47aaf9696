// SPDX-License-Identifier: MIT
/*
 * carve_down: blocks a refill carves from a slab are handed out going down
 * through memory, the highest first (lib/heap.c, the carve in the refill;
 * Documentation/design.md, "The carve's direction"). Handed out going up,
 * larson ran 10-25% slower on the bench machine at the same instructions.
 * The hardened box carves in its own random order (rising 16 wide): there
 * the test is skipped.
 *
 * In a fresh thread, 96 blocks of a class nothing else has used (448 B:
 * above the TLS prewarm's sizes) prove that
 *  - most consecutive blocks are one stride apart, the second below the
 *    first (each carve batch runs down; the step up between two batches
 *    is the only exception);
 *  - no two consecutive blocks are one stride apart going up (a carve
 *    handing out going up gives nearly all of them).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "size_class.h"
#include "boxes/hardened/hardened.h"

#define SZ	448
#define NBLK	96

static void *blk[NBLK];

static void *run(void *arg)
{
	unsigned i;

	(void)arg;
	for (i = 0; i < NBLK; i++)
		blk[i] = malloc(SZ);
	return NULL;
}

int main(void)
{
	uintptr_t stride = __hak_class_stride(__hak_class_of(SZ));
	unsigned i, down = 0, up = 0;
	pthread_t t;

	if (hak_hd_on())
		tap_skip_all("hardened: its own random carve order");
	tap_plan(2);
	if (pthread_create(&t, NULL, run, NULL) || pthread_join(t, NULL))
		tap_bail("pthread_create");
	for (i = 0; i + 1 < NBLK; i++) {
		if (!blk[i] || !blk[i + 1])
			tap_bail("malloc(%d) failed", SZ);
		if ((uintptr_t)blk[i + 1] + stride == (uintptr_t)blk[i])
			down++;
		if ((uintptr_t)blk[i] + stride == (uintptr_t)blk[i + 1])
			up++;
	}
	tap_ok(down >= (NBLK - 1) * 3 / 4,
	       "%u of %u consecutive blocks one stride down (at least %u)",
	       down, NBLK - 1, (NBLK - 1) * 3 / 4);
	tap_ok(up == 0, "%u consecutive blocks one stride up (none)", up);
	for (i = 0; i < NBLK; i++)
		free(blk[i]);
	tap_finish();
}
