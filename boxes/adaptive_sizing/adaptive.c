// SPDX-License-Identifier: MIT
/*
 * Adaptive sizing: each thread cache's capacity per class follows the
 * class's demand, between ADAPT_CAP_MIN and ADAPT_CAP_MAX blocks, within a
 * per-thread byte budget.
 *
 * The box sees only the slow paths: a refill (bin ran empty) and an
 * overflow (bin ran full). These events are the thread's clock; every
 * CONFIG_HAK_ADAPTIVE_WINDOW of them close a window.
 *   Grow:   the second and every later refill of a class within one window
 *           doubles its capacity, if the class also overflowed in this
 *           window or the one before: a class that only refills (a
 *           producer whose blocks are freed by other threads) gains
 *           nothing from a bigger cache but fewer refills, and each of
 *           its refills then takes half the capacity from its slabs:
 *           producer-consumer at 16 pairs on 2 cores grew producers to
 *           2048 blocks per class, 52 MiB peak (tcmalloc 11 MiB) and 7
 *           times the page faults. A bin that keeps running empty has a
 *           high-water mark of live blocks above its capacity; doubling
 *           stops once the capacity covers it (the refills stop), so the
 *           capacity ends within 2x of the mark. The refill that follows
 *           takes half the new capacity (at most 64 KiB of blocks of a
 *           class of 512 B or more: lib/heap.c, refill_want).
 *   Shrink: at the end of a window, a class that had neither refill nor
 *           overflow for ADAPT_COLD_WINDOWS windows halves its capacity
 *           (and again each further idle window, down to the floor); the
 *           blocks above the new capacity go back to their slabs at once
 *           (__hak_tcache_trim), where the shared pool can take them.
 *   Budget: sum over classes of cap * stride <= max(budget, floor), where
 *           floor = sum of ADAPT_CAP_MIN * stride (about 3.3 MiB). Since a
 *           bin never holds more than its capacity (one block more inside
 *           the overflow slow path), that bounds the bytes the thread
 *           caches. A class that cannot double within the budget grows
 *           by what is left; the capacity of the classes gone idle
 *           comes back at the sweeps. Halving every class idle for a
 *           window at such a growth, as the box did until 2026-12-03,
 *           made programs whose classes change (size-chain: 2.2k
 *           reclaims, 8.4k halvings in 1,600 chains) halve and regrow
 *           the same classes, a trim and refills each time: 0.78 of the
 *           CPU without it (Documentation/design.md, "The adaptive
 *           shrink's trim").
 *   Ceiling: with HAKMEM_ADAPTIVE_CLASS_MAX set, a class of 512 B or
 *           more grows only to that many bytes of blocks (cap_most). A
 *           grown bin keeps its class's recent high-water whether or not
 *           the next chains use it: size-chain's peak RSS is the sum of
 *           them (1.38x mimalloc's; 64k: 1.17x, at 1.2-1.3x the CPU, as
 *           the blocks past the ceiling go home and come back).
 *   Past the cores: while threads outnumber the CPUs by more than one
 *           (the threads that allocate: a consumer that only frees does
 *           not count; lib/heap.c, thread_share), the budget is the
 *           thread's share, budget * cpus / threads,
 *           but not below CONFIG_HAK_ADAPTIVE_BUDGET_MIN_KIB; and a class
 *           idle for one window drops to the floor at once. Threads
 *           beyond the CPUs wait for them holding their caches: at 64
 *           threads on 2 CPUs, size-chain's caches held 225 MB of its
 *           400 MB peak (each thread near its 8 MiB budget, mostly the
 *           blocks of classes its last chains used and the next ones do
 *           not). The minimum keeps larson's lanes, whose classes are all
 *           busy: a budget at the 16-block floors (3.3 MiB) cost it ~16%
 *           more CPU per operation at 16 threads, 5 MiB nothing we could
 *           measure. A thread whose budget fell (more threads started)
 *           comes down to it at its next window's end, idle classes
 *           first (fit_budget).
 *
 * All state is the calling thread's own (initial-exec TLS, touched only by
 * the hooks on that thread), so no locks or atomics. The capacity charged
 * here for class c equals __hak_tc.bins[c].cap while the heap is attached,
 * but while a refill has raised the bin above it until the class's next
 * refill (lib/heap.c, bin_raise; __hak_tcache_cap_set reads past a raise:
 * grow runs after that refill lowered the bin, and a smaller capacity set
 * on a raised bin trims it like any other);
 * a class not yet started is charged the floor, so the bound holds while a
 * thread's capacities are being set up at attach.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "box.h"
#include "boxes/adaptive_sizing/adaptive.h"

#define ADAPT_CAP_MIN		16u
#define ADAPT_CAP_MAX		2048u
#define ADAPT_HOT_REFILLS	2	/* refills in a window that make a class hot */
/*
 * Idle windows before a class shrinks. 2 until 2026-12-04: programs whose
 * classes come back a few windows later (size-chain: a window is about
 * three of its chains) halved, trimmed and regrew them, refills and
 * overflows each time; 4 took 2-5% off its CPU at one thread and 6-9% at
 * two, for 3-4% more peak RSS, the other rows level (Documentation/
 * design.md, "size-chain: the idle windows and the resident memory").
 */
