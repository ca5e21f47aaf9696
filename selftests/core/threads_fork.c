// SPDX-License-Identifier: MIT
/*
 * threads_fork: fork() from a process whose threads are busy in malloc.
 * runner: long (one of the longest selftests: the runner starts it first)
 *
 * Proves that a child forked while four other threads allocate and free
 * (so allocator locks and caches may be mid-update at the moment of the
 * fork) can allocate: 50 times, the child allocates and frees every size
 * range, frees blocks the parent's threads published (their owners do not
 * exist in the child), checks them, starts a thread that allocates too,
 * and exits 0 through exit() (running atexit handlers). A deadlocked child
 * is killed by alarm() and reported. The parent keeps allocating
 * throughout and checks every exit status.
 *
 * Usage: threads_fork [iterations]   (default 50, 15 with
 * HAKMEM_SELFTEST_QUICK=1)
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "core_test.h"

#define NBUSY	4
#define SLOTS	512
#define ITERS	50

/* published blocks; accessed only with __atomic builtins */
static void *slot[SLOTS];
static int stop;

static void *busy(void *arg)
{
	uint64_t x = 0x1234567ull + (uintptr_t)arg;
	void *mine[16] = { 0 };

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		size_t n;
		void *p, *old;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = (x >> 20) % 16 ? 16 + (x >> 8) % 1024 : 16 + (x >> 8) % (200 * 1024);
		p = malloc(n);
		if (!p)
			abort();
		*(size_t *)p = n;
		ct_fill((char *)p + sizeof(size_t), n - sizeof(size_t) < 64 ? n - sizeof(size_t) : 64);
		old = __atomic_exchange_n(&slot[x % SLOTS], p, __ATOMIC_ACQ_REL);
		free(old);
		/* some purely local traffic too */
		free(mine[x % 16]);
		mine[x % 16] = malloc(8 + (x >> 32) % 300);
	}
	for (int i = 0; i < 16; i++)
		free(mine[i]);
	return NULL;
}

static int check_block(void *p)
{
	size_t n = *(size_t *)p, k;

	if (n < 16 || n > 200 * 1024 + 16)
		return 0;
	k = n - sizeof(size_t) < 64 ? n - sizeof(size_t) : 64;
	return ct_check((char *)p + sizeof(size_t), k) == k;
}

static void *child_thread(void *arg)
{
	void *v[100];

	for (int i = 0; i < 100; i++) {
		v[i] = malloc((size_t)i * 97 + 1);
		if (!v[i])
			return (void *)1;
		memset(v[i], i, (size_t)i * 97 + 1);
	}
	for (int i = 0; i < 100; i++)
		free(v[i]);
	return arg;
}

static int child(void)
{
	static const size_t sz[] = { 1, 16, 100, 1000, 5000, 40000, 150000, 1 << 20, 8 << 20 };
	void *p[ARRAY_SIZE_CT(sz)];
	pthread_t t;
	void *ret = (void *)1;

	alarm(20);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++) {
			p[i] = malloc(sz[i]);
			if (!p[i])
				return 10;
			memset(p[i], 0x5c, sz[i]);
		}
		for (size_t i = 0; i < ARRAY_SIZE_CT(sz); i++)
			free(p[i]);
	}
	/* free what the parent's (absent) threads published */
	for (int i = 0; i < SLOTS; i += 3) {
		void *b = __atomic_exchange_n(&slot[i], NULL, __ATOMIC_ACQ_REL);

		if (b && !check_block(b))
			return 11;
		free(b);
	}
	if (pthread_create(&t, NULL, child_thread, NULL))
		return 12;
	pthread_join(t, &ret);
	if (ret)
		return 13;
	p[0] = calloc(1000, 10);
	p[1] = realloc(p[0], 1 << 20);
	if (!p[1])
		return 14;
	free(p[1]);
	return 0;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : ct_quick() ? 15 : ITERS;
	pthread_t th[NBUSY];
	int ok = 0, bad_exit = 0, bad_sig = 0, fork_fail = 0;

	tap_plan(3);
	for (int i = 0; i < NBUSY; i++)
		if (pthread_create(&th[i], NULL, busy, (void *)(uintptr_t)(i + 1)))
			tap_bail("pthread_create failed");

	for (int it = 0; it < iters; it++) {
		pid_t pid;
		int st;
		void *keep = malloc(64 + (size_t)it * 100);

		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0) {
			fork_fail++;
			free(keep);
			continue;
		}
		if (pid == 0) {
			int rc = child();

			free(keep);	/* allocated by the parent's main thread */
			if (rc)
				_exit(rc);
			exit(0);
		}
		free(keep);
		if (waitpid(pid, &st, 0) != pid)
			tap_bail("waitpid failed");
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			ok++;
		} else if (WIFEXITED(st)) {
			if (bad_exit++ < 5)
				tap_diag("iteration %d: child exited with %d", it, WEXITSTATUS(st));
		} else {
			if (bad_sig++ < 5)
				tap_diag("iteration %d: child killed by signal %d%s", it,
					 WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (hang)" : "");
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NBUSY; i++)
		pthread_join(th[i], NULL);

	tap_ok(fork_fail == 0, "%d forks from a process with %d busy allocating threads", iters,
	       NBUSY);
	tap_ok(ok == iters && bad_exit == 0 && bad_sig == 0,
	       "every child allocated, freed, ran a thread and exited 0 (%d ok, %d bad exit, %d signalled)",
	       ok, bad_exit, bad_sig);
	{
		unsigned long bad = 0;

		for (int i = 0; i < SLOTS; i++) {
			void *b = __atomic_exchange_n(&slot[i], NULL, __ATOMIC_ACQ_REL);

			if (b && !check_block(b))
				bad++;
			free(b);
		}
		tap_ok(bad == 0, "the parent's published blocks are intact after all the forks");
	}
	tap_finish();
}
