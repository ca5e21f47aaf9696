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
 *
 * Refault feedback (learn()): a purge the program faults back soon was a
 * mistake (threads that come back to the same working set after a gap a
 * little longer than the delay pay a madvise and a fault per page each
 * time). A pass that purges opens a window of LEARN_WINDOW base delays;
 * the process's minor faults in it, less the growth of the mapped bytes'
 * high-water mark (first touches of new memory), are
 * compared at each pass with the bytes the busy passes purged in it:
 * once half or more came back, the delay the busy passes use doubles (up
 * to HAKMEM_PURGE_DELAY_MAX_MS) and the window closes; if under an eighth
 * came back by its end, it halves back toward HAKMEM_PURGE_DELAY_MS.
 * A pass when no slow path has run in the whole process for a base delay
 * (active_ms: an idle program), be it the first tick after the idle spell
 * or the background thread's, uses the base delay and is not watched, so
 * an idle program gives memory back as configured. Unless the program
 * computed through that gap out of its thread caches: the tick's thread
 * (tick_mark), or for the background thread every other thread (bg_mark),
 * was on a CPU or waiting for one half the time or more (schedstat, which
 * a loaded machine does not dilute): then the pass is a busy one. The
 * background thread's passes while the program is busy use the learned
 * delay (at the base delay they purged the working sets of threads
 * between requests).
 * A purge-all (malloc_trim, the memory limit, a failed allocation's
 * retry) gives back what is then faulted in again by design: it drops the
 * open window, and none opens for LEARN_WINDOW base delays after it.
 * The window's state is written only by the pass (under purge_busy).
 * The learned delay holds only while the resident set stays within 1/32
 * of its highest at any earlier busy pass (past_mark, /proc/self/statm
 * read at those passes while the learned delay is longer than the base):
 * a pass that finds it past that uses the base delay, since what the
 * longer delay keeps would sit on top of the program's new peak.
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

static int purge_busy __boot_hot;			/* atomic: a pass is running */
static unsigned next_ms __boot_hot;		/* atomic: when the next pass is due */
static unsigned limit_next_ms __boot_hot;		/* atomic: next purge-all near the limit */
static unsigned cg_next_ms __boot_hot;		/* atomic: next read of the cgroup's usage */
static size_t nr_passes __boot_hot, nr_decayed, nr_limit_purges, nr_retries;	/* atomic */

#define LEARN_WINDOW	4		/* base delays a purge is watched */
#define LEARN_MIN	(1UL << 20)	/* bytes a window must purge to count */

static unsigned learned_ms __boot_once;		/* atomic: the busy passes' delay (0: base) */
static unsigned active_ms __boot_hot;		/* atomic: the last full tick (a slow path) */
static size_t map_hwm __boot_hot;			/* under purge_busy: mapped bytes' peak at passes */
static unsigned quiet_ms __boot_hot;		/* atomic: no window opens before (0: none) */
static int watch_drop __boot_hot;			/* atomic: a purge-all came: drop the window */
static struct {
	unsigned end;			/* when it is judged; 0: no window open */
	size_t purged;			/* bytes the busy passes purged in it */
	size_t faults;			/* minor faults at its start */
	size_t hwm;			/* map_hwm at its start */
	size_t peak;			/* the resident set's peak then (0: unknown) */
} watch __boot_hot;			/* under purge_busy */
static size_t nr_learn_up, nr_learn_down;	/* atomic */

static unsigned pass_step(unsigned delay)
{
	return delay / 4 ? delay / 4 : 1;
}

/* A window's length: a deadline further ahead would read as due at once. */
static unsigned window_ms(unsigned base)
{
	return base < HAK_MS_AHEAD_MAX / LEARN_WINDOW ? LEARN_WINDOW * base : HAK_MS_AHEAD_MAX;
}

/* The delay the busy passes (and the ticks' heap scans) use. */
static unsigned busy_delay(unsigned base)
{
	unsigned l = arch_load_relaxed(&learned_ms);

	return l > base ? l : base;
}

