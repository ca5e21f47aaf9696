// SPDX-License-Identifier: MIT
/*
 * l25_steal_fork: fork() in a signal handler that interrupted the L2.5
 * pool's hand-over (boxes/l25_pool/l25.c, region_steal) just after its
 * try-lock of another shard won the lock word, before glibc wrote the
 * holder field. fork's prepare handler then finds that shard's lock busy
 * with no holder; it is its own thread's only if the try-lock set the
 * lock edge (lib/lock.h, hak_trylock), as hak_lock does. Before it did,
 * prepare waited for the lock, that is for itself, for good (the same
 * hang core/fork_signal_mt caught, 1 run in 30, for hak_lock).
 *
 * The window is a few instructions wide, so this program makes it
 * certain: linked with --wrap=pthread_mutex_trylock, its wrapper, armed
 * for one malloc, clears the holder field of the second lock that malloc
 * wins by a try (the first is the thread's own shard, the second the
 * hand-over's) and raises a signal whose handler forks, then puts the
 * field back. A thread frees 16 MiB of 256 KiB blocks and exits; a thread
 * in another shard then takes one: the hand-over. The scenario runs in a
 * child process, which must end within TIMEOUT_S (a hang is a failure).
 * The purge delay is set to 0: no decay pass takes a lock in between.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "l25_test.h"
#include "init.h"

#define NBLK		64
#define BLK		(256UL << 10)
#define TIMEOUT_S	30

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static __thread int armed, won;
static volatile sig_atomic_t forked;
static void *blk[NBLK];

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m), owner;

	if (r || !armed || ++won < 2)
		return r;
	armed = 0;
	/* as right after the lock word was won: no holder yet */
	owner = m->__data.__owner;
	m->__data.__owner = 0;
	raise(SIGUSR1);
	m->__data.__owner = owner;
	return r;
}

static void on_usr1(int sig)
{
	pid_t pid = fork();
	int st;

	(void)sig;
	if (!pid)
		_exit(0);
	if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st))
		forked = 1;
}

static void *take_free_exit(void *arg)
{
	unsigned i;

	(void)arg;
	for (i = 0; i < NBLK; i++) {
		blk[i] = malloc(lt_opaque(BLK));
		memset(blk[i], (int)i, BLK);
	}
	for (i = 0; i < NBLK; i++)
		free(blk[i]);
	return NULL;	/* the thread cache goes back to the shard */
}

static void *take_one(void *arg)
{
	void *p;

	(void)arg;
	/* this thread's shard, heap and thread cache, before the armed call */
	p = malloc(lt_opaque(48UL << 10));
	*(volatile char *)p = 1;
	free(p);
	p = malloc(lt_opaque(64));
	*(volatile char *)p = 1;
	free(p);
	/* atomics: plain stores around a malloc may be dropped (it reads no user memory) */
	__atomic_store_n(&won, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
	p = malloc(lt_opaque(BLK));
	__atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
	*(volatile char *)p = 1;
	free(p);
	return NULL;
}

/* The scenario: 0 passed, 3 no hand-over happened, 1 failed. */
static int run(void)
{
	struct hak_l25_stats a, b;
	struct sigaction sa = { .sa_handler = on_usr1 };
	void *mine = malloc(lt_opaque(40000));	/* this thread's shard: the first */
	pthread_t t;

	sigaction(SIGUSR1, &sa, NULL);
	pthread_create(&t, NULL, take_free_exit, NULL);
	pthread_join(t, NULL);
	hak_l25_stats(&a);
	pthread_create(&t, NULL, take_one, NULL);
	pthread_join(t, NULL);
	hak_l25_stats(&b);
	free(mine);
	if (b.shards < 2 || b.handed == a.handed)
		return 3;
	return forked ? 0 : 1;
}

int main(void)
{
	int st = 0, done;
	time_t end;
	pid_t pid;

	tap_plan(1);
	__hak_opt.purge_delay_ms = 0;
	pid = fork();
	if (pid < 0)
		tap_bail("fork failed");
	if (!pid)
		_exit(run());
	end = time(NULL) + TIMEOUT_S;
	while (!(done = waitpid(pid, &st, WNOHANG) == pid) && time(NULL) < end)
		usleep(10000);
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		tap_ok(0, "fork in a handler that interrupted the hand-over's try-lock hung "
		       "(%d s)", TIMEOUT_S);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
		tap_skip("no region was handed over (one shard, or its lock was busy)");
	} else {
		tap_ok(WIFEXITED(st) && !WEXITSTATUS(st),
		       "fork in a handler that interrupted the hand-over's try-lock completes "
		       "(status %#x)", st);
	}
	tap_finish();
}