#define ADAPT_COLD_WINDOWS	4
/*
 * The classes HAKMEM_ADAPTIVE_CLASS_MAX bounds: those whose refill is
 * bounded in bytes too (lib/heap.c, refill_want), where a grown bin holds
 * hundreds of KiB; under them a bin of 2,048 blocks is at most 1 MiB
 * (footprint's and larson's classes live there).
 */
#define ADAPT_CEIL_CLASS_MIN	512u
#define ADAPT_BUDGET		((size_t)CONFIG_HAK_ADAPTIVE_BUDGET_KIB << 10)
#define ADAPT_BUDGET_MIN	((size_t)CONFIG_HAK_ADAPTIVE_BUDGET_MIN_KIB << 10)
#define ADAPT_WINDOW		((uint32_t)CONFIG_HAK_ADAPTIVE_WINDOW)

struct adapt_bin {
	uint16_t cap;		/* capacity charged to the budget */
	uint8_t refills;	/* refills in the current window (saturating) */
	uint8_t active;		/* a refill or overflow in the current window */
	uint8_t idle;		/* whole windows without either (saturating) */
	uint8_t overflowed;	/* windows in which a past overflow still counts */
};

struct adapt_state {
	size_t bytes;		/* sum of cap * stride */
	uint32_t tick;		/* refills + overflows of this thread */
	uint32_t window_start;	/* tick at which the current window opened */
	uint32_t ready;
	struct adapt_bin bin[HAK_NCLASS];
};

static __thread struct adapt_state adapt __attribute__((tls_model("initial-exec")));

static inline size_t stride(unsigned c)
{
	return __hak_class_stride(c);
}

/*
 * The calling thread's budget now: the whole while threads do not
 * outnumber the CPUs by more than one, its share past that, at least
 * ADAPT_BUDGET_MIN (and never more than the whole).
 */
size_t hak_adapt_budget(void)
{
	size_t b = __hak_tcache_live_share(ADAPT_BUDGET);

	if (b >= ADAPT_BUDGET_MIN)
		return b;
	return ADAPT_BUDGET_MIN < ADAPT_BUDGET ? ADAPT_BUDGET_MIN : ADAPT_BUDGET;
}

static size_t room(void)
{
	size_t b = hak_adapt_budget();

	return adapt.bytes < b ? b - adapt.bytes : 0;
}

/* Set class c's capacity to cap (the budget was checked by the caller). */
static void set_cap(unsigned c, uint32_t cap)
{
	struct adapt_bin *ab = &adapt.bin[c];

	adapt.bytes = adapt.bytes - ab->cap * stride(c) + cap * stride(c);
	ab->cap = (uint16_t)cap;
	__hak_tbin_set_cap(&__hak_tc.bins[c], cap);
	if (__hak_tbin_count(&__hak_tc.bins[c]) > cap)
		__hak_tcache_trim(c, cap);	/* excess back to its slabs */
}

static void shrink(unsigned c)
{
	uint32_t cap = adapt.bin[c].cap / 2;

	set_cap(c, cap > ADAPT_CAP_MIN ? cap : ADAPT_CAP_MIN);
}

/*
 * Bring the charge down to the budget, which fell since the classes grew
 * (more threads): halve the idle classes, then any class but cur (the
 * class of the event in progress, whose bin its slow path is using),
 * until it fits or every class is at the floor.
 */
static void fit_budget(unsigned cur, size_t b)
{
	unsigned c;

	for (c = 0; c < HAK_NCLASS && adapt.bytes > b; c++)
		if (adapt.bin[c].idle && adapt.bin[c].cap > ADAPT_CAP_MIN)
			shrink(c);
	for (c = 0; c < HAK_NCLASS && adapt.bytes > b; c++)
		if (c != cur && adapt.bin[c].cap > ADAPT_CAP_MIN)
			shrink(c);
}

/*
 * Close the window: age every class, shrink the cold ones and fit the
 * budget. Past the cores a class idle for one window drops to the floor
 * at once (its blocks back to their slabs, where other classes and
 * threads can have the pages), rather than halving after
 * ADAPT_COLD_WINDOWS.
 */
static void sweep(unsigned cur)
{
	size_t b = hak_adapt_budget();
	bool past = b < ADAPT_BUDGET;
	unsigned c, cold = past ? 1 : ADAPT_COLD_WINDOWS;

	adapt.window_start = adapt.tick;
	for (c = 0; c < HAK_NCLASS; c++) {
		struct adapt_bin *ab = &adapt.bin[c];

		if (ab->active)
			ab->idle = 0;
		else if (ab->idle < UINT8_MAX)
			ab->idle++;
		ab->active = 0;
		ab->refills = 0;
		if (ab->overflowed)
			ab->overflowed--;
		if (ab->idle >= cold && ab->cap > ADAPT_CAP_MIN) {
			if (past)
				set_cap(c, ADAPT_CAP_MIN);
			else
				shrink(c);
		}
	}
	fit_budget(cur, b);
}

