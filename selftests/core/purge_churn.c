// SPDX-License-Identifier: MIT
/*
 * purge_churn: small-block activity alone runs the decay, pages inside
 * live slabs included (issue 11 item 2; Documentation/design.md, "Giving
 * memory back"). 64 MiB of 64-256 B blocks are written, 63 of 64 freed
 * (every slab stays live), then the thread only churns small blocks: each
 * eighth of the purge delay it takes and gives back enough of them to
 * refill and flush its bins (thousands of blocks a delay), and makes no
 * large or mid call. Within a few delays the free pages must go:
 *   - the churn reached the slow path (refills grew; no large mapping);
 *   - RSS fell to under half of what it was after the frees;
 *   - the survivors kept their contents.
 * Before (dk19), the page scan took every flushed block for a teardown
 * ("freeing in bulk") and skipped the heap: a churn of more than 4096
 * blocks a delay kept all 76 MiB resident for as long as it ran.
 */
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "init.h"
#include "../lib/coarse_sleep.h"

#define TOTAL	(64u << 20)	/* bytes of small blocks written */
#define NMAX	(TOTAL / 64)
#define NCHURN	20000		/* blocks per churn round: past any bin's room */

static unsigned char *blk[NMAX];
static void *churn[NCHURN];

static size_t size_of(size_t i)
{
	return 64 + (i * 37) % 193;	/* 64..256 B */
}

static void churn_round(void)
{
	size_t i;

	for (i = 0; i < NCHURN; i++) {
		churn[i] = malloc(size_of(i * 7));
		if (!churn[i])
			tap_bail("a small malloc failed");
		((volatile unsigned char *)churn[i])[0] = 1;
	}
	for (i = 0; i < NCHURN; i++)
		free(churn[i]);
}

int main(void)
{
	struct hak_stats s0, s1;
	size_t n = 0, used = 0, i, bad = 0;
	unsigned delay, round, rounds;
	long freed, rss = 0;

	free(malloc(1));	/* the options are read */
	delay = (unsigned)__hak_opt.purge_delay_ms;
	if (!delay)
		tap_skip_all("the purge delay is 0 (decay off)");
	tap_plan(4);
	while (used < TOTAL) {
		size_t bs = size_of(n);

		blk[n] = malloc(bs);
		if (!blk[n])
			tap_bail("a small malloc failed");
		memset(blk[n], (int)(n & 0xff), bs);
		used += bs;
		n++;
	}
	for (i = 0; i < n; i++)
		if (i % 64) {
			free(blk[i]);
			blk[i] = NULL;
		}
	freed = proc_status_kib("VmRSS");
	hak_stats_get(&s0);
	/* ticks an eighth of a delay apart for up to 8 delays; stop once purged */
	rounds = 64;
	for (round = 0; round < rounds; round++) {
		churn_round();
		tst_sleep_ms(delay / 8 + 1);
		rss = proc_status_kib("VmRSS");
		if (rss < freed / 2 && round >= 8)
			break;
	}
	churn_round();
	hak_stats_get(&s1);
	tap_diag("%zu blocks of 64-256 B, 1 in 64 kept; RSS after the frees %ld KiB, "
		 "after %u churn rounds %ld KiB; refills %llu, overflows %llu",
		 n, freed, round, rss, (unsigned long long)(s1.refills - s0.refills),
		 (unsigned long long)(s1.overflows - s0.overflows));
	tap_ok(s1.refills - s0.refills >= rounds / 8 && s1.overflows > s0.overflows,
	       "the churn refilled and flushed its bins (%llu refills)",
	       (unsigned long long)(s1.refills - s0.refills));
	tap_ok(s1.large_maps == s0.large_maps, "no large block was mapped meanwhile");
	tap_ok(rss < freed / 2,
	       "free pages inside live slabs purged on small-block activity alone: "
	       "RSS %ld -> %ld KiB", freed, rss);
	for (i = 0; i < n; i += 64) {
		size_t k, bs = size_of(i);

		for (k = 0; k < bs; k++)
			if (blk[i][k] != (unsigned char)(i & 0xff)) {
				bad++;
				break;
			}
		free(blk[i]);
	}
	tap_ok(!bad, "the survivors kept their contents (%zu bad)", bad);
	tap_finish();
}