/*
 * The open window's verdict at a pass: true when it is closed (half of
 * what it purged came back: at once; less: at its end).
 */
static bool judge(unsigned now, unsigned base, unsigned cap)
{
	size_t peak, faults = __hak_os_minor_faults(&peak);
	size_t faulted = faults > watch.faults ? (faults - watch.faults) * HAK_OS_PAGE : 0;
	size_t fresh = map_hwm - watch.hwm;
	unsigned cur = busy_delay(base), to = cur;
	bool end = __hak_ms_due(now, watch.end);

	/*
	 * First touches are at most the growth of the mapped bytes' peak,
	 * and at most the growth of the resident set's: a fault that leaves
	 * the resident set under its peak took the room a purge made.
	 */
	if (peak && watch.peak && peak - watch.peak < fresh)
		fresh = peak - watch.peak;
	faulted = faulted > fresh ? faulted - fresh : 0;
	if (watch.purged < LEARN_MIN)
		return end;		/* too little to tell */
	if (faulted >= watch.purged / 2)
		to = cur < cap / 2 ? cur * 2 : cap;
	else if (!end)
		return false;
	else if (faulted < watch.purged / 8)
		to = cur / 2 > base ? cur / 2 : base;
	if (to != cur) {
		arch_store_relaxed(&learned_ms, to);
		arch_fetch_add(to > cur ? &nr_learn_up : &nr_learn_down, 1UL);
	}
	return true;
}

/* After a busy pass that purged done bytes (under purge_busy). */
static void learn(unsigned now, unsigned base, size_t done)
{
	unsigned cap = (unsigned)__hak_opt.purge_delay_max_ms, quiet;
	size_t mapped = __hak_os_mapped();

	if (cap <= base)
		return;
	if (mapped > map_hwm)
		map_hwm = mapped;
	if (arch_xchg(&watch_drop, 0)) {
		watch.end = 0;		/* a purge-all came since it opened */
	} else if (watch.end) {
		watch.purged += done;
		if (!judge(now, base, cap))
			return;
		watch.end = 0;
	}
	quiet = arch_load_relaxed(&quiet_ms);
	if (!done || (quiet && !__hak_ms_due(now, quiet)))
		return;
	watch.end = now + window_ms(base);
	watch.end += !watch.end;
	watch.purged = done;
	watch.faults = __hak_os_minor_faults(&watch.peak);
	watch.hwm = map_hwm;
}

/*
 * Is the program idle at now: no slow path in any thread for a base delay
 * since last (active_ms as read before this tick stamped it)?
 */
static bool idle_since(unsigned now, unsigned last, unsigned base)
{
	return last && __hak_ms_age(now, last) >= base;
}

static size_t rss_mark;			/* under purge_busy: the resident set's peak at passes */

/*
 * Is the resident set past its highest at any earlier pass (by more than
 * 1/32)? Then the learned delay is not worth its memory: it keeps caches
 * resident to save refaults, and on top of new growth every byte it keeps
 * raises the program's peak. Under purge_busy.
 */
static bool past_mark(void)
{
	size_t rss = __hak_rss(), mark = rss_mark;

	if (rss > mark)
		rss_mark = rss;
	return mark && rss > mark + mark / 32;
}

/*
 * Computing or sleeping? A gap with no slow path is not idleness when the
 * program computed through it out of its thread caches. A mark is a
 * reading of time on a CPU plus time waiting for one (__hak_os_busy_*):
 * a thread that computes accumulates about the time elapsed, whatever
 * the load, and one that sleeps nothing. Read only while learning is on
 * (otherwise idle and busy passes use the same delay).
 */
struct busy_mark {
	uint64_t ns;			/* the reading */
	unsigned ms;			/* when (__hak_now_ms) */
	int src;			/* HAK_OS_BUSY_*; NONE: no mark */
};
/*
 * This thread's, at most half a base delay old at each of its full ticks
 * but those of its first half delay (a short-lived thread reads nothing).
 */
