// SPDX-License-Identifier: MIT
/*
 * Time-based decay and the memory limit's purge-everything (lib/purge.h).
 *
 * The tick is called from the slow paths (tcache refill and overflow,
 * large malloc/free, mid malloc/free that the L2.5 pool's thread cache
 * does not serve) with no lock held. It reads the coarse clock
 * (a vDSO load) and runs a decay pass when the next one is due: passes
 * come every quarter of the delay, so memory freed at t is purged by
 * t + 1.25 x delay if the allocator is called, or by the background purge
 * thread if it is not. A pass takes the caches' locks one at a time and
 * purges only what has been unused for the delay, so a busy cache is not
 * disturbed. The calling thread's own heap is also scanned for whole
 * 4 KiB pages of free blocks inside live slabs (the heap's slabs are
 * owner-only, so only its thread can do that).
 *
 * purge_busy makes passes exclusive without a lock: a tick that finds a
 * pass running skips it (re-entry from the background box's thread
 * creation, which may allocate, lands here too).
 */
#include <errno.h>
#include <stdint.h>
#include <asm/atomic.h>
#include "grow.h"
#include "heap.h"
#include "init.h"
#include "large.h"
#include "os.h"
#include "purge.h"
#include "superslab.h"
#include "boxes/background_purge/bgpurge.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/l25_pool/l25.h"

static int purge_busy;			/* atomic: a pass is running */
static unsigned next_ms;		/* atomic: when the next pass is due */
static unsigned limit_next_ms;		/* atomic: next purge-all near the limit */
static size_t nr_passes, nr_decayed, nr_limit_purges, nr_retries;	/* atomic */

static unsigned pass_step(unsigned delay)
{
	return delay / 4 ? delay / 4 : 1;
}

size_t __hak_purge_decay(unsigned now)
{
	unsigned delay = (unsigned)__hak_opt.purge_delay_ms;
	size_t done;

	if (!delay || arch_xchg(&purge_busy, 1))
		return 0;
	arch_store_relaxed(&next_ms, now + pass_step(delay));
	done = __hak_ss_decay(now, delay);
	done += __hak_heap_purge_idle(now, delay);
	done += __hak_large_decay(now, delay);
	done += hak_bigcache_decay(now);
	done += hak_l25_decay(now, delay);
	done += __hak_grow_decay(now, delay);
	arch_fetch_add(&nr_passes, 1UL);
	if (done)
		arch_fetch_add(&nr_decayed, done);
	arch_store_release(&purge_busy, 0);
	return done;
}

size_t __hak_purge_idle(bool *ran)
{
	unsigned now = __hak_now_ms();

	*ran = false;
	if (!__hak_opt.purge_delay_ms || !__hak_ms_due(now, arch_load_relaxed(&next_ms)))
		return 0;
	*ran = true;
	return __hak_purge_decay(now);
}

size_t __hak_purge_all(void)
{
	size_t done;

	__hak_heap_flush_self();
	__hak_heap_scavenge_pool();
	done = __hak_ss_release(true);
	done += hak_l25_release();
	done += __hak_large_release_cache();
	return done;
}

bool __hak_purge_for_retry(void)
{
	int saved = errno;
	/* the page map first: under a limit lowered since, it is most of VmSize */
	bool got = __hak_pm_fit_limit();

	got |= __hak_purge_all() != 0;

	arch_fetch_add(&nr_retries, 1UL);
	errno = saved;
	return got;
}

/*
 * The coarse clock's value at this thread's last full tick (lib/purge.h:
 * the L2.5 pool stamps the blocks going into its thread cache with it).
 */
__thread unsigned __hak_tick_ms __attribute__((tls_model("initial-exec")));

void __hak_purge_tick(void)
{
	unsigned now, delay;

	/* A mid or large request may come before any small one. */
	__hak_init();
	now = __hak_now_ms();
	delay = (unsigned)__hak_opt.purge_delay_ms;

	if (__hak_ms_due(now, arch_load_relaxed(&limit_next_ms)) &&
	    unlikely(__hak_os_take_near())) {
		/* At most once per delay (10 ms at least): a program that
		 * lives near its limit must not purge at every mapping. The
		 * time first: a flag raised meanwhile waits for the next
		 * tick that may act on it (limit_near). */
		arch_store_relaxed(&limit_next_ms, now + (delay > 10 ? delay : 10));
		arch_fetch_add(&nr_limit_purges, 1UL);
		__hak_purge_all();
	}
	/*
	 * What follows depends only on now: a second tick of this thread
	 * at the same coarse-clock value (it moves every 1-4 ms) would find
	 * the pass not due and this heap's passes done. A thread in a mid-
	 * or large-block loop ticks at every operation the thread caches do
	 * not serve; this halves what each of those ticks costs.
	 */
	if (now == __hak_tick_ms)
		return;
	__hak_tick_ms = now;
	if (delay && __hak_ms_due(now, arch_load_relaxed(&next_ms)))
		__hak_purge_decay(now);
	if (delay)
		__hak_heap_purge_pages(now, delay);	/* once per delay per heap */
	hak_bgpurge_kick();
}

/* A pass that was running in another thread at fork never ends here. */
void __hak_purge_fork_child(void)
{
	purge_busy = 0;
}

void __hak_purge_stats(struct hak_purge_stats *st)
{
	st->delay_ms = __hak_opt.purge_delay_ms;
	st->passes = arch_load_relaxed(&nr_passes);
	st->decayed_bytes = arch_load_relaxed(&nr_decayed);
	st->limit = __hak_os_limit();
	st->limit_hard = __hak_opt.memory_limit_hard;
	st->limit_purges = arch_load_relaxed(&nr_limit_purges);
	st->retries = arch_load_relaxed(&nr_retries);
}
