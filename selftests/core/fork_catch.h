/* SPDX-License-Identifier: MIT */
/*
 * fork_catch.h: the harness of the tests that catch a remote pusher inside
 * a window of a few instructions and fork while it is held there
 * (fork_remote_push, fork_push_stale; hakmem only, header-only, not a
 * test). A thread T runs rounds of frees (each free of the main thread's
 * block is a remote push) while a timer signals it every 20 us; T's
 * handler asks the test whether the interrupted frame is in the window,
 * and if so holds T there while the main thread acts (forks), then lets
 * it go. Each round the main thread allocates the blocks (blk[], nb of bs
 * bytes) and T frees those it takes; the main thread counts the catches.
 */
#ifndef HAK_SELFTEST_FORK_CATCH_H
#define HAK_SELFTEST_FORK_CATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include "core_test.h"

struct ct_catch {
	void **blk;			/* __atomic: a block is taken by whoever frees it */
	unsigned nb;
	size_t bs;
	bool (*in_window)(void);	/* on T, in its signal handler */
	void (*m_round)(void);		/* on main after a round's mallocs, or NULL */
	bool (*on_catch)(void);		/* on main, T held: false counts as bad */
	unsigned want;			/* catches to make */
	unsigned try_ms;		/* give up after this long */
	unsigned got, bad, rounds;	/* out */
	double ms;			/* out: how long it took */
};

static struct ct_catch *cc_cur;
static int cc_go, cc_done, cc_quit;		/* __atomic */
/* armed: main, once per round (a pending tick would catch the same push again) */
static int cc_armed, cc_caught, cc_released;	/* __atomic */
static pid_t cc_tid;

/* Free the round's blocks not yet freed (T's round; main's, T held). */
static void ct_catch_free_all(struct ct_catch *c)
{
	unsigned i;

	for (i = 0; i < c->nb; i++)
		free(__atomic_exchange_n(&c->blk[i], NULL, __ATOMIC_ACQ_REL));
}

static void cc_on_tick(int sig)
{
	int e = errno;

	(void)sig;
	if (__atomic_load_n(&cc_armed, __ATOMIC_ACQUIRE) && cc_cur->in_window()) {
		__atomic_store_n(&cc_armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cc_caught, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&cc_released, __ATOMIC_ACQUIRE))
			sched_yield();
		__atomic_store_n(&cc_released, 0, __ATOMIC_RELAXED);
	}
	errno = e;
}

static void *cc_thread(void *arg)
{
	void *mine = malloc(64);	/* T has a heap of its own */

	(void)arg;
	__atomic_store_n(&cc_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&cc_quit, __ATOMIC_ACQUIRE)) {
		if (!__atomic_load_n(&cc_go, __ATOMIC_ACQUIRE)) {
			sched_yield();
			continue;
		}
		ct_catch_free_all(cc_cur);
		__atomic_store_n(&cc_armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cc_go, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&cc_done, 1, __ATOMIC_RELEASE);
	}
	free(mine);
	return NULL;
}

/* Run rounds until c->want catches or c->try_ms; bails on a setup error. */
static void ct_catch_run(struct ct_catch *c)
{
	struct sigevent sev;
	struct itimerspec its = { { 0, 20000 }, { 0, 20000 } };
	double t0;
	pthread_t t;
	timer_t tm;
	unsigned i;

	memset(&sev, 0, sizeof(sev));	/* glibc's union members: no braced zero sparse accepts */
	cc_cur = c;
	ct_handle(SIGUSR1, cc_on_tick);
	if (pthread_create(&t, NULL, cc_thread, NULL))
		tap_bail("pthread_create");
	while (!__atomic_load_n(&cc_tid, __ATOMIC_ACQUIRE))
		sched_yield();
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;
	sev._sigev_un._tid = cc_tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &tm) || timer_settime(tm, 0, &its, NULL))
		tap_bail("timer: %s", strerror(errno));
	t0 = ct_now_ms();
	while (c->got < c->want && ct_now_ms() - t0 < c->try_ms) {
		for (i = 0; i < c->nb; i++)
			c->blk[i] = malloc(c->bs);
		if (c->m_round)
			c->m_round();
		c->rounds++;
		__atomic_store_n(&cc_done, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cc_armed, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&cc_go, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&cc_done, __ATOMIC_ACQUIRE)) {
			if (__atomic_load_n(&cc_caught, __ATOMIC_ACQUIRE)) {
				c->got++;
				c->bad += !c->on_catch();
				__atomic_store_n(&cc_caught, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&cc_released, 1, __ATOMIC_RELEASE);
			}
			sched_yield();
		}
	}
	c->ms = ct_now_ms() - t0;
	timer_delete(tm);
	__atomic_store_n(&cc_quit, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
}

#endif /* HAK_SELFTEST_FORK_CATCH_H */
