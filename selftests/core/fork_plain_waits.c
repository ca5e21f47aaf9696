// SPDX-License-Identifier: MIT
/*
 * fork_plain_waits: a plain fork (not from a signal handler) never leaves
 * an allocator lock to its holder, however long it is held.
 *
 * Only a handler fork whose frame holds an allocator lock ("urgent") bounds
 * its waits (lib/init.c, FORK_WAIT_MAX_NS, 1 s) and leaves a lock or a scan
 * to its holder: the child then gets that lock free over data the holder
 * may have half updated. A plain fork's frame holds nothing, so it can wait
 * for any holder, and must: its child may allocate (a single-threaded
 * child, or one that keeps to async-signal-safe calls until the holder's
 * data is whole, is not told anything went wrong).
 *
 * Linked with --wrap=pthread_mutex_trylock: armed, another thread's first
 * try-lock that takes a lock (mallinfo2's heap lock) holds it 1.5 s (a
 * holder preempted for that long). Meanwhile the main thread forks. The
 * fork waits for the holder (at least 1.2 s), leaves nothing (the fork
 * statistics' skips and waited_out unchanged), and its child allocates,
 * frees and exits 0. hakmem only.
 */
#include <pthread.h>
#include <time.h>
#include "core_test.h"
#if CT_HAKMEM
#include "init.h"

static void fork_counts(unsigned long *skips, unsigned long *waited_out)
{
	struct hak_fork_stats fs;

	__hak_fork_stats(&fs);
	*skips = fs.skips;
	*waited_out = fs.waited_out;
}
#else
static void fork_counts(unsigned long *skips, unsigned long *waited_out)
{
	*skips = *waited_out = 0;
}
#endif

#define HOLD_MS		1500
#define HANG_S		30

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t holder_tid;
static volatile int arm, holding;

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);

	if (arm && !r && holder_tid && gettid() == holder_tid) {
		arm = 0;
		holding = 1;
		usleep(HOLD_MS * 1000);
	}
	return r;
}

static void *holder(void *arg)
{
	(void)arg;
	free(malloc(16));
	__atomic_store_n(&holder_tid, gettid(), __ATOMIC_RELEASE);
	while (!arm)
		usleep(1000);
	(void)mallinfo2();
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	unsigned long skips0, wo0, skips1, wo1;
	void *b[4096];
	pthread_t t;
	double t0, waited;
	pid_t pid;
	int st = 0;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(3);
	alarm(HANG_S);
	if (pthread_create(&t, NULL, holder, NULL))
		tap_bail("pthread_create");
	while (!__atomic_load_n(&holder_tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	fork_counts(&skips0, &wo0);
	arm = 1;
	while (!holding)
		usleep(1000);
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		alarm(10);
		for (int i = 0; i < 4096; i++)
			if (!(b[i] = malloc(16 + (size_t)(i % 64) * 16)))
				_exit(2);
		for (int i = 0; i < 4096; i++)
			free(b[i]);
		_exit(0);
	}
	waited = now_s() - t0;
	if (pid < 0)
		tap_bail("fork: %s", strerror(errno));
	fork_counts(&skips1, &wo1);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	pthread_join(t, NULL);
	tap_ok(waited > HOLD_MS / 1000.0 * 0.8, "the plain fork waited for the holder (%.2f s)",
	       waited);
	tap_ok(skips1 == skips0 && wo1 == wo0, "it left nothing (skips +%lu, waited out +%lu)",
	       skips1 - skips0, wo1 - wo0);
	tap_ok(WIFEXITED(st) && !WEXITSTATUS(st), "its child allocated and exited 0 (status 0x%x)",
	       (unsigned)st);
	tap_finish();
}
