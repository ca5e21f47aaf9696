// SPDX-License-Identifier: MIT
/*
 * fork_push_stale: a remote pusher names the slab it pushes to in its heap
 * (h->pushing, __hak_remote_push in lib/heap.c) until just after its push
 * of the slab onto the owner's pending stack. Caught between that push
 * and the clear, the name is stale at once: the owner may collect the
 * slab, release it, and a trim unmap its superslab. A fork then (by
 * another thread, the pusher still stopped) had the child's handler
 * (fork_child_pushes) read the unmapped slab header: SIGSEGV in the child
 * before main() saw it.
 *
 * Made exact as fork_remote_push does: thread T frees the main thread's
 * 16 KiB blocks, one push each, while a timer signals T every few
 * microseconds. T's handler stops T when its heap names a slab that is on
 * its owner's pending stack (the frame is past its push of that slab, or
 * pushing onto a stack already pending). The main thread then frees the
 * blocks T has not yet taken, trims (every slab empty: released, their
 * superslabs unmapped) and forks; the child must exit normally. hakmem
 * only.
 *
 * Usage: fork_push_stale   (16 catches and forks; HAKMEM_SELFTEST_QUICK=1: 4)
 */
#include "core_test.h"

#if CT_HAKMEM
#include <hakmem/hakmem.h>
#include "heap.h"
#include "tcache.h"
#include <asm/atomic.h>
#include "fork_catch.h"

#define BS		(16 << 10)
#define NB		512		/* 8 MiB: whole superslabs of these blocks */

static void *blk[NB];
static bool trim_and_fork(void);

/* On T: the slab its heap names, when that slab is on its owner's pending stack. */
static bool named_pending(void)
{
	struct hak_heap *h = __hak_tc.heap;
	struct hak_slab *s, *p;

	if (!h || !(s = arch_load_relaxed(&h->pushing)) || !s->owner)
		return false;
	for (p = arch_load_relaxed(&s->owner->pending); p && p != s; p = p->pending_next)
		;
	return p;
}

static struct ct_catch c = {
	.blk = blk, .nb = NB, .bs = BS, .in_window = named_pending,
	.on_catch = trim_and_fork, .try_ms = 20000,
};

/* T held: its slab empties here, its superslab goes, then a fork. */
static bool trim_and_fork(void)
{
	ct_catch_free_all(&c);
	hak_malloc_trim(0);
	return ct_fork_exit0();
}
#endif

int main(void)
{
#if CT_HAKMEM
	c.want = ct_quick() ? 4 : 16;
	alarm(c.try_ms / 1000 + 60);
	ct_catch_run(&c);
	if (!c.got)
		tap_skip_all("no pusher caught naming a pending slab in %u s (%u rounds)",
			     c.try_ms / 1000, c.rounds);
	tap_plan(2);
	tap_ok(c.got > 0, "caught a pusher naming a pending slab %u times (%u rounds, %.0f ms)",
	       c.got, c.rounds, c.ms);
	tap_ok(!c.bad, "every child forked then (slab released, superslab trimmed) exited "
	       "normally (%u of %u failed)", c.bad, c.got);
	tap_finish();
#else
	tap_skip_all("hakmem's remote stacks only");
#endif
}
