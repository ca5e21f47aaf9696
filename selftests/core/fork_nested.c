// SPDX-License-Identifier: MIT
/*
 * fork_nested: a handler fork inside this thread's own fork.
 *
 * A signal handler may fork while its thread is inside fork() already: in
 * that fork's prepare handler, waiting for a lock (an urgent fork polls
 * for 200 us at a time, lib/init.c "Fork, back-off"), or in its system
 * call (which restarts after the handler). The inner fork runs every
 * handler again and completes before the outer one goes on, so what each
 * handler leaves per lock and per thread must nest:
 *   - a lock the interrupted frame holds is left to it by both forks
 *     (HAK_FORK_OWN); the inner's parent handler used to reset the lock's
 *     state, and the outer's then unlocked the frame's lock;
 *   - the outer fork's announcement (its frame holds a lock) must outlive
 *     the inner's: the inner's parent handler withdrew "the thread's"
 *     announcement, the outer's then found none, and the count of pending
 *     urgent forks stayed at 1: every later fork of a thread holding no
 *     lock backed off for good.
 *
 * Linked with --wrap=pthread_mutex_trylock, which stands in for the
 * signals at exact points: on the main thread, armed, the first try-lock
 * that takes a lock inside mallinfo2 (hak_lock: the frame now holds it)
 * forks (the outer, urgent: its frame holds that lock); the first
 * try-lock of that fork's prepare forks again (the inner). Every child
 * _exit()s at once. Then:
 *   - the frame still holds its lock after both forks;
 *   - another thread, holding nothing, forks and returns (a hang is killed
 *     after 10 s: the scenario runs in a child process).
 * hakmem only (glibc's malloc takes no pthread mutex there).
 */
#include <pthread.h>
#include <sys/mman.h>
#include "core_test.h"

#define HANG_S	10
/*
 * The frame holds the second lock mallinfo2 takes (a large shard's; the
 * first is the superslab lock, the last a fork prepare takes: no try-lock
 * of that prepare comes after it).
 */
#define FRAME_LOCK	2

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t main_tid;
/* volatile: mallinfo2 is declared a leaf, which the wrapper is not */
static volatile int arm;	/* 1: fork at the next lock taken; 2: in the outer's prepare */
static volatile int held_after;		/* the frame's lock after the forks: 1 held by us, 0 not, -1 never armed */
static volatile long bad_child;
static volatile int nested;	/* the inner fork ran */
static unsigned taken;		/* locks mallinfo2 took so far */
static pthread_mutex_t *frame_mu;

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

	if (!arm || gettid() != main_tid)
		return r;
	if (arm == 1 && !r && ++taken == FRAME_LOCK) {
		/* as a handler that interrupted the frame just past the lock */
		frame_mu = m;
		arm = 2;
		if (!ct_fork_exit0())
			bad_child++;
		held_after = m->__data.__owner == main_tid;
		arm = 0;
	} else if (arm == 2 && m == frame_mu) {
		arm = 3;	/* the outer's prepare leaves it to the frame */
	} else if (arm == 3) {
		/* as a handler that interrupted the outer fork's prepare past that */
		arm = 0;
		nested = 1;
		if (!ct_fork_exit0())
			bad_child++;
	}
	return r;
}

static void *idle(void *arg)
{
	int *fd = arg;
	char c;

	while (read(fd[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void *forker(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ct_fork_exit0();
}

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int held_after;		/* as held_after */
	int forked;		/* the later fork returned (1 when its child exited 0) */
} *res;

/* The scenario, in a process of its own; a hang is ended by SIGALRM. */
static void scenario(void)
{
	pthread_t t, f;
	void *ok = NULL;
	int fd[2];

	alarm(HANG_S);
	if (pipe(fd) || pthread_create(&t, NULL, idle, fd))
		_exit(5);
	main_tid = gettid();
	held_after = -1;
	arm = 1;
	(void)mallinfo2();
	arm = 0;
	res->held_after = nested ? held_after : -2;
	if (pthread_create(&f, NULL, forker, NULL) || pthread_join(f, &ok))
		_exit(5);
	res->forked = ok && !bad_child ? 1 : -1;
	if (write(fd[1], "x", 1) != 1 || pthread_join(t, NULL))
		_exit(5);
	_exit(0);
}

int main(void)
{
	int st;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(2);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	if (res->held_after == -1)
		tap_bail("mallinfo2 took no lock by try-lock (status 0x%x)", (unsigned)st);
	if (res->held_after == -2)
		tap_bail("no try-lock of the outer fork's prepare after the frame's lock");
	tap_ok(res->held_after == 1,
	       "the interrupted frame still holds its lock after a fork nested in its handler fork");
	tap_ok(res->forked == 1 && WIFEXITED(st) && !WEXITSTATUS(st),
	       "a later fork of a thread holding no lock completes (status 0x%x%s)",
	       (unsigned)st, ct_hung(st));
	tap_finish();
}
