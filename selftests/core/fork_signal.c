// SPDX-License-Identifier: MIT
/*
 * fork_signal: fork() from a signal handler that interrupted malloc.
 *
 * A single-threaded process allocates, fills, checks and frees blocks of
 * 1 byte to 70 KB (small, mid-size and large paths) while a second process
 * sends it SIGUSR1; the handler calls fork(), the child _exit()s at once
 * and the handler waits for it. The interrupted code may hold any
 * allocator lock at that moment, so a fork that takes allocator locks in a
 * single-threaded process hangs here. glibc makes this case work on
 * purpose (its fork skips the malloc locks when the process has one
 * thread); hakmem must too.
 *
 * Proves that N handler forks (argv[1]; 10000 is the full scenario, run
 * by tools/stress.sh; without an argument a bounded slice of 500, 100
 * with HAKMEM_SELFTEST_QUICK=1) all complete with every child
 * exiting 0, that the blocks live across them are intact, and that the
 * process still allocates afterwards. A hang is a failure: the sender
 * watches progress and, after 30 s without one, reports it and kills the
 * test (SIGKILL), so the runner counts it as failed, never skipped.
 */
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>

#include "core_test.h"

#define SLOTS	64
#define MAXSZ	70000

struct shared {
	volatile long handled;		/* handler forks completed */
	volatile long bad_child;	/* children that did not exit 0 */
	volatile long fork_failed;
	volatile int done;		/* main loop finished */
	volatile int hang;		/* set by the sender on a hang */
};

static struct shared *sh;

static void on_usr1(int sig)
{
	int saved = errno;

	(void)sig;
	ct_fork_reap(&sh->bad_child, &sh->fork_failed);
	__atomic_add_fetch(&sh->handled, 1, __ATOMIC_RELEASE);
	errno = saved;
}

static void say(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0)
		return;
}

/*
 * The second process: one signal, then wait until the handler has run, so
 * every signal is a fork (none merged while pending).
 */
static void sender(pid_t target, long n)
{
	for (long i = 0; i < n && !sh->done; i++) {
		long before = __atomic_load_n(&sh->handled, __ATOMIC_ACQUIRE);
		struct timespec start, now;

		clock_gettime(CLOCK_MONOTONIC, &start);
		if (kill(target, SIGUSR1) < 0)
			_exit(0);
		while (__atomic_load_n(&sh->handled, __ATOMIC_ACQUIRE) == before && !sh->done) {
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - start.tv_sec >= 30) {
				sh->hang = 1;
				say("not ok 1 # hang: no handler fork completed for 30 s\n");
				kill(target, SIGKILL);
				_exit(1);
			}
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : ct_quick() ? 100 : 500;
	void *slot[SLOTS] = { 0 };
	size_t len[SLOTS] = { 0 };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned long bad = 0, rounds = 0;
	pid_t snd;
	int st;

	tap_plan(4);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		tap_bail("mmap failed");
	ct_handle(SIGUSR1, on_usr1);

	fflush(stdout);
	snd = fork();
	if (snd < 0)
		tap_bail("fork failed");
	if (snd == 0)
		sender(getppid(), iters);

	tap_ok(__libc_single_threaded, "the allocating process is single-threaded");
	while (__atomic_load_n(&sh->handled, __ATOMIC_ACQUIRE) < iters) {
		unsigned i;
		size_t n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (unsigned)(x % SLOTS);
		if (slot[i]) {
			if (ct_check(slot[i], len[i] < 256 ? len[i] : 256) != (len[i] < 256 ? len[i] : 256))
				bad++;
			free(slot[i]);
		}
		n = 1 + (x >> 16) % (x & 0x300 ? 2048 : MAXSZ);
		slot[i] = (x >> 40) & 1 ? malloc(n) : calloc(1, n);
		if (!slot[i])
			tap_bail("allocation of %zu bytes failed", n);
		len[i] = n;
		ct_fill(slot[i], n < 256 ? n : 256);
		rounds++;
	}
	sh->done = 1;
	while (waitpid(snd, &st, 0) < 0 && errno == EINTR)
		;
	tap_diag("%lu allocations while %ld handler forks ran", rounds, sh->handled);

	tap_ok(sh->handled >= iters && !sh->hang && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "%ld forks from a signal handler completed (sender exit %d)", iters,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	tap_ok(sh->fork_failed == 0 && sh->bad_child == 0,
	       "every handler fork succeeded and its child exited 0 (%ld failed, %ld bad)",
	       sh->fork_failed, sh->bad_child);
	for (unsigned i = 0; i < SLOTS; i++) {
		if (slot[i] && ct_check(slot[i], len[i] < 256 ? len[i] : 256) !=
		    (len[i] < 256 ? len[i] : 256))
			bad++;
		free(slot[i]);
		slot[i] = malloc(i * 1000 + 1);
	}
	for (unsigned i = 0; i < SLOTS; i++)
		free(slot[i]);
	tap_ok(bad == 0, "blocks live across the forks are intact, and allocation goes on");
	tap_finish();
}