/* Count a slow-path event of class c; close the window when it is due. */
static void event(unsigned c)
{
	adapt.bin[c].active = 1;
	if (++adapt.tick - adapt.window_start >= ADAPT_WINDOW)
		sweep(c);
}

/*
 * The most blocks class c may grow to: ADAPT_CAP_MAX, but for a class of
 * ADAPT_CEIL_CLASS_MIN bytes and more only lim bytes of blocks
 * (HAKMEM_ADAPTIVE_CLASS_MAX, 0 for no ceiling), never below the floor.
 */
static uint32_t cap_most(unsigned c, size_t lim)
{
	size_t s = stride(c), n;

	if (!lim || s < ADAPT_CEIL_CLASS_MIN)
		return ADAPT_CAP_MAX;
	n = lim / s;
	if (n < ADAPT_CAP_MIN)
		return ADAPT_CAP_MIN;
	return n < ADAPT_CAP_MAX ? (uint32_t)n : ADAPT_CAP_MAX;
}

static void grow(unsigned c)
{
	uint32_t cap = adapt.bin[c].cap, want;
	uint32_t most = cap_most(c, __hak_opt.adapt_class_max);
	size_t need, left;

	if (cap >= most)
		return;
	want = cap * 2 < most ? cap * 2 : most;
	need = (want - cap) * stride(c);
	/*
	 * One reading of the room: the budget follows the live-thread count,
	 * and a second reading after threads exited could be larger than
	 * the first (want past ADAPT_CAP_MAX, truncated in the 16-bit cap).
	 */
	left = room();
	if (need > left)
		want = cap + (uint32_t)(left / stride(c));
	if (want > cap)
		set_cap(c, want);
}

/*
 * A new thread's capacities, class by class in class order (cap[c] the
 * core's default in, the box's out). Every class is charged its floor
 * until it is started, so the bound holds at each step. One call per
 * attach with the running byte count in a register: a call per class,
 * with its TLS loads and stores and a division (room / stride), was 56
 * instructions, 2.2k of each short-lived thread's (thread-churn).
 */
void hak_adapt_initial_caps(uint32_t *cap)
{
	bool fresh = !adapt.ready;
	size_t bytes = adapt.bytes, budget = hak_adapt_budget();
	size_t lim = __hak_opt.adapt_class_max;
	unsigned c;

	if (unlikely(lim)) {
		/* before the loop, which gains nothing when it is unset */
		for (c = 0; c < HAK_NCLASS; c++)
			if (cap[c] > cap_most(c, lim))
				cap[c] = cap_most(c, lim);
	}
	if (fresh) {
		/* a new thread's state is all zero: only the charge to set */
		bytes = 0;
		for (c = 0; c < HAK_NCLASS; c++)
			bytes += ADAPT_CAP_MIN * stride(c);
		adapt.window_start = adapt.tick;
		adapt.ready = 1;
	} else {
		/* a thread attaching again: its classes' history starts over */
		for (c = 0; c < HAK_NCLASS; c++)
			adapt.bin[c] = (struct adapt_bin){ .cap = adapt.bin[c].cap };
	}
	for (c = 0; c < HAK_NCLASS; c++) {
		size_t s = stride(c), room;
		uint32_t k = cap[c];

		bytes -= (fresh ? ADAPT_CAP_MIN : adapt.bin[c].cap) * s;
		if (k < ADAPT_CAP_MIN)
			k = ADAPT_CAP_MIN;
		if (k > ADAPT_CAP_MAX)
			k = ADAPT_CAP_MAX;
		room = bytes < budget ? budget - bytes : 0;
		if ((size_t)k * s > room) {	/* k > room / s, one division less */
			size_t fit = room / s;

			k = fit > ADAPT_CAP_MIN ? (uint32_t)fit : ADAPT_CAP_MIN;
		}
		if (__hak_sharded_class(c))
			k = __hak_shard_cap_of(c);	/* the core's small bin: never grown */
		adapt.bin[c].cap = (uint16_t)k;
		bytes += k * s;
		cap[c] = k;
	}
	adapt.bytes = bytes;
}

void hak_adapt_on_refill(unsigned c)
{
	struct adapt_bin *ab;

	if (c >= HAK_NCLASS || !adapt.ready || __hak_sharded_class(c))
		return;
	ab = &adapt.bin[c];
	event(c);
	if (ab->refills < UINT8_MAX)
		ab->refills++;
	if (ab->refills >= ADAPT_HOT_REFILLS && ab->overflowed)
		grow(c);
}

void hak_adapt_on_overflow(unsigned c)
{
	if (c >= HAK_NCLASS || !adapt.ready || __hak_sharded_class(c))
		return;
	adapt.bin[c].overflowed = 2;	/* this window and the next */
	event(c);
}
