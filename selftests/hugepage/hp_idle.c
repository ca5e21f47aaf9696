// SPDX-License-Identifier: MIT
/*
 * The hugepage box and an idle thread: a thread frees a 32 MiB burst of
 * 1 KiB blocks (one in 32 kept) and waits without calling the allocator.
 * A burst shorter than a purge delay gets no advice while it runs (the
 * decay pass advises superslabs only once dense for the delay; a slower
 * burst, or a grant earned before, may have some advised, and faulted in
 * as 2 MiB pages); another thread's next calls purge the free 4 KiB
 * pages inside its live slabs. Checked: RSS falls by 16 MiB at least, and no kept
 * block lies in a mapping still advised ("hg" in /proc/self/smaps
 * VmFlags): khugepaged (max_ptes_none 511 by default) would collapse such
 * a range back into a whole resident 2 MiB page within its scan period,
 * which is what kept ~16 MiB of the burst resident before the box
 * withdrew its advice ahead of the purge. HP_IDLE_WAIT_S=n also waits n
 * seconds (past a khugepaged period) and checks that RSS stayed down.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "../lib/tap.h"
#include "../lib/proc.h"
#include "../lib/idle_burst.h"
#include "init.h"
#include "boxes/hugepage/hugepage.h"
#include "hp_thp.h"
#include "../lib/coarse_sleep.h"

enum { NB = 32 << 10 };	/* 32 MiB in the burst */
static void *b[NB], *keep[NB / IDLE_BURST_KEEP];

static unsigned now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* A large malloc/free: a slow path of this thread, which ticks the decay. */
static void tick(void)
{
	tick_len(4u << 20);
}

struct vma {
	uintptr_t lo, hi;
	int hg;			/* VmFlags has "hg" (MADV_HUGEPAGE) */
};

/* The mappings of /proc/self/smaps with their advice; returns how many. */
static unsigned read_vmas(struct vma *v, unsigned max)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			if (n == max)
				break;
			v[n].lo = lo;
			v[n].hi = hi;
			v[n].hg = 0;
			n++;
		} else if (n && !strncmp(line, "VmFlags:", 8)) {
			v[n - 1].hg = strstr(line, " hg") != NULL;
		}
	}
	fclose(f);
	return n;
}

/* Kept blocks in a mapping still advised MADV_HUGEPAGE. */
static unsigned kept_advised(void)
{
	static struct vma v[4096];
	unsigned n = read_vmas(v, 4096), i, j, bad = 0;

	for (i = 0; i < NB / IDLE_BURST_KEEP; i++) {
		uintptr_t a = (uintptr_t)keep[i];

		for (j = 0; j < n; j++)
			if (a >= v[j].lo && a < v[j].hi) {
				bad += v[j].hg;
				break;
			}
	}
	return bad;
}

int main(void)
{
	struct idle_burst ib;
	struct hak_huge_stats h0, h1;
	long before, after = 0, later;
	const char *w = getenv("HP_IDLE_WAIT_S");
	unsigned advised, ms;
	int bad, i;

	if (thp_never())
		tap_skip_all("transparent hugepages are off (\"never\") here");
	tap_plan(0);
	hak_huge_stats(&h0);
	ms = now_ms();
	if (idle_burst_start(&ib, NB, b, keep))
		tap_bail("pthread_create");
	ms = now_ms() - ms;
	hak_huge_stats(&h1);
	before = proc_status_kib("VmRSS");
	if (ms < CONFIG_HAK_PURGE_DELAY_MS)
		tap_ok(h1.advised == h0.advised,
		       "a burst of %u ms gets no advice while it runs (%zu advised, "
		       "AnonHugePages %zu KiB)", ms, h1.advised - h0.advised,
		       h1.anon_huge_bytes >> 10);
	else
		tap_skip("the burst took %u ms, past the purge delay", ms);
	tst_sleep_ms(2u * CONFIG_HAK_PURGE_DELAY_MS);
	for (i = 0; i < 4; i++) {
		tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS + 30);
		tick();
		after = proc_status_kib("VmRSS");
		if (after + 16 * 1024 < before)
			break;
	}
	advised = kept_advised();
	hak_huge_stats(&h1);
	tap_ok(after + 16 * 1024 < before,
	       "the idle thread's free pages go: RSS %ld -> %ld KiB (AnonHugePages %zu KiB)",
	       before, after, h1.anon_huge_bytes >> 10);
	tap_ok(advised == 0,
	       "no kept block lies in a range still advised MADV_HUGEPAGE (%u of %u do; "
	       "%zu withdrawn)", advised, NB / IDLE_BURST_KEEP, h1.withdrawn - h0.withdrawn);
	if (w && atoi(w) > 0) {
		for (i = 0; i < atoi(w); i++) {
			sleep(1);
			tick();
		}
		later = proc_status_kib("VmRSS");
		hak_huge_stats(&h1);
		tap_ok(later < after + 4096, "%d s later RSS is %ld KiB (AnonHugePages %zu KiB)",
		       atoi(w), later, h1.anon_huge_bytes >> 10);
	}
	bad = idle_burst_stop(&ib);
	tap_ok(bad == 0, "the kept blocks keep their contents (%d changed)", bad);
	tap_finish();
}
