// SPDX-License-Identifier: MIT
/*
 * fork_turn_child: a child made without our fork handlers (_Fork) while a
 * plain fork of its parent waits its turn behind an urgent one (lib/init.c,
 * "Fork, turn") inherits the turn's count raised and the urgent fork's
 * announcement, and no thread there will lower either. Before fk22 the
 * turn carried its process in turn_pid, a second word: every lock take in
 * such a child that held no lock paid a getpid() to learn the count was
 * not its own, and the announcement had no process at all: the child's
 * first fork backed off for it for good. Now each count is one word with
 * its process's id in it, read as 0 by any other process.
 *
 * Made exact with --wrap=pthread_mutex_trylock, as fork_turn_held: thread S
 * holds the C library's stream-list lock; thread U takes a lock of its own
 * with hak_lock() and forks right after the try-lock that took it (an
 * urgent fork), which announces itself and then waits for the stream-list
 * lock, holding no allocator lock (a child made while it held one could
 * not allocate at all). The main thread forks (plain: it waits behind U
 * and takes a turn); thread H, once the turn is raised, makes a child with
 * _Fork and waits for it, then releases S. The child gives back S's copy
 * of the stream-list lock (glibc's fork resets it in the child; _Fork does
 * not), takes a lock TAKES times counting getpid() calls (--wrap=getpid),
 * forks (it must go through), and runs the same scene itself: a turn of its
 * own, which must start from 0 and end at 0, after which a lock take is not
 * held back. hakmem only.
 */
#include <pthread.h>
#include <time.h>
#include "core_test.h"
#if CT_HAKMEM
#include "init.h"
#include "lock.h"

static unsigned long urgent_forks(void)
{
	struct hak_fork_stats fs;

	__hak_fork_stats(&fs);
	return fs.urgent;
}

static unsigned long turns_taken(void)
{
	struct hak_fork_stats fs;

	__hak_fork_stats(&fs);
	return fs.turns;
}

/* U's frame lock in the parent, then in the child; a lock the child takes */
static struct hak_lock lu[2] = { HAK_LOCK_INIT, HAK_LOCK_INIT }, lc = HAK_LOCK_INIT;
#else
static unsigned long urgent_forks(void)
{
	return 0;
}

static unsigned long turns_taken(void)
{
	return 0;
}
#endif

#define HANG_S		30
#define CHILD_S		5	/* the _Fork child's own alarm */
#define WAIT_MS		3000	/* each step's bound */
#define TAKES		1000
#define FORK_MS		500	/* the child's fork (a hang before fk22) */
#define BOUND_MS	300	/* a take after the child's turn (1 s held before) */

extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);
pid_t __real_getpid(void);
pid_t __wrap_getpid(void);

/* 'u' for the thread whose frame forks, 0 for any other */
static __thread int role;
/* U: 1 taking its lock */
static __thread int phase;
static volatile int h_ready, u_in, s_in, release, run;
static volatile pid_t u_tid;
static unsigned long turns0, getpids;
static void (*during)(void);

/* What a scene saw: [0] the parent's, [1] the _Fork child's. */
struct scene {
	int u_in, turned, u_fork_ok, fork_ok;
	double fork_ms;
};

/* What the test saw, in a page shared with the test. */
static struct result {
	struct scene sc[2];
	int child_made, child_status, child_fork_ok, started_raised;
	unsigned long takes_getpid;
	long long turn_after_fork, turn_end;
	double takes_ms, child_fork_ms, take_ms;
} *res;

pid_t __wrap_getpid(void)
{
	__atomic_add_fetch(&getpids, 1, __ATOMIC_RELAXED);
	return __real_getpid();
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

	if (role == 'u' && phase == 1 && !r) {
		/* as the handler of a signal that landed right after the lock */
		phase = 0;
		res->sc[run].u_fork_ok = ct_fork_exit0();
	}
	return r;
}

/* S: holds the stream-list lock until released (U's prepare waits for it) */
static void *thread_s(void *arg)
{
	(void)arg;
	_IO_list_lock();
	s_in = 1;
	ct_wait_flag(&release, WAIT_MS);
	_IO_list_unlock();
	return NULL;
}

static void *thread_u(void *arg)
{
	(void)arg;
	role = 'u';
	free(malloc(16));
	u_tid = (pid_t)syscall(SYS_gettid);
#if CT_HAKMEM
	phase = 1;
	hak_lock(&lu[run]);
	phase = 0;
	hak_unlock(&lu[run]);
#endif
	return NULL;
}

static long long turn_word(void)
{
#if CT_HAKMEM
	return (long long)__atomic_load_n(&__hak_fork_turn, __ATOMIC_RELAXED);
#else
	return 0;
#endif
}

static void *thread_h(void *arg)
{
	double t0;

	(void)arg;
	role = 'h';
	/* before the turn: a first malloc may take a lock, which the turn holds back */
	free(malloc(16));
	h_ready = 1;
	ct_wait_flag(&u_in, WAIT_MS);
	t0 = ct_now_ms();
	/* counted before it is raised */
	while ((turns_taken() == turns0 || !turn_word()) && ct_now_ms() - t0 < WAIT_MS)
		usleep(100);
	res->sc[run].turned = turns_taken() != turns0 && turn_word();
	if (during)
		during();
	release = 1;
	return NULL;
}

