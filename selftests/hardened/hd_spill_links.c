// SPDX-License-Identifier: MIT
/*
 * hd_spill_links: a corrupted link among the blocks a full bin spills is
 * caught at that free, whichever way the spill orders its run (lib/heap.c,
 * spill_sorted, since hf20: falling or rising after its slab's list, and
 * a run already in that order left linked as it came, only cut). The
 * walk that cuts the run decodes and checks every link in it, before the
 * order is chosen, so no order can hand a bad link on. Blocks of 320 B:
 *   in order      freed in address order (the run already falling: left
 *                 as it came);
 *   reversed      freed in falling address order (already rising);
 *   carve order   freed in the order they came (the random 16-wide carve:
 *                 sorted by the spill);
 * each with the head's link overwritten (a write after free) just before
 * the free that overflows the bin, and a twin without the write.
 */
#include <stdint.h>
#include <string.h>
#include <malloc.h>
#include "tap.h"
#include "child.h"
#include "tcache.h"

#define SIZE	320
#define N	3000

enum order { IN_ORDER, REVERSED, CARVE };

struct job {
	enum order order;
	int bad;
};

static char *v[N];

static int cmp_up(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(char *const *)a, y = (uintptr_t)*(char *const *)b;

	return x < y ? -1 : x > y;
}

static void spill_run(void *arg)
{
	const struct job *j = arg;
	struct hak_tbin *b = &__hak_tc.bins[__hak_class_of(SIZE)];
	unsigned i;

	for (i = 0; i < N; i++)
		if (!(v[i] = malloc(SIZE)))
			_exit(3);
	if (j->order != CARVE)
		qsort(v, N, sizeof(v[0]), cmp_up);
	for (i = 0; i < N; i++) {
		char *p = v[j->order == REVERSED ? N - 1 - i : i];

		if (j->bad && __hak_tbin_count(b) == b->cap && b->head) {
			/* the next free overflows: its spill walks through the head's link */
			*(volatile uintptr_t *)b->head = 0x4141414141414141UL;
			free(p);
			_exit(2);	/* not caught */
		}
		free(p);
	}
	_exit(j->bad ? 4 : 0);	/* 4: the bin never filled */
}

int main(void)
{
	static const char *const names[] = { "in address order", "in falling order",
					      "in carve order" };
	struct child_result r;
	unsigned o;

	tap_plan(6);
	for (o = IN_ORDER; o <= CARVE; o++) {
		struct job j = { (enum order)o, 1 };

		child_run(spill_run, &j, &r);
		tap_ok(child_aborted(&r) && strstr(r.err, "corrupted free-list link") &&
		       strstr(r.err, "stored 0x4141414141414141") && child_err_lines(&r) == 1,
		       "blocks freed %s, a spilled link overwritten: caught at the spill",
		       names[o]);
		if (!child_aborted(&r))
			tap_diag("status %#x, stderr: %s", r.status, r.err);
		j.bad = 0;
		child_run(spill_run, &j, &r);
		tap_ok(child_exited_ok(&r) && !r.err[0], "the twin without the write, freed %s",
		       names[o]);
	}
	tap_finish();
}
