// SPDX-License-Identifier: MIT
/*
 * The hugepage box: the superslabs of a heap of small blocks are advised
 * MADV_HUGEPAGE by the decay pass once dense for a purge delay, none by
 * the allocation path; a small heap (under 5 superslabs) is not
 * advised, dense or not; with
 * HAKMEM_HUGEPAGE_COLLAPSE on, the decay pass collapses a superslab that
 * has stayed dense and advised for the proof time (or counts a failure
 * and backs off), never more than one per pass; freeing everything
 * withdraws the advice (MADV_NOHUGEPAGE) and malloc_trim gives the
 * hugepages back. (Map-time advice, earned by a heap that stays:
 * hp_earn.)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "../lib/tap.h"
#include "init.h"
#include "purge.h"
#include "boxes/hugepage/hugepage.h"
#include "hp_thp.h"
#include "../lib/coarse_sleep.h"

#define NB	(1u << 20)	/* 1 Mi blocks of 64 B: 64 MiB */

static size_t passes(void)
{
	struct hak_purge_stats st;

	__hak_purge_stats(&st);
	return st.passes;
}

/* A large malloc/free: a slow path of this thread, which ticks the decay. */
static void tick(void)
{
	tick_len(1u << 20);
}

/* Ticks for ms. */
static void tick_for(unsigned ms)
{
	unsigned i;

	for (i = 0; i < ms; i += 30) {
		tst_sleep_ms(30);
		tick();
	}
}

int main(void)
{
	static void *b[NB];
	struct hak_huge_stats a, z;
	size_t np;
	unsigned i;

	if (thp_never())
		tap_skip_all("transparent hugepages are off (\"never\") here");
	thp_exclude(b, sizeof(b));
	tap_plan(0);
	a = hs();
	for (i = 0; i < 1000; i++)
		b[i] = malloc(64);
	tap_ok(hs().advised == a.advised, "a small heap is not advised (%zu advised)", hs().advised);
	/* 6 MiB: its superslabs are dense, but fewer than 5 of them fit the TLB's reach. */
	for (i = 1000; i < NB / 11; i++) {
		b[i] = malloc(64);
		memset(b[i], 1, 64);
	}
	tick_for(CONFIG_HAK_PURGE_DELAY_MS + 200);
	tap_ok(hs().advised == a.advised,
	       "6 MiB of 64 B blocks, dense for a purge delay but under 5 superslabs: "
	       "not advised (%zu advised)", hs().advised);
	for (; i < NB; i++) {
		b[i] = malloc(64);
		memset(b[i], 1, 64);
	}
	/*
	 * Advice comes from the decay pass once a superslab has stayed dense
	 * for a purge delay; a fill slower than that (a loaded machine) gets
	 * some before its end.
	 */
	tick_for(CONFIG_HAK_PURGE_DELAY_MS + 200);
	z = hs();
	tap_ok(z.advised >= 20, "64 MiB of small blocks, dense for a purge delay: "
	       "%zu superslabs advised", z.advised);

	/* Collapse: the superslabs were 4 KiB-faulted before they were dense. */
	tick_for(HAK_HUGE_PROVE_X * CONFIG_HAK_PURGE_DELAY_MS + 100);	/* dense long enough */
	/*
	 * Passes also run in the background purge thread and at every slow
	 * path whose pass is due, so a loaded machine runs more of them than
	 * the ticks here: the bound is the passes counted, plus one in flight
	 * at each end of the window (a pass counts itself after collapsing).
	 */
	np = passes();
	__hak_opt.hugepage_collapse = 1;
	for (i = 0; i < 6; i++) {
		tst_sleep_ms(30);
		tick();
	}
	__hak_opt.hugepage_collapse = 0;
	z = hs();
	np = passes() - np + 2;
	tap_ok(z.collapses + z.collapse_fails >= 1 &&
	       z.collapses + z.collapse_fails <= np,
	       "HAKMEM_HUGEPAGE_COLLAPSE: %zu collapsed, %zu failed, at most one per pass (%zu)",
	       z.collapses, z.collapse_fails, np);

	for (i = 0; i < NB; i++)
		free(b[i]);
	malloc_trim(0);
	z = hs();
	tap_ok(z.withdrawn >= 1, "freed: advice withdrawn from %zu superslabs", z.withdrawn);
	tap_ok(z.anon_huge_bytes < (8u << 20), "after malloc_trim AnonHugePages is %zu KiB",
	       z.anon_huge_bytes >> 10);
	tap_finish();
}
