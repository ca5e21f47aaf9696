// SPDX-License-Identifier: MIT
/*
 * fork_waiters_full: a handler fork whose frame holds a lock, while the
 * table of lock waiters is full.
 *
 * An urgent fork (from a signal handler whose interrupted frame holds an
 * allocator lock, lib/init.c "Fork, back-off") leaves a busy lock whose
 * holder waits, down a chain, for a lock such a frame holds: it finds the
 * holder in the waiter table __hak_lock_wait fills. A waiter that finds no
 * free slot among its probes is not listed, and the fork waited for the
 * lock it holds for good: that holder waits for the frame's lock, the
 * frame for its handler, the handler for the fork.
 *
 * Linked with --wrap=pthread_mutex_trylock, which stands in for the
 * signal: on the main thread, armed, the try-lock that takes the meta lock
 * inside mallinfo2 (the last lock it takes, found by a first, unarmed
 * call) first lets WAITERS threads block on that lock (each calls
 * mallinfo2; the table has 256 slots), then one more thread that holds a
 * large shard's lock (or the big-block cache's) and waits for the meta
 * lock for a block's record, then forks (the child _exit()s at once). The
 * scenario runs in a child process; a hang is ended by SIGALRM.
 * hakmem only (glibc's malloc takes no pthread mutex there).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include "core_test.h"

#define HANG_S		20
#define WAITERS		512

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t main_tid;
/* volatile: mallinfo2 is declared a leaf, which the wrapper is not */
static volatile int arm;	/* 1: record the locks taken; 2: fork at meta_mu */
static pthread_mutex_t *volatile meta_mu;
static pid_t tids[WAITERS + 1];	/* the waiters, then the holder */
static int go_waiters[2], go_holder[2];
static volatile int forked = -1;	/* the handler fork's child exited 0 */

/* Wait until threads [from, to) sleep in futex, and stay there a while. */
static void wait_blocked(unsigned from, unsigned to)
{
	unsigned calm = 0, i;

	while (calm < 5) {
		for (i = from; i < to && tids[i] && ct_in_futex(tids[i]); i++)
			;
		calm = i == to ? calm + 1 : 0;
		usleep(20000);
	}
}

static void go(int fd[2], unsigned n)
{
	while (n--)
		if (write(fd[1], "x", 1) != 1)
			_exit(5);
}

static void wait_go(int fd[2])
{
	char c;

	while (read(fd[0], &c, 1) < 0 && errno == EINTR)
		;
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

	if (!arm || r || gettid() != main_tid)
		return r;
	if (arm == 1) {
		meta_mu = m;
	} else if (m == meta_mu) {
		/* as a handler that interrupted the frame just past the lock */
		arm = 0;
		go(go_waiters, WAITERS);
		wait_blocked(0, WAITERS);
		go(go_holder, 1);
		wait_blocked(WAITERS, WAITERS + 1);
		forked = ct_fork_exit0();
	}
	return r;
}

static void *waiter(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	free(malloc(16));	/* the thread's heap, before it waits */
	tids[i] = gettid();
	wait_go(go_waiters);
	(void)mallinfo2();
	return NULL;
}

static void *holder(void *arg)
{
	void *p;

	(void)arg;
	free(malloc(16));
	tids[WAITERS] = gettid();
	wait_go(go_holder);
	/* a record for it: the meta lock under the shard's */
	p = malloc(3u << 20);
	free(p);
	return p ? NULL : (void *)1;
}

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int meta_found;
	int forked;
	int joined;
} *res;

static void scenario(void)
{
	static pthread_t t[WAITERS + 1];
	pthread_attr_t at;
	unsigned i;

	alarm(HANG_S);
	main_tid = gettid();
	if (pipe(go_waiters) || pipe(go_holder) || pthread_attr_init(&at) ||
	    pthread_attr_setstacksize(&at, 128 << 10))
		_exit(5);
	arm = 1;
	(void)mallinfo2();
	arm = 0;
	res->meta_found = meta_mu != NULL;
	if (!meta_mu)
		_exit(0);
	for (i = 0; i <= WAITERS; i++)
		if (pthread_create(&t[i], &at, i < WAITERS ? waiter : holder,
				   (void *)(uintptr_t)i))
			_exit(5);
	for (i = 0; i <= WAITERS; i++)
		while (!__atomic_load_n(&tids[i], __ATOMIC_ACQUIRE))
			usleep(1000);
	arm = 2;
	(void)mallinfo2();
	arm = 0;
	res->forked = forked;
	for (i = 0; i <= WAITERS; i++)
		if (pthread_join(t[i], NULL))
			_exit(5);
	res->joined = 1;
	_exit(0);
}

int main(int argc, char **argv)
{
	struct rlimit nproc;
	int st;

	if (argc > 0)
		ct_no_decay(argv);
	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	/* 513 threads: a low RLIMIT_NPROC is the machine's, not a failure (root is exempt) */
	if (geteuid() && !getrlimit(RLIMIT_NPROC, &nproc) && nproc.rlim_cur != RLIM_INFINITY &&
	    nproc.rlim_cur < 4 * (WAITERS + 1))
		tap_skip_all("RLIMIT_NPROC %lu is too low for %d threads", (unsigned long)nproc.rlim_cur,
			     WAITERS + 1);
	tap_plan(2);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	if (!res->meta_found)
		tap_bail("mallinfo2 took no lock by try-lock (status 0x%x)", (unsigned)st);
	tap_ok(res->forked == 1,
	       "a handler fork completes while the lock waiters overflow their table "
	       "(status 0x%x%s)", (unsigned)st, ct_hung(st));
	tap_ok(res->joined && WIFEXITED(st) && !WEXITSTATUS(st),
	       "every waiter and the holder went on after it");
	tap_finish();
}
