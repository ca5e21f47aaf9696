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
 * Usage: fork_remote_push   (CATCHES forks; HAKMEM_SELFTEST_QUICK=1: fewer)
 */
#include <pthread.h>
#include <time.h>
#include "core_test.h"

#if CT_HAKMEM
#include <hakmem/hakmem.h>
#include "heap.h"
#include <asm/atomic.h>
/* blocks on a slab's remote stack: the low 16 bits of the word (lib/heap.c) */
#define HAK_RW_COUNT(w)	((uint32_t)((w) & 0xffff))

#define BS		(16 << 10)
#define NB		96
#define CATCHES		8
#define TRY_MS		20000

static void *blk[NB];
static int round_go, round_done, quit;	/* __atomic */
/* armed: main, once per round (a pending tick would catch the same push again) */
static int armed, caught, released;	/* __atomic */
static pid_t t_tid;
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

/* On T: is its interrupted frame between the two pushes? Then hold it for the fork. */
static void on_tick(int sig)
{
	int e = errno;

	(void)sig;
	if (__atomic_load_n(&armed, __ATOMIC_ACQUIRE) && stuck_slabs()) {
		__atomic_store_n(&armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&caught, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&released, __ATOMIC_ACQUIRE))
			sched_yield();
		__atomic_store_n(&released, 0, __ATOMIC_RELAXED);
	}
	errno = e;
}

static void *pusher(void *arg)
{
	void *mine = malloc(64);	/* T has a heap of its own */
	unsigned i;

	(void)arg;
	__atomic_store_n(&t_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&quit, __ATOMIC_ACQUIRE)) {
		if (!__atomic_load_n(&round_go, __ATOMIC_ACQUIRE)) {
			sched_yield();
			continue;
		}
		for (i = 0; i < NB; i++)
			free(blk[i]);
		__atomic_store_n(&armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&round_go, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&round_done, 1, __ATOMIC_RELEASE);
	}
	free(mine);
	return NULL;
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
#endif

int main(void)
{
#if CT_HAKMEM
	struct sigevent sev = { 0 };
	struct itimerspec its = { { 0, 20000 }, { 0, 20000 } };
	unsigned want = ct_quick() ? 3 : CATCHES, got = 0, bad = 0, rounds = 0, i;
	double t0;
	pthread_t t;
	timer_t tm;

	alarm(TRY_MS / 1000 + 60);
	finished = ct_shared(sizeof(*finished));
	ct_handle(SIGUSR1, on_tick);
	if (pthread_create(&t, NULL, pusher, NULL))
		tap_bail("pthread_create");
	while (!__atomic_load_n(&t_tid, __ATOMIC_ACQUIRE))
		sched_yield();
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;
	sev._sigev_un._tid = t_tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &tm) || timer_settime(tm, 0, &its, NULL))
		tap_bail("timer: %s", strerror(errno));
	t0 = ct_now_ms();
	while (got < want && ct_now_ms() - t0 < TRY_MS) {
		for (i = 0; i < NB; i++)
			blk[i] = malloc(BS);
		find_slabs();
		rounds++;
		__atomic_store_n(&round_done, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&armed, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&round_go, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&round_done, __ATOMIC_ACQUIRE)) {
			if (__atomic_load_n(&caught, __ATOMIC_ACQUIRE)) {
				got++;
				bad += !ct_fork_run(child_check, NULL);
				__atomic_store_n(&caught, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&released, 1, __ATOMIC_RELEASE);
			}
			sched_yield();
		}
	}
	timer_delete(tm);
	__atomic_store_n(&quit, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	if (!got)
		tap_skip_all("no push caught between its two steps in %d s (%u rounds)",
			     TRY_MS / 1000, rounds);
	tap_plan(2);
	tap_ok(got > 0, "caught a push between its two steps %u times (%u rounds, %.0f ms)",
	       got, rounds, ct_now_ms() - t0);
	tap_ok(!bad, "every child had the caught slab on its owner's pending stack and "
	       "trimmed (%u of %u failed; %lu half-done pushes the children finished)",
	       bad, got, *finished);
	tap_finish();
#else
	tap_skip_all("hakmem's remote stacks only");
#endif
}
