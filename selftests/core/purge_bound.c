// SPDX-License-Identifier: MIT
/*
 * purge_bound: the dirty limit's purges teach the refault feedback too
 * (lib/purge.c, learn(); lib/superslab.c, bound_purged). One thread takes
 * 40 MiB of 8 KiB blocks, writes them, frees them all and takes them again,
 * round after round, with no pause: each free-all empties its slabs past the
 * dirty limit (HAKMEM_DIRTY_MAX, 16 MiB by default), which purges the free
 * pages down to half the limit at once, and the next take faults them back.
 * No page stays free for a purge delay, so the decay pass itself purges
 * nothing. The feedback counted only the decay pass's purges: the busy
 * passes' delay stayed at the configured one however much of the limit's
 * purges came back (rptest at 2 threads, where the learned delay also
 * widens the limit's window for young pages: Documentation/benchmarks.md,
 * "The published benchmarks' shapes again").
 *   - the rounds purged and faulted the set back (the premise);
 *   - the busy passes' delay grew past the configured one.
 */
#include "minflt.h"
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "init.h"
#include "purge.h"

#define BS	8192u
#define NB	((40u << 20) / BS)
#define ROUNDS	8

static char *blk[NB];

int main(void)
{
	struct hak_purge_stats ps;
	unsigned delay, i, r;
	long f0, faults[ROUNDS];

	free(malloc(1));	/* the options are read */
	delay = (unsigned)__hak_opt.purge_delay_ms;
	if (!delay || __hak_opt.purge_delay_max_ms <= 2 * (size_t)delay || delay > 1000)
		tap_skip_all("purge delay %u ms, cap %zu ms: no learning to test", delay,
			     __hak_opt.purge_delay_max_ms);
	if (!__hak_opt.dirty_max || __hak_opt.dirty_max > (16u << 20))
		tap_skip_all("dirty limit %zu: the set does not cross it", __hak_opt.dirty_max);
	tap_plan(2);
	for (r = 0; r < ROUNDS; r++) {
		f0 = process_minflt();
		for (i = 0; i < NB; i++) {
			blk[i] = malloc(BS);
			if (!blk[i])
				tap_bail("malloc(%u) failed", BS);
			memset(blk[i], (int)(r + i), BS);
		}
		faults[r] = process_minflt() - f0;
		for (i = 0; i < NB; i++) {
			if (blk[i][BS - 1] != (char)(r + i))
				tap_bail("block %u of round %u changed", i, r);
			free(blk[i]);
		}
	}
	__hak_purge_stats(&ps);
	for (r = 0; r < ROUNDS; r++)
		tap_diag("round %u: %ld faults", r, faults[r]);
	/* a re-take faulted back at least a quarter of the set (2,560 pages) */
	tap_ok(faults[1] >= (long)(NB * (BS / 4096)) / 4,
	       "the first re-take faulted the limit's purge back: %ld faults", faults[1]);
	tap_ok(ps.learned_ms > delay,
	       "the busy passes' delay grew: %zu ms (configured %u; %zu up, %zu down)",
	       ps.learned_ms, delay, ps.learn_up, ps.learn_down);
	tap_finish();
}
