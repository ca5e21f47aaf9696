// SPDX-License-Identifier: MIT
/*
 * fork_remote_push: a thread caught by a fork between its push onto a
 * slab's remote stack and its push of the slab onto the owner's pending
 * stack (__hak_remote_push, lib/heap.c) left the child that slab with
 * remote blocks on no pending stack: later remote frees saw the stack
 * non-empty and did not push it either, so the owner never collected
 * them and the slab was never released (a leak in the child).
 *
 * Made exact by catching the thread there: thread T frees the main
 * thread's 16 KiB blocks (each free one push, a few slabs' first of a
 * round onto an empty stack) while a timer signals T every few
 * microseconds. T's handler looks at the slabs (the main thread, their
 * owner, waits meanwhile, and T is the only pusher): a slab whose remote
 * stack holds blocks and which is not on the pending stack means the
 * interrupted frame is between the two pushes. The handler then waits
 * while the main thread forks. In the child no slab may hold remote
 * blocks on no pending stack (the caught one did, 8 children in 8 before
 * the fix, def), and the owner's trim, which collects every pending slab,
 * must go through. hakmem only.
 *
 * Usage: fork_remote_push   (8 catches and forks; HAKMEM_SELFTEST_QUICK=1: 3)
 */
#include "core_test.h"

#if CT_HAKMEM
#include <hakmem/hakmem.h>
#include "heap.h"
#include <asm/atomic.h>
#include "fork_catch.h"
/* blocks on a slab's remote stack: the low 16 bits of the word (lib/heap.c) */
#define HAK_RW_COUNT(w)	((uint32_t)((w) & 0xffff))

#define BS		(16 << 10)
#define NB		96

static void *blk[NB];
static unsigned long *finished;	/* shared: pushes the children finished */

/* The distinct slabs of blk[], found before each round (nslabs of them). */
static struct hak_slab *slabs[NB];
static unsigned nslabs;

static void find_slabs(void)
{
	unsigned i, j;

	nslabs = 0;
	for (i = 0; i < NB; i++) {
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)blk[i]));

		for (j = 0; j < nslabs && slabs[j] != s; j++)
			;
		if (j == nslabs)
			slabs[nslabs++] = s;
	}
}

/* Slabs whose remote stack holds blocks while they are on no pending stack. */
static unsigned long stuck_slabs(void)
{
	unsigned long n = 0;
	unsigned i;

	for (i = 0; i < nslabs; i++) {
		struct hak_slab *s = slabs[i], *p;

		if (!HAK_RW_COUNT(arch_load_relaxed(&s->remote)))
			continue;
		for (p = arch_load_relaxed(&s->owner->pending); p && p != s; p = p->pending_next)
			;
		n += !p;
	}
	return n;
}

/* On T: is its interrupted frame between the two pushes? */
static bool between_pushes(void)
{
	return stuck_slabs();
}

/*
 * In the child: no slab may hold remote blocks on no pending stack; the
 * owner's trim then collects every pending one (and may unmap the slabs,
 * so it comes last: it must not fail).
 */
static void child_check(void)
{
	unsigned long stuck;

	alarm(10);
	__atomic_fetch_add(finished, __hak_heap_fork_pushes(), __ATOMIC_RELAXED);
	stuck = stuck_slabs();
	hak_malloc_trim(0);
	_exit(stuck ? 1 : 0);
}
static bool fork_check(void)
{
	return ct_fork_run(child_check, NULL);
}
#endif

int main(void)
{
#if CT_HAKMEM
	struct ct_catch c = {
		.blk = blk, .nb = NB, .bs = BS, .in_window = between_pushes,
		.m_round = find_slabs, .on_catch = fork_check,
		.want = ct_quick() ? 3 : 8, .try_ms = 20000,
	};

	alarm(c.try_ms / 1000 + 60);
	finished = ct_shared(sizeof(*finished));
	ct_catch_run(&c);
	if (!c.got)
		tap_skip_all("no push caught between its two steps in %u s (%u rounds)",
			     c.try_ms / 1000, c.rounds);
	tap_plan(2);
	tap_ok(c.got > 0, "caught a push between its two steps %u times (%u rounds, %.0f ms)",
	       c.got, c.rounds, c.ms);
	tap_ok(!c.bad, "every child had the caught slab on its owner's pending stack and "
	       "trimmed (%u of %u failed; %lu half-done pushes the children finished)",
	       c.bad, c.got, *finished);
	tap_finish();
#else
	tap_skip_all("hakmem's remote stacks only");
#endif
}
