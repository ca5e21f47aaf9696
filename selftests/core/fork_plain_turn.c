// SPDX-License-Identifier: MIT
/*
 * fork_plain_turn: handler forks whose frames hold an allocator lock
 * ("urgent", lib/init.c "Fork, back-off"), arriving back to back, must not
 * keep a plain fork on another thread waiting for as long as they go on.
 *
 * A plain fork waits while any urgent fork is pending: it cannot complete
 * before the urgent frames give their locks back, which they do only once
 * their own forks are through. When a second urgent fork announces itself
 * before the first has withdrawn, and a third before the second has, and
 * so on, the count of pending urgent forks never reaches 0 and the plain
 * fork waited for as long as the relay ran (before fk21: the whole relay,
 * 1.5 s quick, 4 runs in 4, def; under load a handover the successor was
 * too late for let it through sooner, so the relay now runs up to 3 s and
 * each fork waits up to 300 ms for the next). Now the plain fork takes a turn
 * (lib/init.c, "Fork, turn"): no thread that holds no allocator lock takes
 * one until it is through, so the fork in flight completes and the relay
 * pauses (about HANDOFF_MS: that fork waits that long for the next one).
 *
 * The relay, made exact with --wrap=pthread_mutex_trylock in place of the
 * signals: two threads in turn take a lock of their own with hak_lock()
 * (so their frame holds an allocator lock) and fork right after the
 * try-lock that took it, as a handler that interrupted them there would;
 * inside that fork's prepare (its first try-lock, the stream-list lock
 * held) each hands the turn to the other and waits, up to HANDOFF_MS,
 * for the other's fork to announce itself. Meanwhile the main thread forks
 * once (its frame holds nothing). It must be through within BOUND_MS while
 * the relay still runs, and its child must allocate; the relay then ends
 * (up to 3 s, 5 s full, when the fork is not through). hakmem only.
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

/* plain forks that waited their turn, lock takes held back for one */
static void turn_counts(unsigned long *turns, unsigned long *gated)
{
	struct hak_fork_stats fs;

	__hak_fork_stats(&fs);
	*turns = fs.turns;
	*gated = fs.gated;
}

static struct hak_lock frame_lock[2] = { HAK_LOCK_INIT, HAK_LOCK_INIT };
#else
static unsigned long urgent_forks(void)
{
	return 0;
}

static void turn_counts(unsigned long *turns, unsigned long *gated)
{
	*turns = *gated = 0;
}
#endif

#define HANG_S		30
#define HANDOFF_MS	300
#define BOUND_MS	1500

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

/* the relay's two threads: 0 or 1 (-1: any other) */
static __thread int my_w = -1;
/* 1: the frame is taking its lock; 2: its fork is on, before its prepare's first try-lock */
static __thread int phase;
static volatile int baton, stop;
static double t_start, relay_ms;
/* kept, so the compiler does not drop a malloc/free pair */
static void *volatile keep;
static volatile unsigned long relay_forks, handoffs, misses;

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);
	int w = my_w;

	if (w < 0)
		return r;
#if CT_HAKMEM
	if (phase == 1 && !r) {
		/* as the handler of a signal that landed right after the lock */
		phase = 2;
		if (ct_fork_exit0())
			__atomic_add_fetch(&relay_forks, 1, __ATOMIC_RELAXED);
		phase = 0;
	} else if (phase == 2) {
		/* inside this fork's prepare: it has announced itself */
		unsigned long u0 = urgent_forks();
		double t0 = ct_now_ms();

		phase = 3;
		__atomic_store_n(&baton, 1 - w, __ATOMIC_RELEASE);
		while (urgent_forks() == u0 && !stop && ct_now_ms() - t0 < HANDOFF_MS)
			usleep(50);
		if (urgent_forks() != u0)
			__atomic_add_fetch(&handoffs, 1, __ATOMIC_RELAXED);
		else
			__atomic_add_fetch(&misses, 1, __ATOMIC_RELAXED);
	}
#endif
	return r;
}

static void *relay(void *arg)
{
	my_w = (int)(intptr_t)arg;
	free(malloc(16));
	while (!stop) {
		/* the relay ends by itself, whatever the main thread's fork does */
		while (__atomic_load_n(&baton, __ATOMIC_ACQUIRE) != my_w && !stop)
			usleep(20);
		if (ct_now_ms() - t_start >= relay_ms)
			stop = 1;
		if (stop)
			break;
#if CT_HAKMEM
		phase = 1;
		hak_lock(&frame_lock[my_w]);
		phase = 0;
		hak_unlock(&frame_lock[my_w]);
#endif
	}
	return NULL;
}

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int started, child_ok, relay_on;
	double waited_ms;
	unsigned long during, forks, handoffs, misses, turns, gated;
} *res;

static void scenario(void)
{
	double t0;
	unsigned long u0;
	pthread_t t[2];
	pid_t pid;
	int st;

	alarm(HANG_S);
	relay_ms = ct_quick() ? 3000 : 5000;
	t_start = ct_now_ms();
	for (intptr_t i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, relay, (void *)i))
			_exit(5);
	while (relay_forks < 4 && ct_now_ms() - t_start < 5000)
		usleep(1000);
	res->started = relay_forks >= 4;
	u0 = urgent_forks();
	t0 = ct_now_ms();
	pid = fork();
	if (pid == 0) {
		void *b[1024];

		for (int i = 0; i < 1024; i++)
			if (!(b[i] = malloc(16 + (size_t)(i % 64) * 64)))
				_exit(2);
		for (int i = 0; i < 1024; i++)
			free(b[i]);
		b[0] = malloc(3u << 20);
		keep = b[0];
		free(b[0]);
		_exit(0);
	}
	res->waited_ms = ct_now_ms() - t0;
	res->relay_on = !stop;
	stop = 1;
	res->during = urgent_forks() - u0;
	if (pid < 0)
		_exit(5);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	res->child_ok = WIFEXITED(st) && !WEXITSTATUS(st);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	turn_counts(&res->turns, &res->gated);
	res->forks = relay_forks;
	res->handoffs = handoffs;
	res->misses = misses;
	_exit(0);
}

int main(void)
{
	int st;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(3);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	tap_ok(res->started && WIFEXITED(st) && !WEXITSTATUS(st),
	       "the relay of handler forks ran (%lu forks, %lu handed over in time, %lu not; "
	       "status 0x%x%s)", res->forks, res->handoffs, res->misses, (unsigned)st, ct_hung(st));
	tap_ok(res->relay_on && res->waited_ms < BOUND_MS,
	       "a plain fork got through while it ran (%.0f ms, bound %d; %lu handler forks "
	       "meanwhile; %lu turns taken, %lu lock takes held back)", res->waited_ms, BOUND_MS,
	       res->during, res->turns, res->gated);
	tap_ok(res->child_ok, "its child allocated and exited 0");
	tap_finish();
}