static __thread struct busy_mark tick_mark __attribute__((tls_model("initial-exec")));
static struct busy_mark bg_mark;	/* the other threads', at the background passes */

static bool learning(unsigned base)
{
	return (unsigned)__hak_opt.purge_delay_max_ms > base;
}

/*
 * From mark *m to a new one (which replaces it): busy half the time or
 * more? A gap is at least a base delay and the old mark at most half a
 * base delay older: a thread that slept through the gap reads a third at
 * most, one that computed through it two thirds at least.
 */
static bool busy_share(struct busy_mark *m, unsigned now, uint64_t ns, int src)
{
	struct busy_mark old = *m;
	unsigned age = __hak_ms_age(now, old.ms);

	*m = (struct busy_mark){ ns, now, src };
	if (!src || src != old.src || !age || ns < old.ns)
		return false;
	return (ns - old.ns) * 2 >= (uint64_t)age * 1000000u;
}

/* The tick's: did this thread compute through the gap? */
static bool self_computed(unsigned now)
{
	uint64_t ns = 0;
	int src = __hak_os_busy_self(&ns);

	return busy_share(&tick_mark, now, ns, src);
}

/* A pass at now; idle: the program is idle (base delay, not watched). */
static size_t decay_pass(unsigned now, bool idle)
{
	unsigned base = (unsigned)__hak_opt.purge_delay_ms, delay;
	size_t done, bound;

	if (!base || arch_xchg(&purge_busy, 1))
		return 0;
	bound = __hak_ss_take_bound_purged();
	arch_store_relaxed(&next_ms, now + pass_step(base));
	delay = idle ? base : busy_delay(base);
	if (delay > base && past_mark())
		delay = base;
	done = __hak_ss_decay(now, delay);
	done += __hak_heap_purge_idle(now, delay);
	done += __hak_large_decay(now, delay);
	done += hak_bigcache_decay(now, delay);
	done += hak_l25_decay(now, delay);
	done += __hak_grow_decay(now, delay);
	if (!idle)
		learn(now, base, done + bound);
	arch_fetch_add(&nr_passes, 1UL);
	if (done)
		arch_fetch_add(&nr_decayed, done);
	arch_store_release(&purge_busy, 0);
	return done;
}

size_t __hak_purge_decay(unsigned now)
{
	unsigned base = (unsigned)__hak_opt.purge_delay_ms;

	return decay_pass(now, idle_since(now, arch_load_relaxed(&active_ms), base));
}

size_t __hak_purge_idle(bool *ran)
{
	unsigned now = __hak_now_ms(), base;
	bool idle;

	*ran = false;
	if (!__hak_opt.purge_delay_ms || !__hak_ms_due(now, arch_load_relaxed(&next_ms)))
		return 0;
	*ran = true;
	base = (unsigned)__hak_opt.purge_delay_ms;
	idle = idle_since(now, arch_load_relaxed(&active_ms), base);
	if (learning(base)) {	/* the other threads computed since the last pass? */
		uint64_t ns = 0;
		int src = __hak_os_busy_others(&ns);

		if (busy_share(&bg_mark, now, ns, src))
			idle = false;
	}
	return decay_pass(now, idle);
}

/* Other threads' mid-size blocks cached within spare_ms stay (l25.h). */
static size_t purge_every_cache(unsigned spare_ms)
{
	unsigned base = (unsigned)__hak_opt.purge_delay_ms;
	size_t done;

	arch_store_relaxed(&quiet_ms, __hak_now_ms() + window_ms(base));
	arch_store_relaxed(&watch_drop, 1);
	__hak_heap_flush_self();
	__hak_heap_scavenge_pool();
	done = __hak_ss_release(true);
	done += hak_l25_release(spare_ms);
	done += __hak_large_release_cache();
	return done;
}

size_t __hak_purge_all(void)
{
	return purge_every_cache(0);
}

