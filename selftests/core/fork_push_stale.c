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
 * Usage: fork_push_stale   (CATCHES forks; HAKMEM_SELFTEST_QUICK=1: fewer)
 */
#include <pthread.h>
#include <time.h>
#include "core_test.h"

#if CT_HAKMEM
#include <hakmem/hakmem.h>
#include "heap.h"
#include "tcache.h"
#include <asm/atomic.h>

#define BS		(16 << 10)
#define NB		512		/* 8 MiB: whole superslabs of these blocks */
#define CATCHES		16
#define TRY_MS		20000

static void *blk[NB];		/* __atomic: taken by whoever frees it */
static int round_go, round_done, quit;	/* __atomic */
static int armed, caught, released;	/* __atomic */
static pid_t t_tid;

/* On T: the slab its heap names, when that slab is on its owner's pending stack. */
static struct hak_slab *named_pending(void)
{
	struct hak_heap *h = __hak_tc.heap;
	struct hak_slab *s, *p;

	if (!h || !(s = arch_load_relaxed(&h->pushing)) || !s->owner)
		return NULL;
	for (p = arch_load_relaxed(&s->owner->pending); p && p != s; p = p->pending_next)
		;
	return p;
}

static void on_tick(int sig)
{
	int e = errno;

	(void)sig;
	if (__atomic_load_n(&armed, __ATOMIC_ACQUIRE) && named_pending()) {
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
			free(__atomic_exchange_n(&blk[i], NULL, __ATOMIC_ACQ_REL));
		__atomic_store_n(&armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&round_go, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&round_done, 1, __ATOMIC_RELEASE);
	}
	free(mine);
	return NULL;
}

/* Fork a child that exits at once; its wait status (-1: no child). */
static int fork_status(void)
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}
#endif

int main(void)
{
#if CT_HAKMEM
	struct sigevent sev = { 0 };
	struct itimerspec its = { { 0, 20000 }, { 0, 20000 } };
	unsigned want = ct_quick() ? 4 : CATCHES, got = 0, bad = 0, rounds = 0, i;
	int st, sig = 0;
	double t0;
	pthread_t t;
	timer_t tm;

	alarm(TRY_MS / 1000 + 60);
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
		rounds++;
		__atomic_store_n(&round_done, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&armed, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&round_go, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&round_done, __ATOMIC_ACQUIRE)) {
			if (__atomic_load_n(&caught, __ATOMIC_ACQUIRE)) {
				got++;
				/* T's slab empties here, its superslab goes */
				for (i = 0; i < NB; i++)
					free(__atomic_exchange_n(&blk[i], NULL, __ATOMIC_ACQ_REL));
				hak_malloc_trim(0);
				st = fork_status();
				if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
					bad++;
					if (st != -1 && WIFSIGNALED(st))
						sig = WTERMSIG(st);
				}
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
		tap_skip_all("no pusher caught naming a pending slab in %d s (%u rounds)",
			     TRY_MS / 1000, rounds);
	tap_plan(2);
	tap_ok(got > 0, "caught a pusher naming a pending slab %u times (%u rounds, %.0f ms)",
	       got, rounds, ct_now_ms() - t0);
	tap_ok(!bad, "every child forked then (slab released, superslab trimmed) exited "
	       "normally (%u of %u failed%s%s)", bad, got, sig ? ", killed by " : "",
	       sig ? strsignal(sig) : "");
	tap_finish();
#else
	tap_skip_all("hakmem's remote stacks only");
#endif
}
