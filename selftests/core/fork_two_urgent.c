// SPDX-License-Identifier: MIT
/*
 * fork_two_urgent: two handler forks at once, each of whose interrupted
 * frames holds a lock the other fork's prepare takes.
 *
 * Neither frame can give its lock back before its handler returns, so
 * neither fork could complete if each waited for the other's lock. Each
 * announces itself ("urgent", lib/init.c "Fork, back-off") before it takes
 * anything, and the one holding the stream-list lock leaves a lock held by
 * another announced thread to that thread's frame (HAK_FORK_SKIP). But the
 * first withdraws its announcement in its parent handler, while its frame
 * holds its lock until the handler returns: a handler that waits for the
 * other fork (here, for it to complete) left that fork waiting for the
 * first frame's lock for good (hung on main, def, perf, hard). Every wait
 * of an urgent fork is bounded now (FORK_WAIT_MAX_NS, 1 s): the second
 * leaves that lock too.
 *
 * Linked with --wrap=pthread_mutex_trylock, which stands in for the
 * signals: the main thread, inside mallinfo2, right after its first lock
 * (the superslab lock) lets a second thread allocate a large block; that
 * thread, right after the first lock it takes (the big-block cache's or a
 * large shard's), and the main thread then both fork (each child
 * _exit()s at once); each handler returns once both forks are through, so
 * each fork meets the other frame's lock held. The scenario runs in a child process; a hang is
 * ended by SIGALRM. hakmem only.
 */
#include <pthread.h>
#include <sys/mman.h>
#include "core_test.h"
#if CT_HAKMEM
#include "init.h"

/* locks the handler forks left to another one's frame */
static unsigned long skips(void)
{
	struct hak_fork_stats fs;

	__hak_fork_stats(&fs);
	return fs.skips;
}
#else
static unsigned long skips(void)
{
	return 0;
}
#endif

#define HANG_S		20

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t a_tid, b_tid;
/* volatile: mallinfo2 is declared a leaf, which the wrapper is not */
static volatile int arm_a, arm_b, b_holds, go_fork;
static pthread_mutex_t *volatile a_mu, *volatile b_mu;
static volatile int forked_a = -1, forked_b = -1;
static int go_b[2];

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);
	pid_t me;

	if (r || (!arm_a && !arm_b))
		return r;
	me = gettid();
	if (arm_a && me == a_tid) {
		/* as A's handler, its frame just past its first lock */
		arm_a = 0;
		a_mu = m;
		arm_b = 1;
		if (write(go_b[1], "x", 1) != 1)
			_exit(5);
		while (!b_holds)
			usleep(1000);
		go_fork = 1;
		forked_a = ct_fork_exit0();
		/* the frame holds its lock until both forks are through */
		while (forked_b == -1)
			usleep(1000);
	} else if (arm_b && me == b_tid) {
		/* as B's handler, its frame just past its first lock */
		arm_b = 0;
		b_mu = m;
		b_holds = 1;
		while (!go_fork)
			usleep(100);
		forked_b = ct_fork_exit0();
		while (forked_a == -1)
			usleep(1000);
	}
	return r;
}

static void *thread_b(void *arg)
{
	char c;
	void *p;

	(void)arg;
	free(malloc(16));	/* the thread's heap, before it starts */
	b_tid = gettid();
	while (read(go_b[0], &c, 1) < 0 && errno == EINTR)
		;
	p = malloc(3u << 20);
	free(p);
	return p ? NULL : (void *)1;
}

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int forked_a, forked_b, distinct, joined;
	unsigned long skips;
} *res;

static void scenario(void)
{
	pthread_t t;
	void *ok = (void *)1;

	alarm(HANG_S);
	a_tid = gettid();
	if (pipe(go_b) || pthread_create(&t, NULL, thread_b, NULL))
		_exit(5);
	while (!__atomic_load_n(&b_tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	arm_a = 1;
	(void)mallinfo2();
	arm_a = 0;
	res->forked_a = forked_a;
	if (pthread_join(t, &ok))
		_exit(5);
	res->forked_b = forked_b;
	res->distinct = a_mu && b_mu && a_mu != b_mu;
	res->joined = !ok;
	res->skips = skips();
	_exit(0);
}

int main(int argc, char **argv)
{
	int st;

	if (argc > 0)
		ct_no_decay(argv);
	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(2);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	tap_ok(res->forked_a == 1 && res->forked_b == 1 && res->distinct && res->skips >= 2,
	       "two handler forks whose frames each hold a lock the other takes both complete, "
	       "each leaving the other's (%lu left; status 0x%x%s)", res->skips, (unsigned)st,
	       ct_hung(st));
	tap_ok(res->joined && WIFEXITED(st) && !WEXITSTATUS(st), "both frames went on after them");
	tap_finish();
}