/* The timed forks' child: one block through the allocator, then exit 0. */
static void alloc_one(void)
{
	free(malloc(100));
}

/*
 * The scene: U's urgent fork waits in its prepare, this thread's plain fork
 * waits its turn behind it, H runs `during` meanwhile, then releases U.
 */
static void scene(void (*fn)(void))
{
	struct scene *sc = &res->sc[run];
	unsigned long u0;
	pthread_t u, h, s;
	double t0;

	h_ready = u_in = s_in = release = 0;
	u_tid = 0;
	during = fn;
	turns0 = turns_taken();
	u0 = urgent_forks();
	if (pthread_create(&h, NULL, thread_h, NULL))
		_exit(5);
	ct_wait_flag(&h_ready, WAIT_MS);
	if (pthread_create(&s, NULL, thread_s, NULL))
		_exit(5);
	ct_wait_flag(&s_in, WAIT_MS);
	if (pthread_create(&u, NULL, thread_u, NULL))
		_exit(5);
	/* U's fork announced, and asleep on the stream-list lock */
	t0 = ct_now_ms();
	while (!(u_in = urgent_forks() != u0 && u_tid && ct_in_futex(u_tid)) &&
	       ct_now_ms() - t0 < WAIT_MS)
		usleep(100);
	sc->u_in = u_in;
	sc->fork_ok = ct_fork_run(alloc_one, &sc->fork_ms);
	pthread_join(h, NULL);
	pthread_join(s, NULL);
	pthread_join(u, NULL);
}

/* The _Fork child, on H's copy: the only thread here. */
static void in_child(void)
{
	unsigned long g0;
	double t0;

	alarm(CHILD_S);
	role = 0;
	res->started_raised = turn_word() != 0;
	/* S held it when the child was made: as glibc's fork resets it */
	_IO_list_unlock();
	g0 = __atomic_load_n(&getpids, __ATOMIC_RELAXED);
	t0 = ct_now_ms();
	for (int i = 0; i < TAKES; i++) {
#if CT_HAKMEM
		hak_lock(&lc);
		hak_unlock(&lc);
#endif
		free(malloc(16 + (size_t)(i % 32) * 16));
	}
	res->takes_ms = ct_now_ms() - t0;
	res->takes_getpid = __atomic_load_n(&getpids, __ATOMIC_RELAXED) - g0;
	res->child_fork_ok = ct_fork_run(alloc_one, &res->child_fork_ms);
	res->turn_after_fork = turn_word();
	/* a turn of the child's own */
	run = 1;
	scene(NULL);
	res->turn_end = turn_word();
	t0 = ct_now_ms();
#if CT_HAKMEM
	hak_lock(&lc);
	hak_unlock(&lc);
#endif
	res->take_ms = ct_now_ms() - t0;
	_exit(0);
}

/* On H while the parent's plain fork waits its turn: a child without handlers. */
static void fork_bare(void)
{
	pid_t pid = _Fork();
	int st;

	if (pid == 0)
		in_child();
	if (pid < 0)
		return;
	res->child_made = 1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	res->child_status = st;
}

static void scenario(void)
{
	alarm(HANG_S);
	run = 0;
	scene(fork_bare);
	_exit(0);
}

int main(void)
{
	struct scene *p, *c;
	int st, cs;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	if (!_IO_list_lock || !_IO_list_unlock)
		tap_skip_all("glibc's stream-list lock");
	tap_plan(5);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	p = &res->sc[0];
	c = &res->sc[1];
	cs = res->child_status;
	tap_ok(p->u_in && p->turned && p->u_fork_ok && p->fork_ok && res->child_made &&
	       res->started_raised && WIFEXITED(st) && !WEXITSTATUS(st),
	       "the scene ran: an urgent fork, a plain fork's turn (%.0f ms), a _Fork child "
	       "with the count raised (%d %d %d %d %d %d; status 0x%x%s)", p->fork_ms, p->u_in,
	       p->turned, p->u_fork_ok, p->fork_ok, res->child_made, res->started_raised,
	       (unsigned)st, ct_hung(st));
	tap_ok(res->child_made && res->takes_getpid <= 1,
	       "the child's %d lock takes made no getpid() each (%lu calls, %.1f ms)", TAKES,
	       res->takes_getpid, res->takes_ms);
	tap_ok(res->child_fork_ok && res->child_fork_ms < FORK_MS,
	       "the child's fork went through (%.0f ms, bound %d; child status 0x%x%s)",
	       res->child_fork_ms, FORK_MS, (unsigned)cs, ct_hung(cs));
	tap_ok(c->u_in && c->turned && c->u_fork_ok && c->fork_ok && !res->turn_end &&
	       WIFEXITED(cs) && !WEXITSTATUS(cs),
	       "a turn of the child's own went through (%.0f ms; %d %d %d %d) and left the count "
	       "at 0 (%lld; %lld after the child's first fork)", c->fork_ms, c->u_in, c->turned,
	       c->u_fork_ok, c->fork_ok, res->turn_end, res->turn_after_fork);
	tap_ok(WIFEXITED(cs) && !WEXITSTATUS(cs) && res->take_ms < BOUND_MS,
	       "a lock take after it is not held back (%.0f ms, bound %d)", res->take_ms,
	       BOUND_MS);
	tap_finish();
}