size_t __hak_purge_trim(void)
{
	return purge_every_cache((unsigned)__hak_opt.purge_delay_ms);
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
 * Is the cgroup near the limit? Its usage is read every quarter of the
 * delay (10 ms at least), by the one tick that moves cg_next_ms: hakmem's
 * own mappings, which the OS layer counts against the limit, may be a
 * small share of what the kernel holds against it (ml34).
 */
static bool cgroup_near_due(unsigned now, unsigned delay)
{
	unsigned next = arch_load_relaxed(&cg_next_ms);

	/*
	 * The cgroup's limit is read (lib/limit.c) a delay into the process's
	 * life (now counts from its first clock reading, at start-up; a fork
	 * child's from its fork) or sooner past HAK_LIMIT_LAZY_BYTES mapped:
	 * a short process never reads it.
	 */
	if (unlikely(__hak_limit_waits(now, delay)))
		return false;
	if (!__hak_ms_due(now, next) ||
	    arch_cmpxchg(&cg_next_ms, next, now + (delay / 4 > 10 ? delay / 4 : 10)) != next)
		return false;
	return __hak_cgroup_near();
}

/*
 * The coarse clock's value at this thread's last full tick (lib/purge.h:
 * the L2.5 pool stamps the blocks going into its thread cache with it).
 */
__thread unsigned __hak_tick_ms __attribute__((tls_model("initial-exec")));

void __hak_purge_tick(void)
{
	unsigned now, delay, last;

	/* A mid or large request may come before any small one. */
	__hak_init();
	now = __hak_now_ms();
	delay = (unsigned)__hak_opt.purge_delay_ms;

	if (__hak_ms_due(now, arch_load_relaxed(&limit_next_ms)) &&
	    unlikely(__hak_os_take_near() || cgroup_near_due(now, delay))) {
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
	last = arch_load_relaxed(&active_ms);
	if (last != now)	/* another thread may have stamped this ms */
		arch_store_relaxed(&active_ms, now);
	if (delay && __hak_ms_due(now, arch_load_relaxed(&next_ms))) {
		bool idle = idle_since(now, last, delay);

		if (idle && learning(delay))
			idle = !self_computed(now);
		decay_pass(now, idle);
	}
	if (delay && learning(delay)) {
		if (!tick_mark.ms)	/* a new thread: its first reading half a delay on */
			tick_mark.ms = now;
		else if (__hak_ms_age(now, tick_mark.ms) > delay / 2)
			(void)self_computed(now);	/* a fresh mark */
	}
	if (delay)	/* once per delay per heap */
		__hak_heap_purge_pages(now, busy_delay(delay));
	hak_bgpurge_kick();
}

/*
 * A pass that was running in another thread at fork never ends here. The
 * child's fault count starts again from its own: the window goes.
 */
void __hak_purge_fork_child(void)
{
	purge_busy = 0;
	__hak_cgroup_fork_child();
	watch.end = 0;
	tick_mark.src = HAK_OS_BUSY_NONE;	/* the counts restart in the child */
	bg_mark.src = HAK_OS_BUSY_NONE;
}

unsigned __hak_purge_busy_ms(void)
{
	return busy_delay((unsigned)__hak_opt.purge_delay_ms);
}

void __hak_purge_set_learned(unsigned ms)
{
	arch_store_relaxed(&learned_ms, ms);
}

void __hak_purge_stats(struct hak_purge_stats *st)
{
	st->delay_ms = __hak_opt.purge_delay_ms;
	st->learned_ms = busy_delay((unsigned)__hak_opt.purge_delay_ms);
	st->learn_up = arch_load_relaxed(&nr_learn_up);
	st->learn_down = arch_load_relaxed(&nr_learn_down);
	st->passes = arch_load_relaxed(&nr_passes);
	st->decayed_bytes = arch_load_relaxed(&nr_decayed);
	st->limit = __hak_os_limit();
	st->limit_hard = __hak_opt.memory_limit_hard;
	st->limit_purges = arch_load_relaxed(&nr_limit_purges);
	st->retries = arch_load_relaxed(&nr_retries);
}
