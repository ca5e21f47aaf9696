// SPDX-License-Identifier: MIT
/*
 * rlimit_signal: setrlimit(RLIMIT_AS) from a signal handler.
 *
 * A soft RLIMIT_AS lowered under 64 GiB gives the page map up (lib/
 * superslab.c, __hak_pm_fit_limit, from the interposed setrlimit), under
 * ss_lock. setrlimit is a system call a handler may make; when the handler
 * interrupted its own thread inside ss_lock, waiting for that lock was
 * waiting for itself: hakmem reported it and aborted the program. Now a
 * handler whose frame holds an allocator lock only tries ss_lock: the map
 * stays when it is the frame's (given up at the next setrlimit or refused
 * mapping), and goes at once when the frame holds another lock.
 *
 * Linked with --wrap=pthread_mutex_trylock, which stands in for the
 * signal's timing: armed, the main thread's try-lock that takes ss_lock
 * (found first by an unarmed __hak_ssmap_open, which takes only that
 * lock) raises SIGUSR1, whose handler calls setrlimit. Each case runs in a
 * child process (an abort or a hang stays there; SIGALRM ends a hang).
 *  1. the frame holds ss_lock: the handler's setrlimit returns 0, the
 *     limit is set, the program goes on; the map goes at the next
 *     setrlimit; blocks allocated and freed before and after are intact;
 *  2. the frame holds another allocator lock (malloc_trim's): the map is
 *     given up inside the handler.
 * hakmem only (the C library's malloc has no map to give up).
 */
#include "core_test.h"
#if CT_HAKMEM
#include "superslab.h"
#endif

#define LIMIT		(32ULL << 30)	/* under 64 GiB (HAK_PM_LIMIT_MIN) */
#define HANG_S		30
#define NBLK		512

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t main_tid;
/* 1: record the first lock taken; 2: raise at ss_mu; 3: raise at another lock */
static volatile int arm;
static pthread_mutex_t *volatile ss_mu;
static volatile int raised, handler_ret = -2, handler_errno;

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

	if (!arm || r || gettid() != main_tid)
		return r;
	if (arm == 1) {
		ss_mu = m;
		arm = 0;
	} else if ((arm == 2) == (m == ss_mu)) {
		/* a handler that interrupted the frame just past the lock word */
		arm = 0;
		raised = 1;
		raise(SIGUSR1);
	}
	return r;
}

static void on_usr1(int sig)
{
	struct rlimit rl;
	int err = errno;

	(void)sig;
	getrlimit(RLIMIT_AS, &rl);
	rl.rlim_cur = LIMIT;
	errno = 0;
	handler_ret = setrlimit(RLIMIT_AS, &rl);
	handler_errno = errno;
	errno = err;
}

#if CT_HAKMEM
/* A registry granule no superslab uses (8 GiB of address space each). */
static uintptr_t fresh_region(void)
{
	static uintptr_t next = 0x500000000000UL;

	next += 8UL << 30;
	return next;
}

static unsigned long map_lim(void)
{
	return __atomic_load_n(&__hak_pm.lim, __ATOMIC_RELAXED);
}
#else
static uintptr_t fresh_region(void)
{
	return 0;
}

static bool __hak_ssmap_open(uintptr_t region)
{
	(void)region;
	return true;
}

static unsigned long map_lim(void)
{
	return 0;
}
#endif

/* Allocate, fill, check and free NBLK blocks of 16 B to 4 KiB: false if one was damaged. */
static bool churn(void)
{
	static void *blk[NBLK];
	bool ok = true;
	unsigned i;

	for (i = 0; i < NBLK; i++) {
		blk[i] = malloc(16 + (i * 37) % 4080);
		if (!blk[i])
			return false;
		ct_fill(blk[i], 16 + (i * 37) % 4080);
	}
	for (i = 0; i < NBLK; i++) {
		ok &= ct_check(blk[i], 16 + (i * 37) % 4080) == 16 + (i * 37) % 4080;
		free(blk[i]);
	}
	return ok;
}

/*
 * Case 1, in its child: exit 0 when it all holds, else the number of the
 * first check that failed.
 */
static void frame_holds_ss(void)
{
	struct rlimit rl;

	alarm(HANG_S);
	main_tid = gettid();
	if (!churn() || !map_lim())
		_exit(2);	/* no map to start with */
	arm = 1;
	if (!__hak_ssmap_open(fresh_region()) || arm || !ss_mu)
		_exit(3);	/* ss_lock not learnt */
	ct_handle(SIGUSR1, on_usr1);
	arm = 2;
	if (!__hak_ssmap_open(fresh_region()) || !raised || handler_ret || handler_errno)
		_exit(4);
	if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur != LIMIT)
		_exit(5);
	if (!churn())
		_exit(6);
	/* the map stayed (its lock was the frame's): the next setrlimit gives it up */
	if (setrlimit(RLIMIT_AS, &rl) || map_lim())
		_exit(7);
	if (!churn())
		_exit(8);
	_exit(0);
}

/* Case 2: the frame holds another lock; the map goes inside the handler. */
static void frame_holds_other(void)
{
	alarm(HANG_S);
	main_tid = gettid();
	if (!churn() || !map_lim())
		_exit(2);
	arm = 1;
	if (!__hak_ssmap_open(fresh_region()) || arm || !ss_mu)
		_exit(3);
	ct_handle(SIGUSR1, on_usr1);
	arm = 3;
	malloc_trim(0);
	if (!raised || handler_ret || handler_errno)
		_exit(4);
	if (map_lim())
		_exit(5);
	if (!churn())
		_exit(6);
	_exit(0);
}

static void report(int st, const char *what)
{
	if (WIFSIGNALED(st))
		tap_diag("%s: killed by signal %d", what, WTERMSIG(st));
	else if (WEXITSTATUS(st))
		tap_diag("%s: check %d failed", what, WEXITSTATUS(st));
	tap_ok(WIFEXITED(st) && !WEXITSTATUS(st), "%s", what);
}

int main(void)
{
	if (!CT_HAKMEM)
		tap_skip_all("hakmem only: the page map");
	tap_plan(2);
	report(ct_scenario_child(frame_holds_ss),
	       "setrlimit in a handler whose frame holds ss_lock: no self-wait, map given up later");
	report(ct_scenario_child(frame_holds_other),
	       "setrlimit in a handler whose frame holds another lock: map given up at once");
	tap_finish();
	return 0;
}
