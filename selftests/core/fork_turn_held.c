// SPDX-License-Identifier: MIT
/*
 * fork_turn_held: while a plain fork waits its turn (lib/init.c, "Fork,
 * turn"), two frames must not be held back before a lock take (rv21b):
 *  - a signal handler whose interrupted frame is inside hak_lock() or
 *    hak_unlock() with the lock word held and __hak_locks_held not yet (or
 *    no longer) counting it: the count says "holds nothing", the edge says
 *    otherwise, and the fork may need that lock;
 *  - a signal handler on the thread of the plain fork itself, interrupted
 *    in its prepare's wait: only that prepare lowers the turn, so the
 *    handler waited for its own thread.
 * Either waited for the gate's bound (1 s with no fork completing) and held
 * every other thread's lock takes back as long.
 *
 * Made exact with --wrap=pthread_mutex_trylock, as fork_plain_turn: thread U
 * takes a lock of its own with hak_lock() and forks right after the
 * try-lock that took it (an urgent fork), then waits inside that fork's
 * prepare until the checks are done. Thread G stops right after its
 * try-lock won (the window), the main thread forks (plain: it waits behind
 * U and takes a turn), and G then takes another lock as a handler of that
 * window would, and sends the main thread a signal whose handler takes a
 * lock. Each take must go through at once. That handler then forks (a
 * handler fork nested in the turn's wait): in its child the interrupted
 * prepare goes on and lowers its turn, which must leave the count at 0
 * there (it was reset to 0, and went to -1: a later turn of that child's
 * held every lock-free take back for good). hakmem only.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include "core_test.h"
#if CT_HAKMEM
#include "init.h"
#include "lock.h"

static unsigned long turns_taken(void)
{
	struct hak_fork_stats fs;

	__hak_fork_stats(&fs);
	return fs.turns;
}

static struct hak_lock lu = HAK_LOCK_INIT, lg = HAK_LOCK_INIT, lg2 = HAK_LOCK_INIT,
	lh = HAK_LOCK_INIT;
#endif

#define HANG_S		30
#define WAIT_MS		4000	/* each step's bound: past two gate bounds */
#define BOUND_MS	300

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

/* 'u', 'g' for the two threads, 0 for any other */
static __thread int role;
/* 1: the frame is taking its lock; 2: U's fork is on, before its prepare's first try-lock */
static __thread int phase;
static volatile int g_in, u_in, g_done, h_done;
/* set in the child of the handler's fork (the outer fork then goes on there) */
static volatile int in_nested_child;
static unsigned long turns0;
static pthread_t main_thread;

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int g_in, u_in, turned, u_fork_ok, child_ok, handler_ran;
	int nested_seen, nested_turn, turn_after;
	double g_ms, h_ms, fork_ms;
} *res;

#if CT_HAKMEM
static void on_usr1(int sig)
{
	double t0 = ct_now_ms();
	pid_t pid;
	int st;

	(void)sig;
	hak_lock(&lh);
	hak_unlock(&lh);
	res->h_ms = ct_now_ms() - t0;
	res->handler_ran = 1;
	h_done = 1;
	pid = fork();
	if (pid == 0) {
		in_nested_child = 1;
		return;
	}
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* G, in the window: its lock word won, the count not yet raised */
static void g_window(void)
{
	double t0 = ct_now_ms();

	g_in = 1;
	while (turns_taken() == turns0 && ct_now_ms() - t0 < WAIT_MS)
		usleep(100);
	res->turned = turns_taken() != turns0;
	/* as a handler that interrupted the frame there */
	t0 = ct_now_ms();
	hak_lock(&lg2);
	hak_unlock(&lg2);
	res->g_ms = ct_now_ms() - t0;
	/* the plain fork's own thread, in its prepare's wait */
	pthread_kill(main_thread, SIGUSR1);
	ct_wait_flag(&h_done, WAIT_MS);
	g_done = 1;
}
#endif

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

#if CT_HAKMEM
	if (role == 'g' && phase == 1 && !r) {
		phase = 0;
		g_window();
	} else if (role == 'u' && phase == 1 && !r) {
		/* as the handler of a signal that landed right after the lock */
		phase = 2;
		res->u_fork_ok = ct_fork_exit0();
		phase = 0;
	} else if (role == 'u' && phase == 2) {
		/* inside U's fork's prepare: it has announced itself */
		phase = 3;
		u_in = 1;
		ct_wait_flag(&g_done, WAIT_MS);
	}
#endif
	return r;
}

static void *thread_g(void *arg)
{
	(void)arg;
	role = 'g';
	free(malloc(16));
#if CT_HAKMEM
	phase = 1;
	hak_lock(&lg);
	phase = 0;
	hak_unlock(&lg);
#endif
	return NULL;
}

static void *thread_u(void *arg)
{
	(void)arg;
	role = 'u';
	free(malloc(16));
#if CT_HAKMEM
	phase = 1;
	hak_lock(&lu);
	phase = 0;
	hak_unlock(&lu);
#endif
	return NULL;
}

static void scenario(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	pthread_t g, u;
	double t0;
	pid_t pid;
	int st;

	alarm(HANG_S);
#if CT_HAKMEM
	sa.sa_handler = on_usr1;
	turns0 = turns_taken();
#endif
	sigaction(SIGUSR1, &sa, NULL);
	main_thread = pthread_self();
	if (pthread_create(&g, NULL, thread_g, NULL))
		_exit(5);
	res->g_in = ct_wait_flag(&g_in, WAIT_MS);
	if (pthread_create(&u, NULL, thread_u, NULL))
		_exit(5);
	res->u_in = ct_wait_flag(&u_in, WAIT_MS);
	t0 = ct_now_ms();
	pid = fork();
	if (pid == 0) {
		free(malloc(100));
		_exit(0);
	}
	res->fork_ms = ct_now_ms() - t0;
	if (pid < 0)
		_exit(5);
#if CT_HAKMEM
	if (in_nested_child) {
		/* the handler fork's child: the outer fork went on here */
		res->nested_turn = __atomic_load_n(&__hak_fork_turn, __ATOMIC_RELAXED);
		res->nested_seen = 1;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	res->turn_after = __atomic_load_n(&__hak_fork_turn, __ATOMIC_RELAXED);
#endif
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	res->child_ok = WIFEXITED(st) && !WEXITSTATUS(st);
	pthread_join(g, NULL);
	pthread_join(u, NULL);
	_exit(0);
}

int main(void)
{
	int st;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(5);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	tap_ok(res->g_in && res->u_in && res->turned && res->handler_ran && res->u_fork_ok &&
	       WIFEXITED(st) && !WEXITSTATUS(st),
	       "the scenario ran: a frame in its window, an urgent fork, a plain fork's turn "
	       "(%d %d %d %d %d; status 0x%x%s)", res->g_in, res->u_in, res->turned,
	       res->handler_ran, res->u_fork_ok, (unsigned)st, ct_hung(st));
	tap_ok(res->g_ms < BOUND_MS,
	       "a take from a frame whose lock word is won but not counted is not held back "
	       "(%.0f ms, bound %d)", res->g_ms, BOUND_MS);
	tap_ok(res->h_ms < BOUND_MS,
	       "a take from a handler on the plain fork's own thread is not held back "
	       "(%.0f ms, bound %d)", res->h_ms, BOUND_MS);
	tap_ok(res->child_ok, "the plain fork went through (%.0f ms) and its child allocated",
	       res->fork_ms);
	tap_ok(res->nested_seen && !res->nested_turn && !res->turn_after,
	       "in the child of a handler fork made during the turn's wait, the count is 0 once "
	       "the interrupted prepare lowered its turn (%d; seen %d; in the parent %d)",
	       res->nested_turn, res->nested_seen, res->turn_after);
	tap_finish();
}
